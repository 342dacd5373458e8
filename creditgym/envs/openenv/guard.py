"""An ASGI layer in front of OpenEnv's app: the optional API key and the request-body bound.

OpenEnv's server has neither. Requests without the key get 401 (a WebSocket handshake is
refused, which clients see as HTTP 403); bodies over the bound get 413, whether they announce
their length or stream it. WebSocket messages are bounded by uvicorn's ``ws_max_size``
(an oversized message closes that one connection with code 1009). ``/health`` stays open, so
a liveness probe needs no key.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["Guard", "OPEN_PATHS"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Paths served without the API key.
OPEN_PATHS = frozenset({"/health"})


class _BodyTooLarge(Exception):
    pass


class Guard:
    """Wraps an ASGI `app`; `api_key` None serves everyone."""

    def __init__(self, app: Any, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self._key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        if self._key is not None and scope.get("path") not in OPEN_PATHS:
            if not self._authorized(scope):
                if kind == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                else:
                    await _reply(
                        send,
                        401,
                        "missing or wrong API key: send 'Authorization: "
                        "Bearer KEY' (or 'X-API-Key: KEY')",
                    )
                return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        announced = _header(scope, b"content-length")
        if announced is not None and (
            not announced.isdigit() or int(announced) > self.max_body_bytes
        ):
            await _reply(send, 413, self._too_large())
            return
        await self._bounded(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, answering 413 the moment a streamed body passes the bound (the app's
        own answer to the broken read is then dropped: FastAPI would call it a 400)."""
        received = 0
        started = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    if not started and not refused:
                        refused = True
                        await _reply(send, 413, self._too_large())
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            pass

    def _authorized(self, scope: Scope) -> bool:
        assert self._key is not None
        offered = b""
        authorization = _header(scope, b"authorization")
        if authorization is not None and authorization[:7].lower() == "bearer ":
            offered = authorization[7:].strip().encode()
        elif (api_key := _header(scope, b"x-api-key")) is not None:
            offered = api_key.strip().encode()
        return hmac.compare_digest(offered, self._key)  # constant time

    def _too_large(self) -> str:
        return f"request body over {self.max_body_bytes} bytes (the server's --max-body-bytes)"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
