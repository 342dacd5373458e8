"""The limits of `creditgym serve-env` and its command-line options."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from creditgym.envs.openenv.client import API_KEY_ENV

__all__ = ["API_KEY_ENV", "ServeLimits", "add_serve_arguments", "limits_from_args"]


@dataclass(frozen=True)
class ServeLimits:
    """What one served env allows its clients."""

    max_sessions: int = 64  # WebSocket sessions (one env each) at once; more are refused
    session_timeout: float | None = 600.0  # seconds a session may idle before it is closed
    max_body_bytes: int = 1 << 20  # largest HTTP request body (413 beyond)
    max_message_bytes: int = 1 << 20  # largest WebSocket message (closes that connection)
    max_snapshots: int = 1024  # clone snapshots the server keeps (oldest evicted)
    api_key: str | None = None  # required of every request but /health when set

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_body_bytes", "max_message_bytes", "max_snapshots"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.session_timeout is not None and self.session_timeout <= 0:
            raise ValueError(f"session_timeout must be > 0 seconds, got {self.session_timeout}")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``creditgym serve-env``."""
    defaults = ServeLimits()
    parser.add_argument("env", help="registered single-agent env id, e.g. creditgym/Household-v0")
    parser.add_argument(
        "--env-kwarg", action="append", default=[], help="key=value passed to creditgym.make"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: loopback only; anything else should use --api-key)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV} if set, else none)",
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--max-sessions",
        type=int,
        default=defaults.max_sessions,
        help="WebSocket sessions at once (one env each); more are refused",
    )
    limits.add_argument(
        "--session-timeout",
        type=float,
        default=defaults.session_timeout,
        help="seconds a session may idle before the server closes it (0: never)",
    )
    limits.add_argument(
        "--max-body-bytes",
        type=int,
        default=defaults.max_body_bytes,
        help="largest HTTP request body; larger ones get 413",
    )
    limits.add_argument(
        "--max-message-bytes",
        type=int,
        default=defaults.max_message_bytes,
        help="largest WebSocket message; a larger one closes its connection",
    )
    limits.add_argument(
        "--max-snapshots",
        type=int,
        default=defaults.max_snapshots,
        help="clone snapshots kept for restore (the least recently used go first)",
    )


def limits_from_args(args: argparse.Namespace) -> ServeLimits:
    """`ServeLimits` from parsed options; raises ValueError naming a bad value."""
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    return ServeLimits(
        max_sessions=args.max_sessions,
        session_timeout=args.session_timeout or None,
        max_body_bytes=args.max_body_bytes,
        max_message_bytes=args.max_message_bytes,
        max_snapshots=args.max_snapshots,
        api_key=api_key,
    )
