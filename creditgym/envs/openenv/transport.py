"""Small pieces of the client's transport: URLs, the server's self-description, error text."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["RemoteEnvError", "check_server_info", "http_url", "ws_url", "say", "clip"]


class RemoteEnvError(RuntimeError):
    """The server could not be reached, timed out, refused, or answered something malformed."""


def check_server_info(info: dict[str, Any]) -> dict[str, Any]:
    """A creditgym server's /creditgym/info, checked ({} for other servers)."""
    if not info:
        return {}
    if not isinstance(info.get("env_id"), str) or not isinstance(
        info.get("supports_cloning"), bool
    ):
        raise RemoteEnvError("the server's /creditgym/info is malformed")
    splits = info.get("eval_splits")
    if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
        raise RemoteEnvError("the server's /creditgym/info has malformed eval_splits")
    return info


def http_url(url: str) -> str:
    """`url` as ``http(s)://host:port[/path]``; ValueError for anything else."""
    parts = urlsplit(url.strip())
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"openenv URL {url!r} must look like http://host:port (or https://, ws://, wss://)"
        )
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def ws_url(base_url: str) -> str:
    """The WebSocket session endpoint (``/ws``) of a server's base URL."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path + "/ws", "", ""))


def say(error: BaseException) -> str:
    """An exception as one short line: its type and message."""
    return clip(f"{type(error).__name__}: {error}")


def clip(text: str, limit: int = 500) -> str:
    """`text` on one line, at most `limit` characters (a hostile server's text is unbounded)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
