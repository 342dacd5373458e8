"""The HTTP side of `creditgym serve`: a threading server that bounds connections, bodies and
idle time, checks the API key, and turns each request into a call of a `PolicyServer`
endpoint with a deadline (see `creditgym.agents.serve.server` for the API and the limits)."""

from __future__ import annotations

import hmac
import io
import json
import re
import select
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from creditgym.agents.serve.engine import ClientGone, DeadlinePassed
from creditgym.agents.serve.openai_format import BadRequest, error_body
from creditgym.agents.serve.options import ServerLimits

__all__ = ["BoundedHTTPServer", "RequestContext", "handler_class"]

#: How a client that hung up shows in socket calls.
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, ClientGone)

#: RFC 9112's Content-Length: ASCII digits only (no sign, no "0x", no other scripts' digits).
_DIGITS = re.compile(r"[0-9]+")

#: More significant digits than this is more than any --max-body-bytes (and than int() reads
#: quickly: Python refuses to convert strings of over 4300 digits).
_MAX_LENGTH_DIGITS = 18


class ReceiveDeadline(io.RawIOBase):
    """A connection's socket as a raw stream whose reads stop at a deadline per request.

    Between requests a read waits at most `idle_timeout` seconds (the connection timeout).
    The first byte of a request starts a clock: from then on the request's line, headers and
    body must all arrive within `receive_timeout` seconds, however they are trickled (a
    per-read timeout alone lets a client sending a byte a second hold its connection, and its
    thread, forever). `TimeoutError` when either runs out.
    """

    def __init__(self, sock: socket.socket, idle_timeout: float, receive_timeout: float) -> None:
        super().__init__()
        self._sock = sock
        self.idle_timeout = idle_timeout
        self.receive_timeout = receive_timeout
        self.deadline: float | None = None
        self.hung_up = False  # a read found the client's end closed

    def readable(self) -> bool:
        return True

    def next_request(self) -> None:
        """The next byte read starts a new request's clock."""
        self.deadline = None

    def readinto(self, buffer: Any) -> int:
        wait = self.idle_timeout
        if self.deadline is not None:
            wait = min(wait, self.deadline - time.monotonic())
            if wait <= 0:
                raise TimeoutError(
                    f"the request did not arrive within --receive-timeout={self.receive_timeout:g}s"
                )
        self._sock.settimeout(wait)
        try:
            count = self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(self.idle_timeout)  # writes keep the connection's timeout
        self.hung_up = self.hung_up or count == 0
        if count and self.deadline is None:
            self.deadline = time.monotonic() + self.receive_timeout
        return count


class RequestContext:
    """What an endpoint learns about its request: the `time.monotonic` deadline by which it
    must be answered, and `cancelled()`, true once the client has hung up."""

    def __init__(self, deadline: float, cancelled: Callable[[], bool] = lambda: False) -> None:
        self.deadline = deadline
        self.cancelled = cancelled


def _quiet_line(message: str) -> None:
    """One log line on stderr, in the access log's format, for expected connection events."""
    stamp = time.strftime("%d/%b/%Y %H:%M:%S")
    sys.stderr.write(f"- - - [{stamp}] {message}\n")


