"""The sandbox's child process: lock itself down, then run the factor code.

Run by `creditgym.credit.sandbox.process` as ``python -I -S child.py REQUEST ANSWER``
(isolated mode, no site-packages: this file uses the standard library only). ``REQUEST`` and
``ANSWER`` are pipe descriptors: the request (JSON) is read whole from the first, then, before
any untrusted line runs, the child applies the layers the request names, in this order:

1. ``network_namespace``: a new, empty network namespace (``unshare(CLONE_NEWNET)``; as a user
   other than root, inside a new user namespace): no interface but a loopback that is down.
2. ``rlimits``: address space, CPU seconds, file size 0, no new processes, no new descriptors,
   no core files.
3. ``unprivileged_user`` (when started as root): all groups dropped, then gid and uid set to
   the unprivileged id the parent chose; getting root back is checked to fail.
4. ``no_capabilities``: every capability dropped (a caller that is not root may hold some,
   and a new user namespace gives a full set inside it).
5. ``seccomp``: not dumpable, ``no_new_privs`` and an allow-list filter: from then on only
   memory (brk, mmap, munmap, mremap), write, exit_group, rt_sigreturn and a few harmless
   fcntl commands run; every other system call fails with EPERM (x86-64 and aarch64; see
   `SECCOMP_ARCHES`).
6. ``audit_hook`` (PEP 578): any audited event but running the code itself raises.
7. ``restricted_builtins``: the code's builtins are the allow-listed ones, and ``import``
   gives namespaces holding the allow-listed functions only.

The code compiled is exactly the source the parent checked, with ``from __future__ import
annotations`` semantics (annotations stay strings, never evaluated: the check skips them). With
``item_time_limit`` each call gets a CPU timer of its own (``ITIMER_PROF``); running over it
ends the batch with a time-limit error naming the input.

It then writes one answer, framed by the request's nonce, on the answer pipe and exits without
running any clean-up code. Which layers took effect is part of the answer.
"""

import __future__

import ctypes
import heapq  # noqa: F401  (statistics.mode imports it lazily; the audit hook would refuse it)
import json
import math
import os
import resource
import signal
import statistics
import sys
import types

ANSWER_FD = 3  # the answer pipe is moved here; 0-2 are /dev/null and two capped pipes

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, LINUX_CAPABILITY_VERSION_3 = 47, 4, 0x20080522
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS = 0x7FFF0000, 0x80000000
SECCOMP_RET_EPERM = 0x00050000 | 1  # SECCOMP_RET_ERRNO | EPERM
X32_SYSCALL_BIT = 0x40000000

