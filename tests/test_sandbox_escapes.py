"""Escapes from the LaRe sandbox, judged by side effects, through every layer and each alone.

Side effects checked: a marker file never written, a victim file unchanged (content, mode,
name), no symlink made, a victim process and the parent (this pytest) alive, a TCP listener on
127.0.0.1 never connected to, a secret file's content and a secret environment variable in no
error text, no process left behind, the parent's memory bounded under an output flood.

Layers reached: the allow-list (`run_sandboxed`); the OS below it with the allow-list and the
Python-level layers bypassed (`_execute` with full builtins); each OS layer alone; the parent's
validator against a child that forges its answer. The file also re-runs itself without root.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import pytest

from creditgym.credit.sandbox.runner import (
    CHILD_LAYERS,
    SandboxError,
    _execute,
    run_sandboxed,
    sandbox_layers,
)

INPUTS = [({"x": 1.0}, "look")]
OS_LAYERS = ("network_namespace", "rlimits", "unprivileged_user", "no_capabilities", "seccomp")
SECRET = "s3cr3t-" + os.urandom(8).hex()
INNER = "CREDITGYM_SANDBOX_INNER_RUN"  # set when this file re-runs itself unprivileged


def _needs(*layers: str) -> None:
    missing = [name for name in layers if not sandbox_layers()[name]]
    if missing:
        pytest.skip(f"this machine does not allow the layers {missing} (see sandbox_layers())")


class Arena:
    """Targets under a fresh directory in /tmp that any user can enter but only we can write."""

    def __init__(self, root: Path):
        self.root = root
        self.locked = root / "locked"  # 0755: the sandbox's user cannot write here
        self.open = root / "open"  # 1777: anyone can, so only the layers stop a write
        self.locked.mkdir()
        self.open.mkdir()
        os.chmod(root, 0o755)
        os.chmod(self.locked, 0o755)
        os.chmod(self.open, 0o1777)
        self.marker = self.locked / "marker"
        self.open_marker = self.open / "marker"
        self.link = self.locked / "link"
        self.victim = self.locked / "victim.txt"
        self.victim.write_text("original")
        os.chmod(self.victim, 0o644)
        self.secret = self.locked / "secret.txt"
        self.secret.write_text(SECRET)
        os.chmod(self.secret, 0o600)

    def untouched(self, outcome: object) -> None:
        """Every side effect an escape could have had, checked."""
        assert not self.marker.exists() and not self.open_marker.exists()
        assert not os.path.lexists(self.link)
        assert self.victim.read_text() == "original"
        assert self.victim.stat().st_mode & 0o777 == 0o644
        assert sorted(p.name for p in self.locked.iterdir()) == ["secret.txt", "victim.txt"]
        assert SECRET not in str(outcome)


@pytest.fixture
def arena():
    root = Path(tempfile.mkdtemp(prefix="sandbox-arena-", dir="/tmp"))
    try:
        yield Arena(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)  # a connection would be queued before the call returns
    yield server
    try:  # never connected to
        connection, _ = server.accept()
    except BlockingIOError:
        pass
    else:
        connection.close()
        raise AssertionError("the sandboxed code connected to 127.0.0.1")
    finally:
        server.close()


@pytest.fixture
def victim_process():
    process = subprocess.Popen(["sleep", "60"])
    yield process
    alive = process.poll() is None
    process.kill()
    process.wait()
    assert alive, "the sandboxed code killed a process of ours"


@pytest.fixture(autouse=True)
def secret_environment(monkeypatch):
    monkeypatch.setenv("CREDITGYM_TEST_SECRET", SECRET)


def attempt(code: str, layers=CHILD_LAYERS, time_limit: float = 3.0) -> object:
    """Run `code` below the allow-list; the outcome (result or error) for the checks."""
    try:
        return _execute(code, INPUTS, "evaluate", time_limit, 256, layers)
    except SandboxError as error:
        return error


# ---- layer 1: the allow-list stops every spelling, before anything runs ---------------------

ESCAPES = {
    # frames, the way to the audit hook's globals: generators, tracebacks, decorators, lambdas
    "generator frame": (
        "def g():\n    yield 1\ndef evaluate(s, a):\n    f = g().gi_frame.f_back\n    return [0.0]"
    ),
    "genexp frame": "def evaluate(s, a):\n    f = (x for x in [1]).gi_frame\n    return [0.0]",
    "match traceback": (
        "def evaluate(s, a):\n    match ValueError():\n        case ValueError(__traceback__=tb):\n"
        "            return [0.0]\n    return [0.0]"
    ),
    "match keyword pattern": (
        "def evaluate(s, a):\n    match s:\n        case {{'y': y}}:\n"
        "            return [y]\n    return [0.0]"
    ),
    "except traceback": (
        "def evaluate(s, a):\n    try:\n        1 / 0\n    except Exception as e:\n"
        "        f = e.__traceback__.tb_frame\n    return [0.0]"
    ),
    "decorator": "def d(f):\n    return f\n@d\ndef evaluate(s, a):\n    return [0.0]",
    "lambda": "def evaluate(s, a):\n    f = lambda: 0\n    return [f()]",
    "tb_frame attribute": "def evaluate(s, a):\n    return [s.tb_frame]",
    "f_globals attribute": "def evaluate(s, a):\n    return [s.f_globals]",
    # modules reachable from the allowed ones
    "statistics.sys": (
        "import statistics\ndef evaluate(s, a):\n"
        "    statistics.sys.modules['os'].system('touch {marker}')\n    return [0.0]"
    ),
    "statistics.random._os": (
        "import statistics\ndef evaluate(s, a):\n"
        "    statistics.random._os.remove('{victim}')\n    return [0.0]"
    ),
    "from statistics import sys": (
        "from statistics import sys\ndef evaluate(s, a):\n    return [0.0]"
    ),
    "import statistics.random": "import statistics.random\ndef evaluate(s, a):\n    return [0.0]",
    "math loader": "import math\ndef evaluate(s, a):\n    return [math.__loader__]",
    # os and friends, by every door
    "import os": (
        "import os\ndef evaluate(s, a):\n    os.system('touch {marker}')\n    return [0.0]"
    ),
    "import os as": (
        "import os as m\ndef evaluate(s, a):\n    m.remove('{victim}')\n    return [0.0]"
    ),
    "from os import": (
        "from os import kill, getppid\ndef evaluate(s, a):\n    kill(getppid(), 9)\n"
        "    return [0.0]"
    ),
    "__import__": (
        "def evaluate(s, a):\n    __import__('os').system('touch {marker}')\n    return [0.0]"
    ),
    "subclasses": (
        "def evaluate(s, a):\n    for c in ().__class__.__base__.__subclasses__():\n"
        "        if c.__name__ == '_wrap_close':\n"
        "            c.__init__.__globals__['system']('touch {marker}')\n    return [0.0]"
    ),
    "getattr string": "def evaluate(s, a):\n    return [getattr(s, '__class__')]",
    "format fields": "def evaluate(s, a):\n    return [len('{{0.__class__}}'.format(s))]",
    "open write": "def evaluate(s, a):\n    open('{marker}', 'w').write('x')\n    return [0.0]",
    "open read secret": "def evaluate(s, a):\n    return [float(open('{secret}').read())]",
    "exec": "def evaluate(s, a):\n    exec('import os')\n    return [0.0]",
    "eval": "def evaluate(s, a):\n    return [eval('1')]",
    "compile": "def evaluate(s, a):\n    return [compile('1', 'x', 'eval')]",
    "globals": "def evaluate(s, a):\n    return [globals()['__builtins__']]",
    "vars": "def evaluate(s, a):\n    return [vars()]",
    "type": "def evaluate(s, a):\n    return [type(s).mro()]",
    "builtin shadowed elsewhere": (
        "def f():\n    open = 1\ndef evaluate(s, a):\n    return [open('{secret}')]"
    ),
    "global": "def evaluate(s, a):\n    global x\n    return [0.0]",
    "nonlocal": (
        "def evaluate(s, a):\n    y = 1\n    def h():\n        nonlocal y\n    return [0.0]"
    ),
    "with": "def evaluate(s, a):\n    with s:\n        pass\n    return [0.0]",
    "class": "class X:\n    pass\ndef evaluate(s, a):\n    return [0.0]",
    "underscore name": "def evaluate(s, a):\n    _x = 1\n    return [_x]",
    "underscore keyword": "def evaluate(s, a):\n    return [sorted(s, __x=1)]",
    "walrus": "def evaluate(s, a):\n    return [(y := 1)]",
    "while": "def evaluate(s, a):\n    while False:\n        pass\n    return [0.0]",
    "breakpoint": "def evaluate(s, a):\n    breakpoint()\n    return [0.0]",
}


def _fill(code: str, arena: Arena) -> str:
    return code.format(marker=arena.marker, victim=arena.victim, secret=arena.secret)


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_the_allow_list_stops_every_escape_spelling(name, arena, listener, victim_process):
    with pytest.raises(SandboxError, match="not allowed|no function|syntax") as error:
        run_sandboxed(_fill(ESCAPES[name], arena), INPUTS, time_limit=3.0)
    arena.untouched(error.value)


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_with_the_allow_list_bypassed_the_layers_below_still_hold(name, arena, listener):
    arena.untouched(attempt(_fill(ESCAPES[name], arena), time_limit=1.0))


# ---- layer 2: the OS below, with the allow-list and Python's own layers bypassed ------------

# Hostile bodies of evaluate(s, a) with every builtin and any import available.
OS_ATTACKS = {
    "os.system": "import os\nos.system('touch {marker}')",
    "subprocess": "import subprocess\nsubprocess.run(['touch', '{marker}'])",
    "os.execv": "import os\nos.execv('/usr/bin/touch', ['touch', '{marker}'])",
    "os.posix_spawn": "import os\nos.posix_spawn('/usr/bin/touch', ['touch', '{marker}'], {{}})",
    "fork and write": (
        "import os\nif os.fork() == 0:\n    open('{marker}', 'w').write('x')\n    os._exit(0)"
    ),
    "open marker": "open('{marker}', 'w').write('x')",
    "append victim": "open('{victim}', 'a').write('pwned')",
    "truncate victim": "import os\nos.truncate('{victim}', 0)",
    "remove victim": "import os\nos.remove('{victim}')",
    "rename victim": "import os\nos.rename('{victim}', '{victim}.moved')",
    "chmod victim": "import os\nos.chmod('{victim}', 0o777)",
    "symlink": "import os\nos.symlink('{secret}', '{link}')",
    "kill a process": "import os\nos.kill({victim_pid}, 9)",
    "kill the parent": "import os\nos.kill(os.getppid(), 9)",
    "read a secret after freeing a descriptor": (
        "import os\nos.close(0)\nraise ValueError(open('{secret}').read())"
    ),
    "read a secret by path": "raise ValueError(open('{secret}').read())",
    "environment": "import os\nraise ValueError(repr(dict(os.environ)))",
    "ctypes": "import ctypes\nctypes.CDLL(None).system(b'touch {marker}')",
    "tcp create_connection": "import socket\nsocket.create_connection(('127.0.0.1', {port}), 1)",
    "tcp raw socket": (
        "import socket\ns = socket.socket()\ns.settimeout(1)\ns.connect(('127.0.0.1', {port}))"
    ),
}
NETWORK = {"tcp create_connection", "tcp raw socket"}
# Which attacks each OS layer stops on its own (the whole OS layer stops all of them).
HOLDS_ALONE = {
    OS_LAYERS: set(OS_ATTACKS),
    ("seccomp",): set(OS_ATTACKS),
    ("unprivileged_user",): set(OS_ATTACKS) - NETWORK,
    ("network_namespace",): NETWORK,
}


def _attack(name: str, arena: Arena, port: int, victim_pid: int) -> str:
    body = OS_ATTACKS[name].format(
        marker=arena.marker, victim=arena.victim, secret=arena.secret, link=arena.link,
        port=port, victim_pid=victim_pid,
    )  # fmt: skip
    indented = "\n".join("    " + line for line in body.splitlines())
    return f"def evaluate(s, a):\n{indented}\n    return [0.0]\n"


@pytest.mark.parametrize(
    "layers, name",
    [(layers, name) for layers, names in HOLDS_ALONE.items() for name in sorted(names)],
    ids=lambda v: "+".join(v) if isinstance(v, tuple) else v,
)
def test_the_os_layers_hold_without_the_layers_above(layers, name, arena, listener, victim_process):
    if len(layers) == 1:  # a layer alone must be there; the whole set is what the machine allows
        _needs(*layers)
    code = _attack(name, arena, listener.getsockname()[1], victim_process.pid)
    outcome = attempt(code, layers=layers)
    time.sleep(0.05)  # a forked writer, had there been one, would be done by now
    arena.untouched(outcome)
    assert "CREDITGYM_TEST_SECRET" not in str(outcome)


@pytest.mark.parametrize(
    "layer, body, reason",
    [
        ("audit_hook", "import os\n    os.system('touch {marker}')", "os.system is not allowed"),
        ("audit_hook", "open('{marker}', 'w').write('x')", "open is not allowed"),
        ("audit_hook", "import os\n    os.remove('{victim}')", "os.remove is not allowed"),
        ("audit_hook", "import sys\n    sys._getframe()", "sys._getframe is not allowed"),
        ("restricted_builtins", "open('{marker}', 'w')", "NameError"),
        ("restricted_builtins", "__import__('os').system('touch {marker}')", "not allowed"),
        ("restricted_builtins", "import statistics\n    statistics.sys", "no attribute 'sys'"),
        ("restricted_builtins", "from statistics import random", "cannot import name"),
    ],
)
def test_the_python_level_layers_refuse_on_their_own(layer, body, reason, arena):
    """Not one of the three layers: a second line inside layer 2 (the OS holds without it)."""
    code = f"def evaluate(s, a):\n    {body}\n    return [0.0]\n"
    outcome = attempt(code.format(marker=arena.marker, victim=arena.victim), layers=(layer,))
    assert reason in str(outcome)
    arena.untouched(outcome)


def test_the_child_starts_in_an_empty_directory_with_no_inherited_descriptors_or_environment(
    arena,
):
    prefix = os.path.join(tempfile.gettempdir(), "creditgym-sandbox-")
    leaked = os.open(arena.secret, os.O_RDONLY)
    os.set_inheritable(leaked, True)  # even a descriptor we forgot to protect stays here
    try:
        code = (
            "import os\ndef evaluate(s, a):\n"
            "    here = os.getcwd()\n"
            f"    try:\n        os.read({leaked}, 100)\n        got = 1.0\n"
            "    except OSError:\n        got = 0.0\n"
            "    return [float(len(os.listdir('.'))), float(len(os.listdir('/proc/self/fd'))),\n"
            "            float(len([k for k in os.environ if k != 'LC_CTYPE'])),\n"  # PEP 538
            "            float(len(os.read(0, 10))), got,\n"
            f"            float(here.startswith({prefix!r}))]\n"
        )
        outcome = attempt(code, layers=())
    finally:
        os.close(leaked)
    # no files; fds 0-3 and the one listdir opens; no variables; stdin empty; secret fd absent
    assert outcome == [[0.0, 5.0, 0.0, 0.0, 0.0, 1.0]]


def test_the_dropped_user_cannot_become_root_again():
    _needs("unprivileged_user")
    code = (
        "import os\ndef evaluate(s, a):\n"
        "    try:\n        os.setuid(0)\n        back = 1.0\n"
        "    except OSError:\n        back = 0.0\n"
        "    return [float(os.getuid()), float(os.getgid()), float(len(os.getgroups())), back]\n"
    )
    uid, gid, groups, back = attempt(code, layers=("unprivileged_user",))[0]
    assert uid > 0 and gid > 0 and uid != os.getuid() and groups == 0 and back == 0.0


def test_no_capabilities_are_left_even_inside_a_new_user_namespace():
    code = (
        "def evaluate(s, a):\n"
        "    lines = open('/proc/self/status').read().splitlines()\n"
        "    caps = [l.split()[1] for l in lines if l.startswith(('CapEff', 'CapPrm', 'CapAmb'))]\n"
        "    return [float(int(c, 16)) for c in caps]\n"
    )
    assert attempt(code, layers=("network_namespace", "no_capabilities")) == [[0.0, 0.0, 0.0]]


@pytest.mark.parametrize("leave_group", [False, True], ids=["same group", "setsid"])
def test_nothing_the_code_starts_outlives_the_call(leave_group, arena):
    layers = ("unprivileged_user",) if leave_group else ()
    if leave_group:
        _needs("unprivileged_user")  # a process that left the group is found by its user id
    pids, go = arena.open / "pids", arena.open / "go"
    code = (
        "import os, time\ndef evaluate(s, a):\n"
        "    for _ in range(2):\n"
        "        if os.fork() == 0:\n"
        f"            {'os.setsid()' if leave_group else 'pass'}\n"
        "            if os.fork() == 0:\n"  # a grandchild too
        f"                open('{pids}', 'a').write(str(os.getpid()) + ' ')\n"
        "                for _ in range(300):\n"  # waits for the test to say the call is over
        f"                    if os.path.exists('{go}'):\n"
        f"                        open('{arena.open_marker}', 'w').write('survived')\n"
        "                    time.sleep(0.02)\n"
        "            time.sleep(6.0)\n"
        "            os._exit(0)\n"
        "    for _ in range(500):\n"  # until both grandchildren are up, however busy the machine
        f"        if os.path.exists('{pids}') and len(open('{pids}').read().split()) == 2:\n"
        "            break\n"
        "        time.sleep(0.02)\n"
        "    return [0.0]\n"
    )
    assert attempt(code, layers=layers) == [[0.0]]
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2  # the forks did happen: only the clean-up can have stopped them
    go.touch()
    time.sleep(0.3)
    assert not arena.open_marker.exists()
    for pid in started:
        assert not _alive(pid), f"process {pid} outlived the sandbox call"


def test_a_killed_trainer_takes_the_sandbox_process_with_it(arena):
    """The child asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG)."""
    from creditgym.credit.sandbox import process as sandbox_process

    pid_file = arena.open / "pid"
    code = (
        "import os, time\ndef evaluate(s, a):\n"
        f"    open('{pid_file}', 'w').write(str(os.getpid()))\n    time.sleep(60)\n"
    )
    request = {
        "code": code, "function": "evaluate", "inputs": [[{}, ""]], "memory_mb": 256,
        "time_limit": 60, "nonce": "n", "layers": [], "uid": None, "builtins": [],
        "modules": {"math": [], "statistics": []},
    }  # fmt: skip
    # a stand-in trainer: loads the process module alone (fast) and runs the child
    trainer = subprocess.Popen(
        [sys.executable, "-c", _STAND_IN_TRAINER, sandbox_process.__file__, json.dumps(request)]
    )
    try:
        for _ in range(300):
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert _alive(child)
    finally:
        trainer.kill()
        trainer.wait()
    for _ in range(40):
        if not _alive(child):
            break
        time.sleep(0.05)
    assert not _alive(child), "the sandbox process outlived its killed parent"


_STAND_IN_TRAINER = """
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("sandbox_process", sys.argv[1])
module = sys.modules["sandbox_process"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
request = json.loads(sys.argv[2])
request["parent"] = os.getpid()
module.run_child(json.dumps(request).encode(), wall_limit=60, answer_cap=4096, uid=None)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_rlimits_alone_bound_memory_cpu_file_size_and_descriptors(arena):
    os.chmod(arena.victim, 0o666)  # writable by anyone: only the file-size limit protects it
    os.chmod(arena.locked, 0o777)
    try:
        memory = attempt(
            "def evaluate(s, a):\n    x = bytearray(10 ** 9)\n    return [0.0]", layers=("rlimits",)
        )
        start = time.monotonic()
        cpu = attempt(
            "def evaluate(s, a):\n    while True:\n        pass", layers=("rlimits",), time_limit=1
        )
        elapsed = time.monotonic() - start
        grow = attempt(  # a descriptor freed first, so only the file-size limit is left
            "import os\ndef evaluate(s, a):\n    os.close(0)\n"
            f"    f = open('{arena.victim}', 'a')\n    f.write('pwned')\n    f.flush()\n"
            "    return [0.0]",
            layers=("rlimits",),
        )
        descriptors = attempt(
            f"def evaluate(s, a):\n    open('{arena.secret}').read()\n    return [0.0]",
            layers=("rlimits",),
        )
    finally:
        os.chmod(arena.victim, 0o644)
        os.chmod(arena.locked, 0o755)
    assert "memory" in str(memory)
    assert "time limit" in str(cpu) and elapsed < 8.0
    assert "File too large" in str(grow) or "Errno 27" in str(grow)
    assert "Too many open files" in str(descriptors) and SECRET not in str(descriptors)
    assert arena.victim.read_text() == "original"


# ---- layer 3: the parent trusts nothing the child sends -------------------------------------

FORGE_WITH_NONCE = """
import os, sys, json
def evaluate(s, a):
    frame = sys._getframe()
    while 'request' not in frame.f_locals:
        frame = frame.f_back
    nonce = frame.f_locals['request']['nonce'].encode()
    os.write(3, nonce + {body} + nonce)
    os._exit(0)
"""


@pytest.mark.parametrize(
    "code, reason",
    [
        (
            "import os\ndef evaluate(s, a):\n"
            '    os.write(1, b\'{"ok": true, "outputs": [[1.0]], "layers": []}\')\n    os._exit(0)',
            "no well-formed answer|died",
        ),
        (
            "import os\ndef evaluate(s, a):\n"
            '    os.write(3, b\'{"ok": true, "outputs": [[1.0]], "layers": []}\')\n    os._exit(0)',
            "no well-formed answer",
        ),
        (
            "import os\ndef evaluate(s, a):\n    os.write(3, b'\\x00garbage')\n    os._exit(0)",
            "no well-formed",
        ),
        ("import os\ndef evaluate(s, a):\n    os._exit(0)", "died"),
        (
            FORGE_WITH_NONCE.format(body='b\'{"ok": true, "outputs": [[NaN]], "layers": []}\''),
            "non-finite",
        ),
        (
            FORGE_WITH_NONCE.format(body='b\'{"ok": true, "outputs": ["1"], "layers": []}\''),
            "list of numbers",
        ),
        (
            FORGE_WITH_NONCE.format(body='b\'{"ok": true, "outputs": [[1], [2]], "layers": []}\''),
            "one list per input",
        ),
        (FORGE_WITH_NONCE.format(body="b'[' * 10 ** 6"), "unreadable|wrong form|too much"),
        (
            FORGE_WITH_NONCE.format(body='b\'{"ok": true, "outputs": [[1]], "layers": ["root"]}\''),
            "unknown layers",
        ),
    ],
    ids=["stdout", "unframed", "garbage", "silent exit", "nan", "string", "rows", "bomb", "layers"],
)
def test_the_parent_rejects_forged_answers(code, reason):
    layers = ("network_namespace", "rlimits", "unprivileged_user")  # seccomp off: may write fd 3
    with pytest.raises(SandboxError, match=reason):
        _execute(code, INPUTS, "evaluate", 3.0, 256, layers)


@pytest.mark.parametrize("stream", [1, 2], ids=["stdout", "stderr"])
def test_an_output_flood_is_cut_and_the_parent_stays_small(stream):
    code = (
        "import os\ndef evaluate(s, a):\n    chunk = b'x' * 2 ** 20\n"
        f"    for _ in range(200):\n        os.write({stream}, chunk)\n    return [0.0]"
    )
    tracemalloc.start()
    try:
        with pytest.raises(SandboxError, match="too much"):
            _execute(code, INPUTS, "evaluate", 5.0, 512, OS_LAYERS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"the parent held {peak / 2**20:.1f} MiB"


# ---- the same suite without root -----------------------------------------------------------


# This file's tests whose outcome depends on who runs them.
PRIVILEGE_DEPENDENT = "os_layers_hold or outlives or forged or flood or empty_directory"


def _inner_run(prefix: list[str], selection: str) -> subprocess.CompletedProcess:
    """This file's tests that `selection` picks, run under `prefix`."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__]
        + ["-k", selection],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, INNER: "1"},
    )


@pytest.mark.skipif(bool(os.environ.get(INNER)), reason="already the inner run")
@pytest.mark.skipif(os.geteuid() != 0, reason="already unprivileged: this run is the test")
@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv (util-linux)")
def test_the_suite_holds_as_root_without_capabilities():
    """Root with no capabilities: no uid to drop to, no network namespace but via a user
    namespace; the other layers must still stop every attack."""
    # the whole OS layer, and each layer the machine allows alone, against every attack
    result = _inner_run(["setpriv", "--inh-caps=-all", "--bounding-set=-all"], "os_layers_hold")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


@pytest.mark.skipif(bool(os.environ.get(INNER)), reason="already the inner run")
@pytest.mark.skipif(os.geteuid() != 0, reason="already unprivileged: this run is the test")
def test_the_suite_holds_as_the_nobody_user():
    """As uid/gid 65534. Where the interpreter sits in a directory nobody cannot enter (a
    pyenv under /root), nobody gets the one capability to read it, CAP_DAC_READ_SEARCH, which
    the sandbox's child then drops (``no_capabilities``)."""
    for prefix in (
        ["runuser", "-u", "nobody", "--"],
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        + ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"],
    ):
        if shutil.which(prefix[0]) and _can_import_the_sandbox(prefix):
            break
    else:
        pytest.skip(f"user nobody cannot run this interpreter ({sys.executable})")
    result = _inner_run(prefix, PRIVILEGE_DEPENDENT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def _can_import_the_sandbox(prefix: list[str]) -> bool:
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import creditgym.credit.sandbox.runner"],
        capture_output=True,
        cwd=Path(__file__).parent.parent,
    )
    return probe.returncode == 0
