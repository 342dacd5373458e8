"""`creditgym view`'s local server: the page and a small JSON API over an `EpisodeStore`.

Standard library only (`http.server.ThreadingHTTPServer`). It binds 127.0.0.1 by default,
answers a fixed set of routes (no file is ever served by a path from the request), rejects
requests whose ``Host`` is not the address it serves (DNS rebinding), and sends every page with
a Content-Security-Policy that lets only its own script run.

    GET /                        the page
    GET /api/overview            counts, filter values, notices about skipped lines
    GET /api/episodes?...        one page of the list: offset, limit and the filters of
                                 `creditgym.view.store.matches`
    GET /api/episode?id=N        one full record
    GET /api/group?id=N          every episode of N's group (full records)
    GET /api/metrics             the rows of metrics.jsonl
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from creditgym.episode_log import jsonable
from creditgym.view.page import content_security_policy, render_page
from creditgym.view.store import EpisodeStore

__all__ = ["make_server", "DEFAULT_PORT"]

DEFAULT_PORT = 8765
FILTERS = ("iteration", "outcome", "task_type", "env", "agent", "policy", "q")


#: How a client that hung up shows in socket calls.
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


def _log_line(message: str) -> None:
    stamp = time.strftime("%d/%b/%Y %H:%M:%S")
    sys.stderr.write(f"creditgym view [{stamp}] {message}\n")


class _Handler(BaseHTTPRequestHandler):
    server: _ViewerServer
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection gives its thread back

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, payload: Any, status: int = HTTPStatus.OK) -> None:
        body = json.dumps(jsonable(payload), ensure_ascii=False, allow_nan=False).encode()
        self._send(status, body, "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._send(status, message.encode(), "text/plain; charset=utf-8")

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        host = (self.headers.get("Host") or "").lower()
        if host not in self.server.allowed_hosts:
            self._error(HTTPStatus.FORBIDDEN, "unexpected Host header")
            return
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        store = self.server.store
        try:
            if url.path in ("/", "/index.html"):
                nonce = secrets.token_urlsafe(16)
                csp = content_security_policy(nonce, served=True)
                page = render_page(nonce).encode()
                self._send(
                    HTTPStatus.OK,
                    page,
                    "text/html; charset=utf-8",
                    {"Content-Security-Policy": csp},
                )
            elif url.path == "/api/overview":
                self._json(store.overview())
            elif url.path == "/api/episodes":
                filters = {key: query.get(key, "") for key in FILTERS}
                self._json(
                    store.page(filters, int(query.get("offset", 0)), int(query.get("limit", 100)))
                )
            elif url.path == "/api/episode":
                self._json(store.episode(int(query["id"])))
            elif url.path == "/api/group":
                self._json(store.group(int(query["id"])))
            elif url.path == "/api/metrics":
                self._json(store.metrics())
            else:
                self._error(HTTPStatus.NOT_FOUND, "not found")
        except (KeyError, ValueError) as error:
            self._error(HTTPStatus.BAD_REQUEST, f"bad request: {error}")
        except CLIENT_GONE:
            self.close_connection = True  # the client hung up: nothing to answer, nothing to log
        except Exception as error:  # the viewer outlives any one request; one line, no traceback
            _log_line(f"{url.path}: {type(error).__name__}: {error}")
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(error).__name__}")


class _ViewerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: EpisodeStore, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.verbose = verbose
        port = self.server_address[1]
        names = {address[0], "127.0.0.1", "localhost", "[::1]"}
        self.allowed_hosts = {f"{name}:{port}".lower() for name in names}

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (or went silent) costs nothing; anything else one line."""
        error = sys.exc_info()[1]
        if not isinstance(error, CLIENT_GONE):
            _log_line(f"{client_address[0]}: {type(error).__name__}: {error}")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"


def make_server(
    store: EpisodeStore, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, verbose: bool = False
) -> _ViewerServer:
    """A server for `store` (not yet serving: call ``serve_forever()``); port 0 picks a free one."""
    store.refresh()  # index before the first request, so the page opens at once
    return _ViewerServer((host, port), store, verbose)