# The seccomp filter is an allow-list: once it is in, the child only computes in memory it
# already has or maps anew, writes to the descriptors it holds (the answer pipe as 3, the
# parent's capped stdout/stderr pipes as 1 and 2) and exits. Found by `strace -f` on the child
# over tests/test_sandbox.py and heavier factor code (big lists, dicts, strings, deep
# recursion, every allow-listed math/statistics function, the memory and CPU limits): after
# the filter only brk, mmap, munmap, mremap, write and exit_group ever ran, and setitimer with
# a per-input time limit. Every other call fails with EPERM, so Python's own error paths stay
# readable (an import fails with "PermissionError: [Errno 1]", not a dead process).
#   write         the answer on 3; what the code prints goes to the capped pipes 1 and 2
#   brk           glibc malloc's main heap (grow and trim)
#   mmap, munmap  Python's arenas and glibc's large blocks (anonymous; the child has no file
#                 it could map but its pipes and /dev/null)
#   mremap        glibc realloc of a large block (a list or str that grows)
#   exit_group    os._exit
#   setitimer     arms and clears the per-input CPU timer (ITIMER_PROF, `item_time_limit`);
#                 a timer of this process only (its SIGPROF handler is set before the filter)
#   rt_sigreturn  the return from that timer's signal handler
#   fcntl         only the commands in `FCNTL_COMMANDS` (checked on its second argument)
# Not allowed, among others: every file, socket, process, signal, namespace, privilege and
# scheduler call; fcntl's F_SETFL (O_ASYNC), F_SETOWN(_EX) and F_SETSIG, which would make the
# kernel signal the trainer or its process group when the pipe becomes readable or writable;
# ioctl (FIOASYNC, FIOSETOWN do the same); utime(s)/utimensat; the xattr calls (a POSIX ACL is
# a chmod); sched_setaffinity; kill and its relatives.
# Numbers are the kernel's (arch/x86/entry/syscalls/syscall_64.tbl; for aarch64
# include/uapi/asm-generic/unistd.h), tests/test_sandbox.py compares them with the headers.
SECCOMP_ARCHES = {
    "x86_64": (
        0xC000003E,  # AUDIT_ARCH_X86_64 (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE)
        {"write": 1, "mmap": 9, "munmap": 11, "brk": 12, "rt_sigreturn": 15, "mremap": 25,
         "setitimer": 38, "fcntl": 72, "exit_group": 231},
    ),
    "aarch64": (  # the same set; not run by the tests (no aarch64 machine), only checked
        0xC00000B7,  # AUDIT_ARCH_AARCH64 (EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE)
        {"fcntl": 25, "write": 64, "exit_group": 94, "setitimer": 103, "rt_sigreturn": 139,
         "brk": 214, "munmap": 215, "mremap": 216, "mmap": 222},
    ),
}  # fmt: skip
# fcntl commands that only read or set a descriptor's own flags (include/uapi/asm-generic/
# fcntl.h, the same on both architectures): os.get_inheritable / os.get_blocking / FD_CLOEXEC.
FCNTL_COMMANDS = {"F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3}


def main() -> None:
    request_fd, answer_fd = int(sys.argv[1]), int(sys.argv[2])
    with os.fdopen(request_fd, "rb") as pipe:
        request = json.loads(pipe.read())
    _keep_only_answer_pipe(answer_fd)
    asked = set(request["layers"])
    libc = ctypes.CDLL(None, use_errno=True)
    applied = []
    if "network_namespace" in asked and _new_network_namespace(libc):
        applied.append("network_namespace")
    if "rlimits" in asked:
        _set_rlimits(request["memory_mb"], request["time_limit"])
        applied.append("rlimits")
    if "unprivileged_user" in asked and _drop_privileges(request["uid"]):
        applied.append("unprivileged_user")
    if "no_capabilities" in asked and _drop_capabilities(libc):
        applied.append("no_capabilities")
    _die_with_parent(libc, request["parent"])  # after the uid change, which would clear it
    if request.get("item_time_limit"):  # sigaction is not allowed once the filter is in
        signal.signal(signal.SIGPROF, _item_timeout)
    if "seccomp" in asked and _install_seccomp(libc):
        applied.append("seccomp")
    del libc  # one handle less for code that might reach this frame
    answer = _run(request, asked, applied)
    data = request["nonce"].encode() + json.dumps(answer).encode() + request["nonce"].encode()
    while data:
        data = data[os.write(ANSWER_FD, data) :]
    os._exit(0)


def _keep_only_answer_pipe(answer_fd: int) -> None:
    """Descriptors 0-2 as given and the answer pipe as 3; every other one closed."""
    if answer_fd != ANSWER_FD:
        os.dup2(answer_fd, ANSWER_FD, inheritable=False)
        os.close(answer_fd)
    os.closerange(ANSWER_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _new_network_namespace(libc: ctypes.CDLL) -> bool:
    """A new network namespace: directly with CAP_SYS_ADMIN, else inside a new user namespace
    (where unprivileged user namespaces are allowed)."""
    return libc.unshare(CLONE_NEWNET) == 0 or libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0


def _set_rlimits(memory_mb: int, time_limit: float) -> None:
    memory = memory_mb * 2**20
    cpu = math.ceil(time_limit)
    for limit, value in (
        (resource.RLIMIT_AS, (memory, memory)),
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),  # SIGXCPU, then SIGKILL a second later
        (resource.RLIMIT_FSIZE, (0, 0)),
        (resource.RLIMIT_NPROC, (0, 0)),  # binds once the uid is not root's
        (resource.RLIMIT_NOFILE, (ANSWER_FD + 1, ANSWER_FD + 1)),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_MEMLOCK, (0, 0)),
    ):
        resource.setrlimit(limit, value)


