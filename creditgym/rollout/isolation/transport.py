"""How the rollout reaches one env worker: the `Transport` interface and its pipe implementation.

A `Transport` carries the protocol's messages (`creditgym.rollout.isolation.protocol`) to one
env session and back: `send` a request, `receive` the answer by a deadline, `resident_bytes`
of whatever holds the env (None where it cannot be known), `abort` (drop the session now) and
`close`. `receive` turns every way the other side can break into an `EnvFailure` with its
reason, so the env proxy above it never sees a socket or a process.

`WorkerProcess` is the transport to a worker process of this machine, over a socket pair:

- The worker is started with ``forkserver`` where the platform has it (``spawn`` elsewhere),
  never ``fork``: a trainer holds threads (torch, tokenizers) that a plain fork would copy
  mid-lock. The fork server preloads the worker module once, so a restart costs a fork and
  the env's construction, not a fresh interpreter.
- Frames are a 4-byte big-endian length, then that many bytes of JSON; the channel is a
  dedicated socket (what an env prints to stdout goes to the terminal, not into the protocol).
- Reading is bounded three ways: the deadline (the worker is killed when it passes:
  ``timeout``), `MAX_MESSAGE_BYTES` per frame (a larger length is ``garbage``), and the
  worker's exit, watched beside the socket (an exit without an answer is a ``crash``, even
  when a grandchild process keeps the socket open).
- Resident memory is read from ``/proc/<pid>/statm`` (or psutil, where installed).
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from creditgym.rollout.failures import CRASH, GARBAGE, TIMEOUT, EnvFailure
from creditgym.rollout.isolation.protocol import (
    MAX_MESSAGE_BYTES,
    ProtocolError,
    close_request,
    decode,
    encode,
)

__all__ = [
    "Transport",
    "WorkerProcess",
    "read_frame",
    "resident_bytes",
    "worker_context",
    "write_frame",
]

_HEADER = struct.Struct("!I")
#: Seconds a closing worker gets to exit on its own before it is killed.
CLOSE_GRACE_S = 1.0


class Transport(Protocol):
    """One env session's channel (see the module docstring); an OpenEnv WebSocket client can
    stand in for `WorkerProcess` by implementing these five methods."""

    def send(self, message: Mapping[str, Any], what: str) -> None:
        """Send a request; `EnvFailure` (``crash``) if the other side is gone."""

    def receive(self, deadline: float, what: str) -> dict[str, Any]:
        """The next message, by `deadline` (``time.monotonic()``); `EnvFailure` with the
        reason if none comes (``timeout``, ``crash``) or it is not a message (``garbage``)."""

    def resident_bytes(self) -> int | None:
        """Resident memory of what holds the env, or None where it cannot be read."""

    def abort(self) -> None:
        """End the session now (kill the worker)."""

    def close(self) -> None:
        """End the session politely, then `abort` if it lingers."""


# ---- frames ------------------------------------------------------------------------------------


class _FrameTooLarge(Exception):
    pass


def write_frame(fd: int, payload: bytes) -> None:
    """Write one frame (length, then `payload`) to `fd`, blocking until all is written."""
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def read_frame(
    fd: int,
    deadline: float | None = None,
    *,
    limit: int = MAX_MESSAGE_BYTES,
    sentinel: int | None = None,
) -> bytes:
    """One frame's payload from `fd`.

    Raises TimeoutError past `deadline` (None: wait for ever), EOFError when the other end is
    closed or `sentinel` (a process sentinel) fires with nothing left to read, and
    `_FrameTooLarge` for a length over `limit` (the payload is not read).
    """
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline, sentinel))
    if size > limit:
        raise _FrameTooLarge(size)
    return _read_exact(fd, size, deadline, sentinel)


def _read_exact(fd: int, count: int, deadline: float | None, sentinel: int | None) -> bytes:
    chunks: list[bytes] = []
    remaining = count
    poller = select.poll()  # not select(): a trainer with hundreds of workers passes FD_SETSIZE
    poller.register(fd, select.POLLIN)
    if sentinel is not None:
        poller.register(sentinel, select.POLLIN)
    while remaining:
        wait_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        events = dict(poller.poll(wait_ms))
        if not events:
            raise TimeoutError
        if fd not in events:  # only the sentinel: the worker exited with nothing left to say
            raise EOFError
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# ---- memory ------------------------------------------------------------------------------------

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes(pid: int) -> int | None:
    """Resident set size of process `pid` (None if it cannot be read: no /proc, no psutil)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return None


# ---- the worker process ------------------------------------------------------------------------


def worker_context() -> Any:
    """The multiprocessing context workers start in (see the module docstring)."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":  # no effect once the server runs; it then already has them
        context.set_forkserver_preload(["creditgym.rollout.isolation.worker"])
    return context


class WorkerProcess:
    """A `Transport` to a worker process running `target(channel, *args)` (the worker's main,
    `creditgym.rollout.isolation.worker.serve`); the process starts at once."""

    def __init__(self, target: Callable[..., Any], args: tuple, *, name: str = "env-worker"):
        context = worker_context()
        ours, theirs = context.Pipe(duplex=True)
        self.process = context.Process(target=target, args=(theirs, *args), name=name, daemon=True)
        self.process.start()
        theirs.close()  # else our copy keeps the socket open and a dead worker never reads EOF
        self.channel = ours
        self.pid: int = self.process.pid  # type: ignore[assignment]

    def send(self, message: Mapping[str, Any], what: str) -> None:
        try:
            write_frame(self.channel.fileno(), encode(message))
        except OSError:  # a broken pipe or a closed channel: the worker is gone
            raise self._crashed(what) from None

    def receive(self, deadline: float, what: str) -> dict[str, Any]:
        try:
            payload = read_frame(self.channel.fileno(), deadline, sentinel=self.process.sentinel)
        except TimeoutError:
            self.abort()
            raise EnvFailure(
                TIMEOUT, f"the env worker (pid {self.pid}) did not answer {what} in time; killed"
            ) from None
        except (EOFError, OSError):
            raise self._crashed(what) from None
        except _FrameTooLarge as error:
            self.abort()
            raise EnvFailure(
                GARBAGE,
                f"the env worker (pid {self.pid}) announced a {error.args[0]}-byte answer to "
                f"{what} (the limit is {MAX_MESSAGE_BYTES}); killed",
            ) from None
        try:
            return decode(payload)
        except ProtocolError as error:
            self.abort()
            raise EnvFailure(
                GARBAGE, f"the env worker (pid {self.pid}) answered {what} with {error}; killed"
            ) from None

    def resident_bytes(self) -> int | None:
        return resident_bytes(self.pid)

    def abort(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5.0)
        self.channel.close()

    def close(self) -> None:
        if self.process.is_alive() and not self.channel.closed:
            try:
                write_frame(self.channel.fileno(), encode(close_request()))
            except OSError:
                pass
            self.process.join(timeout=CLOSE_GRACE_S)
        self.abort()

    def _crashed(self, what: str) -> EnvFailure:
        """The failure of a worker that went away during `what` (reaped, so its pid is free)."""
        self.process.join(timeout=CLOSE_GRACE_S)
        code = self.process.exitcode
        self.abort()
        if code is None:
            how = "closed its channel"
        elif code < 0:
            how = f"was killed by {_signal_name(-code)}"
        else:
            how = f"exited with code {code}"
        return EnvFailure(CRASH, f"the env worker (pid {self.pid}) {how} during {what}")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
