"""Server-side book-keeping of a served env: the live sessions (by secret token) and the
snapshots their ``clone`` calls left, both bounded.

OpenEnv keeps one env per WebSocket session but never tells the client its session id; a
served creditgym env makes up its own random token, reports it in ``state``, and the
``/creditgym/*`` extension endpoints find the session by it.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import Any

__all__ = ["SessionDirectory"]


class SessionDirectory:
    """Live sessions by token, and a server-wide store of at most `max_snapshots` snapshots
    (the oldest goes first), so any session of the server can restore any snapshot, as
    ``restore_state`` restores into any env built alike."""

    def __init__(self, max_snapshots: int = 1024) -> None:
        if max_snapshots < 1:
            raise ValueError(f"max_snapshots must be >= 1, got {max_snapshots}")
        self.max_snapshots = max_snapshots
        self._sessions: dict[str, Any] = {}
        self._snapshots: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, session: Any) -> str:
        """Register `session`; returns its new token."""
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._sessions[token] = session
        return token

    def remove(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    def session(self, token: str) -> Any:
        """The live session of `token`; LookupError if there is none (closed, reaped, made up)."""
        with self._lock:
            found = self._sessions.get(token)
        if found is None:
            raise LookupError(
                "unknown session token (the session was closed, reaped after idling, or never "
                "existed); read the token from this session's `state`"
            )
        return found

    def __len__(self) -> int:
        return len(self._sessions)

    def keep(self, snapshot: object) -> str:
        """Store `snapshot`; returns its id (evicting the oldest beyond `max_snapshots`)."""
        snapshot_id = secrets.token_urlsafe(16)
        with self._lock:
            self._snapshots[snapshot_id] = snapshot
            while len(self._snapshots) > self.max_snapshots:
                self._snapshots.popitem(last=False)
        return snapshot_id

    def snapshot(self, snapshot_id: str) -> object:
        """The stored snapshot; LookupError if unknown or evicted."""
        with self._lock:
            found = self._snapshots.get(snapshot_id)
            if found is not None:
                self._snapshots.move_to_end(snapshot_id)  # restored ones stay longest
        if found is None:
            raise LookupError(
                f"unknown snapshot {snapshot_id[:40]!r}: never made on this server, or evicted "
                f"(the server keeps the {self.max_snapshots} most recently used; raise "
                "--max-snapshots)"
            )
        return found