def _drop_privileges(uid: int) -> bool:
    """Become `uid` (group too) with no supplementary groups, for good; False where we cannot
    (not root, or root without the capabilities to change ids)."""
    if os.geteuid() != 0:
        return False
    try:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    except PermissionError:  # root without CAP_SETUID / CAP_SETGID: nothing to drop to
        return False
    try:
        os.setuid(0)
    except PermissionError:
        return True
    os._exit(71)  # root came back: never run the code


def _die_with_parent(libc: ctypes.CDLL, parent: int) -> None:
    """SIGKILL when the trainer dies, so not even a killed trainer leaves this process behind."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        os._exit(70)


def _drop_capabilities(libc: ctypes.CDLL) -> bool:
    """No capabilities left (effective, permitted, inheritable, ambient): what a caller that
    is not root may still hold, or what a new user namespace gave us."""
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)  # 0: this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable; two words each; all 0
    return libc.capset(header, data) == 0


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]] | None:
    """The classic-BPF filter for `machine` (``os.uname().machine``) as ``(code, jt, jf, k)``
    rows, or None where there is no table for it.

    A call from another ABI (i386 through ``int 0x80``, x32) kills the process: its numbers
    index another table, and no code of ours makes such calls. A call of
    `SECCOMP_ARCHES` runs; fcntl runs with a command of `FCNTL_COMMANDS` only; anything
    else fails with EPERM.
    """
    if machine not in SECCOMP_ARCHES:
        return None
    audit_arch, table = SECCOMP_ARCHES[machine]
    load, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, JMP|JEQ|K, JMP|JGE|K, RET|K
    # struct seccomp_data: int nr at 0, u32 arch at 4, u64 ip at 8, u64 args[6] from 16; both
    # architectures are little-endian, so the low half of args[1] is at 24. The kernel reads
    # fcntl's command as an unsigned int, so the low half is all it looks at too.
    nr, arch, fcntl_command = 0, 4, 24
    program = [
        (load, 0, 0, arch),
        (jeq, 1, 0, audit_arch),
        (ret, 0, 0, SECCOMP_RET_KILL_PROCESS),
        (load, 0, 0, nr),
        (jge, 0, 1, X32_SYSCALL_BIT),  # x86-64's x32 calls; no aarch64 number comes close
        (ret, 0, 0, SECCOMP_RET_KILL_PROCESS),
    ]
    for number in sorted(n for name, n in table.items() if name != "fcntl"):
        program += [(jeq, 0, 1, number), (ret, 0, 0, SECCOMP_RET_ALLOW)]
    commands = sorted(FCNTL_COMMANDS.values())
    program.append((jeq, 0, 2 + 2 * len(commands), table["fcntl"]))  # past the fcntl block
    program.append((load, 0, 0, fcntl_command))
    for command in commands:
        program += [(jeq, 0, 1, command), (ret, 0, 0, SECCOMP_RET_ALLOW)]
    program.append((ret, 0, 0, SECCOMP_RET_EPERM))  # fcntl with any other command
    program.append((ret, 0, 0, SECCOMP_RET_EPERM))  # every other call
    return program


def _install_seccomp(libc: ctypes.CDLL) -> bool:
    """Not dumpable (no core, no ptrace or /proc access by other processes of the same user),
    no new privileges, then the filter of `seccomp_program`; False where the machine does not
    allow it."""
    program = seccomp_program(os.uname().machine)
    if program is None:
        return False

    class SockFilter(ctypes.Structure):
        _fields_ = (
            ("code", ctypes.c_ushort),
            ("jt", ctypes.c_ubyte),
            ("jf", ctypes.c_ubyte),
            ("k", ctypes.c_uint),
        )

    class SockFprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter)))

    filters = (SockFilter * len(program))(*[SockFilter(*i) for i in program])
    fprog = SockFprog(len(program), filters)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        return False
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0


def _namespace(module: types.ModuleType, names: list[str]) -> types.SimpleNamespace:
    """The allow-listed functions of `module` (never the module itself)."""
    return types.SimpleNamespace(**{n: getattr(module, n) for n in names if hasattr(module, n)})


def _run(request: dict, asked: set[str], applied: list[str]) -> dict:
    """Compile and call the code on every input; the answer object (see `result`)."""
    loaded = {"math": math, "statistics": statistics}
    namespaces = {name: _namespace(loaded[name], request["modules"][name]) for name in loaded}
    if "restricted_builtins" in asked:
        import builtins

        def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
            if level == 0 and name in namespaces:
                return namespaces[name]
            raise ImportError(f"import of {name!r} is not allowed")

        safe = {n: getattr(builtins, n) for n in request["builtins"] if hasattr(builtins, n)}
        safe["__import__"] = guarded_import
        applied.append("restricted_builtins")
    else:  # only tests turn this off, to reach the layers below
        import builtins as safe
    try:
        code = compile(
            request["code"],
            "<factor code>",
            "exec",
            flags=__future__.annotations.compiler_flag,  # annotations are never evaluated
            dont_inherit=True,
        )
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        return {"ok": False, "error": f"cannot compile: {error}", "layers": applied}
    item_limit = request.get("item_time_limit")  # its SIGPROF handler is set in main()
    if "audit_hook" in asked:
        sys.addaudithook(_audit_hook(code))
        applied.append("audit_hook")
    outputs: list = []
    try:
        scope = {"__builtins__": safe, "__name__": "factor_code"}
        exec(code, scope)
        function = scope.get(request["function"])
        for state, action in request["inputs"]:
            if item_limit:
                signal.setitimer(signal.ITIMER_PROF, item_limit)
            value = function(state, action)
            if item_limit:
                signal.setitimer(signal.ITIMER_PROF, 0)
            outputs.append(_as_floats(value))
        return {"ok": True, "outputs": outputs, "layers": applied}
    except _ItemTimeout:
        error = f"exceeded the time limit of {item_limit:g} s per input (on input {len(outputs)})"
        return {"ok": False, "error": error, "layers": applied}
    except MemoryError:
        return {"ok": False, "error": "exceeded the memory limit", "layers": applied}
    except BaseException as error:  # noqa: BLE001  (everything goes back as a message)
        return {"ok": False, "error": _describe(error), "layers": applied}


class _ItemTimeout(BaseException):
    """One call ran over its CPU time (a BaseException: nothing the code does can catch it)."""


def _item_timeout(signum: int, frame: object) -> None:
    raise _ItemTimeout


def _audit_hook(code: types.CodeType):
    """A hook that lets exactly one audited event through: running `code` itself. The state
    is a closure, so no module global can switch it off."""

    def hook(event: str, args: tuple) -> None:
        if event == "exec" and args and args[0] is code:
            return
        raise RuntimeError(f"sandbox: {event} is not allowed")

    return hook


def _as_floats(value: object) -> list:
    if not isinstance(value, (list, tuple)) or not all(
        type(v) in (int, float)
        for v in value  # exact types: no bool
    ):
        raise TypeError(f"must return a list of numbers, got {_short(value)}")
    return [float(v) for v in value]


def _short(value: object) -> str:
    try:
        return repr(value)[:80]
    except BaseException:  # noqa: BLE001  (a repr that fails or is huge)
        return type(value).__name__


def _describe(error: BaseException) -> str:
    try:
        return f"{type(error).__name__}: {error}"[:500]
    except BaseException:  # noqa: BLE001
        return type(error).__name__


if __name__ == "__main__":
    main()
