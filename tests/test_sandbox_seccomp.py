"""The seccomp layer alone, against the calls issue 26's audit found a deny-list let through.

The audit: with the allow-list bypassed, a child could reset a file's times (utime, utimes,
utimensat), add or remove extended attributes, chmod a file to 0777 through a POSIX ACL
(``system.posix_acl_access``), have the kernel signal the trainer or another process group
(fcntl F_SETOWN / F_SETSIG / O_ASYNC, or the ioctls FIOSETOWN / FIOASYNC, on the answer pipe or
on stdout), and move the trainer to another CPU (sched_setaffinity). Each probe here tries every
spelling of one of these through ``os`` and ctypes, with the Python layers off, and the test
judges it by side effects on the trainer's side: a file's mode, owner, times and xattrs, the
trainer's CPU affinity and nice value, signals the trainer received (counted by handlers
installed for the test), a victim process in its own session alive. Every probe is first run
with no layer at all, to show it does the harm (so a probe that silently does nothing cannot
pass for a layer that holds); then with the seccomp layer alone, where every call must also
have failed with EPERM; then with all OS layers, and (as root) with the uid drop alone.

The file re-runs itself as root without capabilities and as the unprivileged user nobody: a
trainer that is not root shares its uid with the child, so there only seccomp stands between
the child and the trainer's files, scheduling and signals.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from creditgym.credit.sandbox.child import (
    FCNTL_COMMANDS,
    SECCOMP_ARCHES,
    SECCOMP_RET_ALLOW,
    SECCOMP_RET_EPERM,
    SECCOMP_RET_KILL_PROCESS,
    seccomp_program,
)
from creditgym.credit.sandbox.runner import SandboxError, _execute, sandbox_layers

INPUTS = [({}, "")]
EPERM = 1
OS_LAYERS = ("network_namespace", "rlimits", "unprivileged_user", "no_capabilities", "seccomp")
INNER = "CREDITGYM_SECCOMP_INNER_RUN"  # set when this file re-runs itself as another trainer
X86_64 = os.uname().machine == "x86_64"

# Shared by every probe: `call` records 0 or the errno of an ``os`` call, `raw` of a ctypes one.
PRELUDE = """
import ctypes, os, signal, struct, sys, json
libc = ctypes.CDLL(None, use_errno=True)
CODES = []
def call(f):
    try:
        f()
        CODES.append(0)
    except OSError as error:
        CODES.append(error.errno or -1)
def raw(f, *args):
    ctypes.set_errno(0)
    CODES.append(0 if f(*args) != -1 else ctypes.get_errno() or -1)
def syscall(number, *args):
    raw(libc.syscall, ctypes.c_long(number), *[
        ctypes.c_long(a) if isinstance(a, int) else a for a in args])
def spin():
    for _ in range(3_000_000):
        pass
def evaluate(s, a):
{body}
    return [float(c) for c in CODES]
