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
5. ``seccomp``: ``no_new_privs`` and a filter that makes the system calls for files,
   sockets, processes, signals, namespaces and privileges fail with EPERM (x86-64 only).
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
PR_SET_PDEATHSIG = 1
AUDIT_ARCH_X86_64 = 0xC000003E
SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS = 0x7FFF0000, 0x80000000
SECCOMP_RET_EPERM = 0x00050000 | 1
X32_SYSCALL_BIT = 0x40000000

# x86-64 numbers of the system calls the code never needs once the child is set up.
DENIED_SYSCALLS = {
    "open": 2, "ioctl": 16, "shmget": 29, "shmat": 30, "shmctl": 31, "socket": 41,
    "connect": 42, "accept": 43, "sendto": 44, "sendmsg": 46, "bind": 49, "listen": 50,
    "socketpair": 53, "clone": 56, "fork": 57, "vfork": 58, "execve": 59, "kill": 62,
    "semget": 64, "semop": 65, "semctl": 66, "shmdt": 67, "msgget": 68, "msgsnd": 69,
    "msgrcv": 70, "msgctl": 71, "truncate": 76, "ftruncate": 77, "chdir": 80, "fchdir": 81,
    "rename": 82, "mkdir": 83, "rmdir": 84, "creat": 85, "link": 86, "unlink": 87,
    "symlink": 88, "chmod": 90, "fchmod": 91, "chown": 92, "fchown": 93, "lchown": 94,
    "ptrace": 101, "setuid": 105, "setgid": 106, "setpgid": 109, "setsid": 112,
    "setreuid": 113, "setregid": 114, "setgroups": 116, "setresuid": 117, "setresgid": 119,
    "setfsuid": 122, "setfsgid": 123, "capset": 126, "rt_sigqueueinfo": 129, "utime": 132,
    "mknod": 133, "personality": 135, "setpriority": 141, "sched_setparam": 142,
    "sched_setscheduler": 144, "vhangup": 153, "pivot_root": 155, "prctl": 157,
    "setrlimit": 160, "chroot": 161, "acct": 163, "mount": 165, "umount2": 166, "swapon": 167,
    "swapoff": 168, "reboot": 169, "init_module": 175, "delete_module": 176, "tkill": 200,
    "mq_open": 240, "mq_unlink": 241, "kexec_load": 246, "add_key": 248, "request_key": 249,
    "keyctl": 250, "ioprio_set": 251, "migrate_pages": 256, "openat": 257, "mkdirat": 258,
    "mknodat": 259, "fchownat": 260, "futimesat": 261, "unlinkat": 263, "renameat": 264,
    "linkat": 265, "symlinkat": 266, "fchmodat": 268, "unshare": 272, "move_pages": 279,
    "utimensat": 280, "accept4": 288, "rt_tgsigqueueinfo": 297, "perf_event_open": 298,
    "fanotify_init": 300, "prlimit64": 302, "name_to_handle_at": 303, "open_by_handle_at": 304,
    "sendmmsg": 307, "setns": 308, "process_vm_readv": 310, "process_vm_writev": 311,
    "kcmp": 312, "finit_module": 313, "sched_setattr": 314, "renameat2": 316, "seccomp": 317,
    "memfd_create": 319, "bpf": 321, "execveat": 322, "userfaultfd": 323,
    "pidfd_send_signal": 424, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_open": 434, "clone3": 435,
    "openat2": 437, "pidfd_getfd": 438, "process_madvise": 440, "mount_setattr": 442,
    "memfd_secret": 447, "fchmodat2": 452, "tgkill": 234,
}  # fmt: skip


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


def _install_seccomp(libc: ctypes.CDLL) -> bool:
    """The deny filter of `DENIED_SYSCALLS`; False where the machine does not allow it."""
    if os.uname().machine != "x86_64":
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

    load, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, JMP|JEQ|K, JMP|JGE|K, RET|K
    program = [
        (load, 0, 0, 4),  # seccomp_data.arch
        (jeq, 1, 0, AUDIT_ARCH_X86_64),
        (ret, 0, 0, SECCOMP_RET_KILL_PROCESS),
        (load, 0, 0, 0),  # seccomp_data.nr
        (jge, 0, 1, X32_SYSCALL_BIT),  # the x32 numbers would dodge the list
        (ret, 0, 0, SECCOMP_RET_KILL_PROCESS),
    ]
    for number in sorted(set(DENIED_SYSCALLS.values())):
        program += [(jeq, 0, 1, number), (ret, 0, 0, SECCOMP_RET_EPERM)]
    program.append((ret, 0, 0, SECCOMP_RET_ALLOW))
    filters = (SockFilter * len(program))(*[SockFilter(*i) for i in program])
    fprog = SockFprog(len(program), filters)
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
    item_limit = request.get("item_time_limit")
    if item_limit:
        signal.signal(signal.SIGPROF, _item_timeout)
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
