"""One HTTP exchange bounded in time and size, on top of httpx (used by `OpenAIPolicy`).

httpx's timeouts apply to each socket operation, so a server that sends one byte every second
never trips them. `ExchangeDeadline` adds a deadline for the whole exchange: it learns the
connection's socket from httpcore's ``trace`` extension and shuts it down when the deadline
passes, which wakes a read blocked inside httpx. `read_capped` reads a streamed body up to a
byte cap, decoding gzip/deflate itself in bounded steps (httpx inflates a whole network chunk
at once, and one 64 KiB chunk of a gzip bomb inflates to about 64 MiB).
"""

from __future__ import annotations

import socket
import threading
import time
import zlib
from typing import Any

import httpx

__all__ = ["ExchangeDeadline", "ResponseTooLarge", "UnsupportedEncoding", "read_capped"]

#: Connection events whose return value is the network stream the exchange runs on.
_STREAM_EVENTS = ("connection.connect_tcp.complete", "connection.start_tls.complete")


class ResponseTooLarge(Exception):
    """The body (after decoding) is larger than the cap."""


class UnsupportedEncoding(Exception):
    """The body has a ``Content-Encoding`` we do not decode (we ask for gzip or deflate only)."""


class ExchangeDeadline:
    """Shut the exchange's socket when `seconds` have passed; use as a context manager and
    pass `trace` as the request's ``extensions={"trace": ...}``.

    The connection must be fresh (no keep-alive reuse): httpcore reports the socket only when
    it connects. `expired` tells afterwards whether the watchdog fired, so the caller can call
    the resulting transport error what it is, a timeout.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = max(seconds, 0.0)
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event not in _STREAM_EVENTS:
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:  # the deadline passed while connecting
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def __enter__(self) -> ExchangeDeadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed, or the TLS layer took the descriptor over
        pass


def read_capped(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    """The body of a streamed `response`, decoded, at most `max_bytes` long.

    Raises `ResponseTooLarge` as soon as the declared or the decoded size passes the cap (the
    rest is never read), `UnsupportedEncoding` for encodings other than gzip and deflate, and
    `httpx.ReadTimeout` when `deadline` (a `time.monotonic` value) passes between chunks.
    """
    declared = response.headers.get("content-length", "")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity") and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"the answer declares {declared} bytes")
    if encoding in ("", "identity"):
        inflater = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    else:
        raise UnsupportedEncoding(f"the answer is encoded as {encoding!r}")
    body = bytearray()
    for chunk in response.iter_raw():
        if inflater is None:
            body += chunk
        else:
            try:
                while chunk and not inflater.eof:
                    # never more than one byte past the cap, however well the chunk compresses
                    body += inflater.decompress(chunk, max_bytes + 1 - len(body))
                    if len(body) > max_bytes:
                        break
                    chunk = inflater.unconsumed_tail
            except zlib.error as error:
                raise httpx.DecodingError(f"the {encoding} body is corrupt: {error}") from None
        if len(body) > max_bytes:
            raise ResponseTooLarge(f"the answer is larger than {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the answer did not finish before the deadline")
    return bytes(body)