class BoundedHTTPServer(ThreadingHTTPServer):
    """A `ThreadingHTTPServer` that serves at most `max_connections` connections at once
    (more are answered 503 and closed, so no client can make it spawn threads without end)
    and logs a client hanging up as one line instead of a traceback."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog: a burst of clients is queued, not dropped

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int
    ) -> None:
        self._connections = threading.BoundedSemaphore(max_connections)
        self.max_connections = max_connections
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connections.acquire(blocking=False):
            _refuse_busy(request, self.max_connections)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (*CLIENT_GONE, TimeoutError)):
            _quiet_line(f"{client_address[0]}: connection ended ({type(error).__name__})")
            return
        super().handle_error(request, client_address)


def _refuse_busy(request: socket.socket, max_connections: int) -> None:
    body = json.dumps(
        error_body(
            f"the server is serving its maximum of {max_connections} connections; retry shortly",
            "server_error",
        )
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    try:
        request.settimeout(1.0)
        request.sendall(head.encode() + body)
    except OSError:
        pass


def handler_class(
    routes: dict[tuple[str, str], Callable[[dict[str, Any], RequestContext], dict[str, Any]]],
    limits: ServerLimits,
) -> type[BaseHTTPRequestHandler]:
    """A request handler that serves `routes` ((method, path) -> endpoint) within `limits`."""
    api_key = None if limits.api_key is None else limits.api_key.encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their connections
        server_version = "creditgym"
        timeout = limits.connection_timeout  # idle connections give their thread back

        def version_string(self) -> str:
            return self.server_version  # the Server header names no Python version

        def setup(self) -> None:
            super().setup()
            self._receiving = ReceiveDeadline(
                self.connection, limits.connection_timeout, limits.receive_timeout
            )
            self.rfile = io.BufferedReader(self._receiving, 1 << 16)

        def handle_one_request(self) -> None:
            self._receiving.next_request()
            super().handle_one_request()

        def parse_request(self) -> bool:
            """The request line and headers; 408 when they outlast the receive deadline, and
            nothing but one log line when the client hung up before sending them whole."""
            self._body_read = False
            if self._receiving.hung_up and not self.raw_requestline.endswith(b"\n"):
                return self._hung_up("in its request line")
            try:
                parsed = super().parse_request()
            except TimeoutError as error:
                self.close_connection = True
                self._send(
                    408,
                    error_body(f"{error}; send the whole request at once", "invalid_request_error"),
                )
                return False
            if parsed and self._receiving.hung_up:  # the headers ended at EOF, not a blank line
                return self._hung_up("in its headers")
            return parsed

        def _hung_up(self, where: str) -> bool:
            self.close_connection = True
            _quiet_line(f"{self.client_address[0]}: client went away {where}")
            return False

        def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
            if format.startswith("code %d"):
                return  # send_error's status: the access line that follows logs it
            super().log_error(format, *args)

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            deadline = time.monotonic() + limits.request_timeout
            path = self.path.split("?", 1)[0].rstrip("/")
            self._body_read = method != "POST"
            try:
                self._authorize()
                route = routes.get((method, path))
                if route is None:
                    allowed = [m for m, p in routes if p == path]
                    if allowed:
                        raise BadRequest(
                            f"{method} {path} is not allowed; use {' or '.join(allowed)}",
                            status=405,
                        )
                    known = ", ".join(f"{m} {p}" for m, p in routes)
                    raise BadRequest(
                        f"no endpoint {method} {path}; this server has {known}", status=404
                    )
                body = self._read_json(deadline) if method == "POST" else {}
                self._send(200, route(body, RequestContext(deadline, self._client_gone)))
            except BadRequest as error:
                kind = "not_found_error" if error.status == 404 else "invalid_request_error"
                self._send(error.status, error_body(str(error), kind, error.param, error.code))
            except DeadlinePassed as error:
                message = (
                    f"{error} (this server answers within --request-timeout="
                    f"{limits.request_timeout:g}s); retry, or ask for fewer tokens"
                )
                self._send(503, error_body(message, "server_error"), {"Retry-After": "1"})
            except CLIENT_GONE as error:
                self.close_connection = True
                _quiet_line(f"{self.client_address[0]}: client went away ({error})")
            except Exception as error:  # the server must outlive any one bad request
                traceback.print_exc(file=sys.stderr)
                self._send(
                    500,
                    error_body(f"internal error: {type(error).__name__}: {error}", "server_error"),
                )

        def _authorize(self) -> None:
            if api_key is None:
                return
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            given = token.strip().encode("utf-8", "surrogateescape")
            # compare_digest: the time taken does not tell how much of the key was right
            if scheme.lower() != "bearer" or not hmac.compare_digest(given, api_key):
                raise BadRequest(
                    "missing or wrong API key: send 'Authorization: Bearer <key>' with the key "
                    "this server was started with (--api-key)",
                    status=401,
                    code="invalid_api_key",
                )

        def _content_length(self) -> int:
            """The body's size from its one Content-Length header (RFC 9112: ASCII digits);
            400 for any other spelling, a second Content-Length or a Transfer-Encoding."""
            if self.headers.get("Transfer-Encoding") is not None:
                raise BadRequest(
                    "Transfer-Encoding (a chunked body) is not supported: send the body with a "
                    "Content-Length header"
                )
            values = self.headers.get_all("Content-Length") or []
            if not values:
                raise BadRequest(
                    "the request needs a Content-Length header and a JSON body", status=411
                )
            if len(values) > 1:
                raise BadRequest(
                    f"the request has {len(values)} Content-Length headers; send exactly one"
                )
            text = values[0].strip(" \t")
            if not _DIGITS.fullmatch(text):
                raise BadRequest(
                    f"Content-Length must be a number of bytes in ASCII digits, got {text[:40]!r}"
                )
            digits = text.lstrip("0") or "0"
            return int(digits) if len(digits) <= _MAX_LENGTH_DIGITS else limits.max_body_bytes + 1

        def _read_json(self, deadline: float) -> dict[str, Any]:
            size = self._content_length()
            if size > limits.max_body_bytes:
                raise BadRequest(
                    f"the body is {size} bytes; this server accepts at most "
                    f"{limits.max_body_bytes} (--max-body-bytes)",
                    status=413,
                )
            raw = bytearray()
            try:
                while len(raw) < size:  # each read stops at the request's receive deadline
                    chunk = self.rfile.read1(min(size - len(raw), 1 << 16))
                    if not chunk:
                        raise ConnectionResetError("the client closed the connection mid-body")
                    raw += chunk
                    if time.monotonic() > deadline:
                        raise BadRequest("the body arrived too slowly", status=408)
            except TimeoutError as error:
                raise BadRequest(
                    f"the body stopped short of its Content-Length: {len(raw)} of {size} bytes "
                    f"arrived ({error})",
                    status=408,
                ) from None
            self._body_read = True
            try:
                body = json.loads(raw)
            except RecursionError:
                raise BadRequest(
                    "the body is JSON nested too deeply (beyond the parser's recursion limit)"
                ) from None
            except ValueError as error:
                raise BadRequest(f"the body is not valid JSON: {error}") from None
            if not isinstance(body, dict):
                raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
            return body

        def _client_gone(self) -> bool:
            """True once the client has closed its end (a readable socket with nothing to read)."""
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
            except (OSError, ValueError):
                return True

        def _send(
            self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            if not self._body_read:  # an unread body would be parsed as the next request
                self.close_connection = True
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Bearer realm="creditgym"')
                if self.close_connection:
                    self.send_header("Connection", "close")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (*CLIENT_GONE, TimeoutError) as error:  # gone, or not reading its answer
                self.close_connection = True
                _quiet_line(f"{self.client_address[0]}: client went away ({error})")

    return Handler
