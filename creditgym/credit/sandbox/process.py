"""The sandbox's second layer from the parent's side: start the child, bound it, clean up.

`run_child` starts `child.py` in a fresh interpreter (isolated mode, no site-packages,
an empty environment) in its own session and process group, in a fresh empty directory the
child cannot use, with stdin on /dev/null and no inherited descriptor but the request and
answer pipes. It feeds the request and reads stdout, stderr and the answer pipe at once, each
with a size cap (the answer also through the caller's shape check, chunk by chunk), until the
child exits or the wall-clock deadline passes. Then, whatever
happened, the whole process group is killed and, when the child ran under a user id of its
own, every process left with that id too: nothing the code started outlives the call.
"""

from __future__ import annotations

import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ChildRun", "STREAM_CAP", "CHILD", "run_child", "sandbox_uid"]

CHILD = Path(__file__).with_name("child.py")
STREAM_CAP = 64 * 1024  # bytes of stdout or of stderr kept; more is a flood and ends the run
NOBODY = 65534
# User ids for sandbox children when the trainer runs as root: one fresh id per call, far from
# any real account, so a sweep of that id finds the call's processes and nothing else.
UID_BASE, UID_SPAN = 0x4000_0000, 0x1000_0000


@dataclass
class ChildRun:
    """What came back from one child: its answer-pipe bytes and how it ended."""

    answer: bytes
    stderr: bytes
    returncode: int | None
    timed_out: bool = False
    flooded: str = ""  # the stream that went over its cap, if any
    rejected: str = ""  # why `answer_check` refused the answer while it was read, if it did


def sandbox_uid() -> int | None:
    """A fresh unprivileged user id for one child, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    mapped = _mapped_uid_ranges()
    uid = UID_BASE + secrets.randbelow(UID_SPAN)
    if mapped is None or any(start <= uid < start + length for start, length in mapped):
        return uid
    return NOBODY  # a user namespace that maps few ids: the one every system has


def _mapped_uid_ranges() -> list[tuple[int, int]] | None:
    """The uid ranges our user namespace maps, or None where there are no user namespaces."""
    try:
        rows = Path("/proc/self/uid_map").read_text().split("\n")
    except OSError:
        return None
    return [(int(r.split()[0]), int(r.split()[2])) for r in rows if len(r.split()) == 3]


def run_child(
    request: bytes,
    *,
    wall_limit: float,
    answer_cap: int,
    uid: int | None,
    answer_check: Callable[[bytes], None] | None = None,
) -> ChildRun:
    """Run the child on `request` (JSON bytes) and collect its answer, capped and timed.

    Args:
        request: what the child reads from its request pipe.
        wall_limit: seconds from start to kill, start-up included.
        answer_cap: bytes of answer accepted; more is a flood.
        uid: the user id the child drops to (swept afterwards unless it is `NOBODY`).
        answer_check: called with each chunk of the answer as it arrives; a `ValueError` from
            it ends the run at once (its message in `ChildRun.rejected`).
    """
    workdir = tempfile.mkdtemp(prefix="creditgym-sandbox-")
    os.chmod(workdir, 0o700)  # owned by us: the child, once unprivileged, can do nothing there
    request_read, request_write = os.pipe()
    answer_read, answer_write = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(CHILD), str(request_read), str(answer_write)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(request_read, answer_write),
            close_fds=True,
            start_new_session=True,
            cwd=workdir,
            env={},
        )
    except BaseException:
        for fd in (request_read, request_write, answer_read, answer_write):
            os.close(fd)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    os.close(request_read)
    os.close(answer_write)
    try:
        return _collect(
            process, request, request_write, answer_read, wall_limit, answer_cap, answer_check
        )
    finally:
        _kill_everything(process, uid)
        for stream in (process.stdout, process.stderr):
            stream.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _collect(
    process: subprocess.Popen,
    request: bytes,
    request_write: int,
    answer_read: int,
    wall_limit: float,
    answer_cap: int,
    answer_check: Callable[[bytes], None] | None = None,
) -> ChildRun:
    """Feed the request and drain the three outputs with caps until EOF, exit or deadline."""
    deadline = time.monotonic() + wall_limit
    buffers = {"stdout": bytearray(), "stderr": bytearray(), "answer": bytearray()}
    caps = {"stdout": STREAM_CAP, "stderr": STREAM_CAP, "answer": answer_cap}
    selector = selectors.DefaultSelector()
    os.set_blocking(request_write, False)
    selector.register(request_write, selectors.EVENT_WRITE, "request")
    selector.register(process.stdout.fileno(), selectors.EVENT_READ, "stdout")
    selector.register(process.stderr.fileno(), selectors.EVENT_READ, "stderr")
    selector.register(answer_read, selectors.EVENT_READ, "answer")
    pending, run = memoryview(request), ChildRun(b"", b"", None)
    exited_at = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                run.timed_out = True
                break
            if exited_at is None and process.poll() is not None:
                exited_at = now
                _kill_group(process.pid)  # anything it left behind in its group
            if exited_at is not None and now - exited_at > 1.0:
                break  # a descriptor held open by something outside the group
            for key, _ in selector.select(timeout=min(0.1, deadline - now)):
                name = key.data
                if name == "request":
                    try:
                        pending = pending[os.write(request_write, pending) :]
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        selector.unregister(request_write)
                        os.close(request_write)
                        request_write = -1
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffers[name] += chunk
                if len(buffers[name]) > caps[name]:
                    run.flooded = name
                    return _finish(run, buffers, process)
                if name == "answer" and answer_check is not None:
                    try:
                        answer_check(chunk)
                    except ValueError as error:  # the shape is wrong already: read no more
                        run.rejected = str(error)
                        return _finish(run, buffers, process)
    finally:
        selector.close()
        if request_write >= 0:
            os.close(request_write)
        os.close(answer_read)
    if not run.timed_out:  # every pipe is closed; the exit status may trail a little
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # closed its pipes but lives on
            run.timed_out = True
    return _finish(run, buffers, process)


def _finish(run: ChildRun, buffers: dict[str, bytearray], process: subprocess.Popen) -> ChildRun:
    run.answer = bytes(buffers["answer"])
    run.stderr = bytes(buffers["stderr"][:STREAM_CAP])
    run.returncode = process.poll()
    return run


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_everything(process: subprocess.Popen, uid: int | None) -> None:
    """The child's process group, then (as root, with a uid of its own) every process of it."""
    _kill_group(process.pid)
    try:
        process.wait(timeout=5.0)
    except subprocess.TimeoutExpired:  # pragma: no cover (SIGKILL is not ignorable)
        pass
    if uid is not None and uid != NOBODY:
        for _ in range(10):  # a fork racing the sweep appears in the next round
            if not _kill_uid(uid):
                break


def _kill_uid(uid: int) -> int:
    """SIGKILL every process whose real or effective uid is `uid`; how many were found."""
    found = 0
    try:
        entries = list(os.scandir("/proc"))
    except OSError:  # no /proc: the process-group kill is all there is
        return 0
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:"):
                ids = line.split()[1:3]
                if str(uid) in ids and "Z" not in _state(status):
                    found += 1
                    try:
                        os.kill(int(entry.name), signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                break
    return found


def _state(status: str) -> str:
    for line in status.splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return ""