"""

# x86-64 numbers of calls that have no wrapper of their own in os (glibc may route the
# wrappers through other calls): the probes make them raw as well.
RAW = {"utime": 132, "utimes": 235, "futimesat": 261, "utimensat": 280, "chmod": 90,
       "fchmodat": 268, "fchmodat2": 452, "tkill": 200, "tgkill": 234}  # fmt: skip

# A minimal POSIX ACL giving user, group and other rwx: setting it is a chmod to 0777.
ACL_0777 = struct.pack("<I", 2) + b"".join(
    struct.pack("<HHI", tag, 7, 0xFFFFFFFF) for tag in (0x01, 0x04, 0x20)
)
F_SETFL, F_SETOWN, F_SETSIG, F_SETOWN_EX, O_ASYNC = 4, 8, 10, 15, 0o20000
FIOASYNC, FIOSETOWN, SIOCSPGRP = 0x5452, 0x8901, 0x8902


@dataclass
class World:
    """What a probe could harm, as the trainer sees it, and how to put it back."""

    root: Path
    victim_file: Path
    victim: subprocess.Popen  # a process in a session of its own: its pid is its group's id
    affinity: set[int]
    nice: int
    cpu: int  # a CPU the trainer is not pinned to alone: the probes try to pin it there
    received: list[int] = field(default_factory=list)  # signals the trainer got

    def state(self) -> dict:
        stat = self.victim_file.stat()
        return {
            "mode": oct(stat.st_mode & 0o7777),
            "owner": (stat.st_uid, stat.st_gid),
            "times": (stat.st_atime_ns, stat.st_mtime_ns),
            "xattrs": {
                name: os.getxattr(self.victim_file, name)
                for name in sorted(os.listxattr(self.victim_file))
            },
            "affinity": os.sched_getaffinity(0),
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "signals received": sorted(set(self.received)),
            "victim alive": self.victim.poll() is None,
        }


@pytest.fixture
def world():
    root = Path(tempfile.mkdtemp(prefix="sandbox-seccomp-", dir="/tmp"))
    os.chmod(root, 0o755)
    victim_file = root / "victim.txt"
    victim_file.write_text("original")
    os.chmod(victim_file, 0o644)
    os.setxattr(victim_file, "user.keep", b"kept")
    os.utime(victim_file, ns=(10**18, 10**18))  # long ago: any change shows
    affinity = os.sched_getaffinity(0)
    cpus = sorted(affinity | set(range(os.cpu_count() or 1)))
    cpu = cpus[0] if affinity != {cpus[0]} else cpus[-1]
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    received: list[int] = []
    handlers = {
        number: signal.signal(number, lambda n, _frame: received.append(n))
        for number in (signal.SIGUSR1, signal.SIGIO)  # SIGIO would end the trainer otherwise
    }
    try:
        yield World(
            root, victim_file, victim, affinity, os.getpriority(os.PRIO_PROCESS, 0), cpu, received
        )
    finally:
        time.sleep(0.05)  # a signal on its way lands in our handler, not in the default action
        for number, handler in handlers.items():
            signal.signal(number, handler)
        os.sched_setaffinity(0, affinity)
        victim.kill()
        victim.wait()
        shutil.rmtree(root, ignore_errors=True)


def _utime(w: World) -> list[str]:
    p = str(w.victim_file)
    lines = [
        f"call(lambda: os.utime({p!r}, (0, 0)))",
        f"call(lambda: os.utime({p!r}))",  # to now, which needs write access only
        f"call(lambda: os.utime({p!r}, (0, 0), follow_symlinks=False))",
        f"raw(libc.utimes, {p.encode()!r}, None)",
        f"raw(libc.utime, {p.encode()!r}, None)",
    ]
    if X86_64:
        lines += [
            f"syscall({RAW['utime']}, {p.encode()!r}, None)",
            f"syscall({RAW['utimes']}, {p.encode()!r}, None)",
            f"syscall({RAW['futimesat']}, -100, {p.encode()!r}, None)",  # AT_FDCWD
            f"syscall({RAW['utimensat']}, -100, {p.encode()!r}, None, 0)",
        ]
    return lines


def _xattr(w: World) -> list[str]:
    p = str(w.victim_file)
    return [
        f"call(lambda: os.setxattr({p!r}, 'user.pwned', b'1'))",
        f"call(lambda: os.setxattr({p!r}, 'user.pwned', b'1', follow_symlinks=False))",
        f"raw(libc.setxattr, {p.encode()!r}, b'user.raw', b'1', 1, 0)",
        f"raw(libc.lsetxattr, {p.encode()!r}, b'user.raw', b'1', 1, 0)",
        f"call(lambda: os.setxattr({p!r}, 'system.posix_acl_access', {ACL_0777!r}))",
        f"call(lambda: os.setxattr({p!r}, 'trusted.pwned', b'1'))",
        f"call(lambda: os.removexattr({p!r}, 'user.keep', follow_symlinks=False))",
        f"call(lambda: os.removexattr({p!r}, 'user.keep'))",
        f"raw(libc.removexattr, {p.encode()!r}, b'user.keep')",
        # the f- calls need a descriptor of the file: opening it is already a call to refuse
        f"call(lambda: os.setxattr(os.open({p!r}, os.O_RDONLY), 'user.fd', b'1'))",
        f"call(lambda: os.removexattr(os.open({p!r}, os.O_RDONLY), 'user.keep'))",
    ]


def _chmod(w: World) -> list[str]:
    p = str(w.victim_file)
    lines = [
        f"call(lambda: os.chmod({p!r}, 0o777))",
        f"raw(libc.chmod, {p.encode()!r}, 0o777)",
        f"call(lambda: os.chown({p!r}, 4242, 4242))",
        f"call(lambda: os.chown({p!r}, -1, 4242))",
    ]
    if X86_64:
        lines += [
            f"syscall({RAW['chmod']}, {p.encode()!r}, 0o777)",
            f"syscall({RAW['fchmodat']}, -100, {p.encode()!r}, 0o777)",
            f"syscall({RAW['fchmodat2']}, -100, {p.encode()!r}, 0o777, 0)",
        ]
    return lines


def _scheduling(w: World) -> list[str]:
    trainer, cpu = os.getpid(), w.cpu
    return [
        "mask = (ctypes.c_ulong * 16)()",
        f"mask[{cpu // 64}] = {1 << cpu % 64}",
        f"call(lambda: os.sched_setaffinity(0, {{{cpu}}}))",
        f"call(lambda: os.sched_setaffinity({trainer}, {{{cpu}}}))",
        "raw(libc.sched_setaffinity, 0, ctypes.sizeof(mask), mask)",
        f"raw(libc.sched_setaffinity, {trainer}, ctypes.sizeof(mask), mask)",
        f"call(lambda: os.setpriority(os.PRIO_PROCESS, {trainer}, {min(w.nice + 1, 19)}))",
    ]


def _fasync(fd: int, target: str):
    """Make the kernel signal the trainer (or the victim's process group) when the pipe on
    `fd` is read: the parent reads it while the child spins."""

    def lines(w: World) -> list[str]:
        owner = os.getpid() if target == "trainer" else -w.victim.pid
        kind = 1 if owner > 0 else 2  # F_OWNER_PID, F_OWNER_PGRP
        body = [
            f"ex = ctypes.create_string_buffer(struct.pack('ii', {kind}, {abs(owner)}), 8)",
            f"raw(libc.fcntl, {fd}, {F_SETOWN}, {owner})",
            f"raw(libc.fcntl, {fd}, {F_SETOWN_EX}, ex)",
            f"raw(libc.fcntl, {fd}, {F_SETSIG}, {int(signal.SIGUSR1)})",
            f"raw(libc.fcntl, {fd}, {F_SETFL}, {O_ASYNC})",
            f"raw(libc.ioctl, {fd}, {FIOSETOWN}, ctypes.byref(ctypes.c_int({owner})))",
            f"raw(libc.ioctl, {fd}, {SIOCSPGRP}, ctypes.byref(ctypes.c_int({owner})))",
            f"raw(libc.ioctl, {fd}, {FIOASYNC}, ctypes.byref(ctypes.c_int(1)))",
        ]
        if fd == 1:
            body += ["for _ in range(4):", "    os.write(1, b'x' * 100)", "    spin()"]
        else:  # the answer pipe: the probe writes its own answer, then waits for the read
            body += [
                "frame = sys._getframe()",
                "while 'request' not in frame.f_locals:",
                "    frame = frame.f_back",
                "nonce = frame.f_locals['request']['nonce'].encode()",
                "answer = {'ok': True, 'outputs': [[float(c) for c in CODES]],",
                "          'layers': frame.f_locals['applied']}",
                "os.write(3, nonce + json.dumps(answer).encode() + nonce)",
                "for _ in range(4):",
                "    spin()",
                "os._exit(0)",
            ]
        return body

    return lines


def _kill(w: World) -> list[str]:
    trainer, victim, usr1 = os.getpid(), w.victim.pid, int(signal.SIGUSR1)
    lines = [
        f"call(lambda: os.kill({trainer}, {usr1}))",
        f"call(lambda: os.kill({victim}, {int(signal.SIGTERM)}))",
        f"call(lambda: os.killpg({victim}, {int(signal.SIGTERM)}))",
        f"raw(libc.sigqueue, {trainer}, {usr1}, None)",
        f"call(lambda: signal.pidfd_send_signal(os.pidfd_open({victim}), {int(signal.SIGTERM)}))",
    ]
    if X86_64:
        lines += [
            f"syscall({RAW['tkill']}, {trainer}, {usr1})",
            f"syscall({RAW['tgkill']}, {trainer}, {trainer}, {usr1})",
        ]
    return lines


PROBES = {
    "utime": _utime,
    "xattr and ACL": _xattr,
    "chmod and chown": _chmod,
    "affinity and nice": _scheduling,
    "O_ASYNC stdout to the trainer": _fasync(1, "trainer"),
    "O_ASYNC stdout to a process group": _fasync(1, "group"),
    "O_ASYNC answer pipe to the trainer": _fasync(3, "trainer"),
    "O_ASYNC answer pipe to a process group": _fasync(3, "group"),
    "kill": _kill,
}
# What each probe harms with no layer in its way, whoever the trainer is (the owner of the
# file and of the victim process, so uid checks alone never stop the child).
HARMS = {
    "utime": {"times"},
    "xattr and ACL": {"xattrs", "mode"},
    "chmod and chown": {"mode"},
    "affinity and nice": {"affinity", "nice"},
    "O_ASYNC stdout to the trainer": {"signals received"},
    "O_ASYNC stdout to a process group": {"victim alive"},
    "O_ASYNC answer pipe to the trainer": {"signals received"},
    "O_ASYNC answer pipe to a process group": {"victim alive"},
    "kill": {"signals received", "victim alive"},
}


def _code(name: str, w: World) -> str:
    body = "\n".join("    " + line for line in PROBES[name](w))
    return PRELUDE.format(body=body)


def _probe(name: str, w: World, layers: tuple[str, ...]) -> tuple[object, dict, dict]:
    """Run probe `name` under `layers`: its outcome, and the world before and after."""
    before = w.state()
    try:
        outcome: object = _execute(_code(name, w), INPUTS, "evaluate", 10.0, 256, layers)
    except SandboxError as error:
        outcome = error
    time.sleep(0.1)  # a signal on its way is delivered, a killed victim is reaped by now
    return outcome, before, w.state()


def _changed(before: dict, after: dict) -> set[str]:
    return {key for key in before if before[key] != after[key]}


@pytest.mark.parametrize("name", list(PROBES))
def test_each_probe_does_its_harm_with_no_layer_in_the_way(name, world):
    """The control: without it a probe that did nothing would pass for a layer that holds."""
    if name == "affinity and nice" and len(world.affinity | {world.cpu}) < 2:
        pytest.skip("one CPU: no other affinity to set")
    outcome, before, after = _probe(name, world, ())
    assert HARMS[name] <= _changed(before, after), (outcome, before, after)
    os.sched_setaffinity(0, world.affinity)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, world.nice)
    except PermissionError:  # without CAP_SYS_NICE the trainer stays one step nicer
        pass


@pytest.mark.parametrize("layers", [("seccomp",), OS_LAYERS, ("unprivileged_user",)], ids="+".join)
@pytest.mark.parametrize("name", list(PROBES))
def test_the_layer_holds_by_side_effects(name, layers, world):
    needed = layers if len(layers) == 1 else ("seccomp",)  # the full set: what the machine has
    if not all(sandbox_layers()[layer] for layer in needed):
        pytest.skip(f"this machine does not allow the layers {needed}")
    outcome, before, after = _probe(name, world, layers)
    assert not _changed(before, after), (outcome, before, after)
    if "seccomp" in layers:  # every call reached the filter, and the filter refused it
        assert isinstance(outcome, list) and outcome, outcome
        assert set(outcome[0]) == {float(EPERM)}, outcome


def test_the_child_makes_only_the_calls_it_needs_after_the_filter():
    """Plain factor code, and what a heavier one does to memory, work under the filter."""
    code = (
        "import math\nimport statistics\n"
        "def evaluate(s, a):\n"
        "    xs = [float(i) for i in range(300000)]\n"  # mmap, munmap; mremap as it grows
        "    text = ''\n"
        "    for i in range(20000):\n"
        "        text += str(i)\n"
        "    return [math.fsum(xs), statistics.median(xs), float(len(text))]\n"
    )
    assert _execute(code, INPUTS, "evaluate", 10.0, 512, ("seccomp",)) == [
        [44999850000.0, 149999.5, 88890.0]
    ]


# ---- the filter program itself, run by a small BPF interpreter, for both architectures ------


def _run_bpf(program: list[tuple[int, int, int, int]], data: bytes) -> int:
    """What the kernel's classic-BPF interpreter returns for the program's instructions
    (only the four the builder uses)."""
    pc, accumulator = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == 0x20:  # BPF_LD | BPF_W | BPF_ABS
            accumulator = struct.unpack_from("<I", data, k)[0]
        elif code == 0x15:  # BPF_JMP | BPF_JEQ | BPF_K
            pc += jt if accumulator == k else jf
        elif code == 0x35:  # BPF_JMP | BPF_JGE | BPF_K
            pc += jt if accumulator >= k else jf
        elif code == 0x06:  # BPF_RET | BPF_K
            return k
        else:
            raise AssertionError(f"unknown instruction {code:#x}")
        pc += 1


def _seccomp_data(arch: int, nr: int, *args: int) -> bytes:
    padded = (list(args) + [0] * 6)[:6]
    return struct.pack("<IIQ6Q", nr, arch, 0, *padded)


@pytest.mark.parametrize("machine", sorted(SECCOMP_ARCHES))
def test_the_filter_allows_exactly_the_table(machine):
    """Every system call number, every fcntl command: allowed exactly as the table says."""
    arch, table = SECCOMP_ARCHES[machine]
    program = seccomp_program(machine)
    # Written out here, not read from the child: widening the filter means changing this test.
    assert set(table) == {"brk", "mmap", "munmap", "mremap", "write", "exit_group",
                          "setitimer", "rt_sigreturn", "fcntl"}  # fmt: skip
    assert FCNTL_COMMANDS == {"F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3}
    allowed = {n for name, n in table.items() if name != "fcntl"}
    for nr in range(1024):
        expected = SECCOMP_RET_ALLOW if nr in allowed else SECCOMP_RET_EPERM
        if nr != table["fcntl"]:
            assert _run_bpf(program, _seccomp_data(arch, nr)) == expected, nr
    fcntl, harmless = table["fcntl"], set(FCNTL_COMMANDS.values())
    for command in range(2048):  # F_SETOWN 8, F_SETSIG 10, F_SETLEASE 1024, F_NOTIFY 1026 ...
        expected = SECCOMP_RET_ALLOW if command in harmless else SECCOMP_RET_EPERM
        for high in (0, 1 << 32):  # the kernel reads the command as a 32-bit unsigned int
            data = _seccomp_data(arch, fcntl, 1, command | high)
            assert _run_bpf(program, data) == expected, (command, high)
    for other_abi in (0x40000003, 0xC000003E if machine != "x86_64" else 0xC00000B7):
        assert _run_bpf(program, _seccomp_data(other_abi, 1)) == SECCOMP_RET_KILL_PROCESS
    for x32 in (0x40000000, 0x40000000 | 1, 0x40000000 | table["fcntl"], 0xFFFFFFFF):
        assert _run_bpf(program, _seccomp_data(arch, x32)) == SECCOMP_RET_KILL_PROCESS


# ---- the same tests for the other trainers ------------------------------------------------

PRIVILEGE_DEPENDENT = "does_its_harm or holds_by_side_effects or calls_it_needs"


def _inner_run(prefix: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__]
        + ["-k", PRIVILEGE_DEPENDENT, "-rs"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, INNER: "1", "PYTHONDONTWRITEBYTECODE": "1"},
    )


def _can_import_the_sandbox(prefix: list[str]) -> bool:
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import creditgym.credit.sandbox.runner"],
        capture_output=True,
        cwd=Path(__file__).parent.parent,
    )
    return probe.returncode == 0


def _check(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


@pytest.mark.skipif(bool(os.environ.get(INNER)), reason="already the inner run")
@pytest.mark.skipif(os.geteuid() != 0, reason="already unprivileged: this run is the test")
@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv (util-linux)")
def test_seccomp_holds_for_a_trainer_that_is_root_without_capabilities():
    _check(_inner_run(["setpriv", "--inh-caps=-all", "--bounding-set=-all"]))


@pytest.mark.skipif(bool(os.environ.get(INNER)), reason="already the inner run")
@pytest.mark.skipif(os.geteuid() != 0, reason="already unprivileged: this run is the test")
@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv (util-linux)")
def test_seccomp_holds_for_a_trainer_that_is_the_nobody_user():
    """As nobody:nogroup. Where the interpreter sits in a directory nobody cannot enter (a
    pyenv under /root), nobody also gets CAP_DAC_READ_SEARCH to read it; the child keeps it
    when only the seccomp layer is asked for, so that layer is then tested against a child a
    little stronger than an unprivileged trainer's."""
    plain = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    for prefix in (
        plain,
        [*plain, "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"],
    ):
        if _can_import_the_sandbox(prefix):
            break
    else:
        pytest.skip(f"user nobody cannot run this interpreter ({sys.executable})")
    _check(_inner_run(prefix))
