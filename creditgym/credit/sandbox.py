"""Run untrusted (LLM-written) Python functions outside the trainer's process, with limits.

`run_sandboxed(code, inputs)` calls ``evaluate(state, action)`` from `code` on every
``(state, action)`` input and returns one list of floats per input, or raises `SandboxError`
with the reason. The layers, each enough to stop the usual escapes on its own:

1. **Static check** before anything runs: imports only from `ALLOWED_MODULES`; no dunder
   attributes (``().__class__.__subclasses__()``); none of `BANNED_NAMES` (``open``, ``exec``,
   ``eval``, ``getattr``, ...).
2. **A fresh interpreter** (``python -I``) per call, fed plain JSON on stdin: the code never
   shares memory with the trainer and only sees plain data.
3. **Resource limits** in that process: address space (`memory_mb`), CPU seconds, no file
   growth (``RLIMIT_FSIZE=0``), no new file descriptors once the allowed modules are imported
   (so no files, sockets or pipes), no child processes.
4. **An audit hook** (PEP 578, cannot be removed) that refuses file opens, sockets,
   subprocesses, ``os.system``/``exec``/``fork``, and further imports or compiles.
5. **Restricted builtins**: the code runs with a small set of pure builtins.
6. **A wall-clock limit** enforced by the parent, which kills the process.

Outputs are checked: every call must return a list of finite floats, all of the same length.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["SandboxError", "ALLOWED_MODULES", "BANNED_NAMES", "check_code", "run_sandboxed"]

ALLOWED_MODULES = frozenset({"math", "statistics"})
BANNED_NAMES = frozenset(
    {
        "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "getattr",
        "setattr", "delattr", "input", "breakpoint", "memoryview", "help", "exit", "quit",
    }
)  # fmt: skip


class SandboxError(ValueError):
    """Untrusted code was rejected or failed; the message says why."""


def check_code(code: str, function: str = "evaluate") -> None:
    """Reject code that imports outside `ALLOWED_MODULES`, touches dunders or banned names,
    or does not define `function`."""
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        raise SandboxError(f"syntax error on line {error.lineno}: {error.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                if name.split(".")[0] not in ALLOWED_MODULES:
                    raise SandboxError(
                        f"line {node.lineno}: import of {name!r} is not allowed; only {sorted(ALLOWED_MODULES)}"
                    )
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            raise SandboxError(f"line {node.lineno}: dunder attribute {node.attr!r} is not allowed")
        elif isinstance(node, ast.Name) and (node.id in BANNED_NAMES or node.id.startswith("__")):
            raise SandboxError(f"line {node.lineno}: name {node.id!r} is not allowed")
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    if function not in defined:
        raise SandboxError(f"the code defines no function {function!r}(state, action)")


# The child: limits first, then the hook, then the code. Reads one JSON request on stdin,
# writes one JSON answer on stdout.
_RUNNER = r"""
import json, math, resource, sys
request = json.loads(sys.stdin.read())
import math, statistics  # the allowed modules, imported before the file descriptors run out
limit = request["memory_mb"] * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
cpu = int(request["time_limit"]) + 1
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
code = compile(request["code"], "<llm-code>", "exec")
out = sys.stdout
resource.setrlimit(resource.RLIMIT_NOFILE, (3, 3))

BLOCKED = ("open", "socket.", "subprocess.", "os.system", "os.exec", "os.fork", "os.posix_spawn",
           "os.spawn", "os.kill", "os.remove", "os.rename", "os.mkdir", "os.rmdir", "shutil.",
           "ctypes.", "compile", "import", "exec", "pty.", "signal.")
first_exec = [True]  # the one exec of the submitted code itself
def hook(event, args):
    if event == "exec" and first_exec[0]:
        first_exec[0] = False
        return
    if event.startswith(BLOCKED):
        raise RuntimeError(f"sandbox: {event} is not allowed")
sys.addaudithook(hook)

SAFE = {name: getattr(__builtins__, name) for name in (
    "abs all any bool dict enumerate float int len list max min range round sorted sum tuple zip "
    "isinstance str set frozenset map filter reversed pow divmod True False None Exception "
    "ValueError KeyError TypeError IndexError ZeroDivisionError ArithmeticError").split()}
allowed = {"math": math, "statistics": statistics}
def guarded_import(name, *args, **kwargs):
    if name in allowed:
        return allowed[name]
    raise ImportError(f"sandbox: import of {name!r} is not allowed")
SAFE["__import__"] = guarded_import
scope = {"__builtins__": SAFE, "__name__": "llm_code"}
try:
    exec(code, scope)
    fn = scope[request["function"]]
    results = []
    for state, action in request["inputs"]:
        value = fn(state, action)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise TypeError(f"must return a list of numbers, got {value!r:.80}")
        value = [float(v) for v in value]
        if not all(math.isfinite(v) for v in value):
            raise ValueError(f"returned a non-finite value: {value!r:.80}")
        results.append(value)
    answer = {"ok": True, "outputs": results}
except MemoryError:
    answer = {"ok": False, "error": "exceeded the memory limit"}
except BaseException as error:
    answer = {"ok": False, "error": f"{type(error).__name__}: {error}"[:500]}
out.write(json.dumps(answer))
out.flush()
"""


def run_sandboxed(
    code: str,
    inputs: Sequence[tuple[Any, str]],
    *,
    function: str = "evaluate",
    time_limit: float = 10.0,
    memory_mb: int = 512,
) -> list[list[float]]:
    """Call ``function(state, action)`` from untrusted `code` on each input in a sandbox.

    Args:
        code: Python source defining `function`.
        inputs: ``(state, action)`` pairs of plain JSON data.
        time_limit: wall-clock seconds for the whole batch (the process is killed after).
        memory_mb: address-space limit of the sandbox process.

    Returns:
        One list of floats per input, all of the same length.

    Raises:
        SandboxError: the code was rejected, failed, ran out of time or memory, or returned
            the wrong shape; the message says which.
    """
    check_code(code, function)
    return _execute(code, inputs, function, time_limit, memory_mb)


def _execute(
    code: str, inputs: Sequence[tuple[Any, str]], function: str, time_limit: float, memory_mb: int
) -> list[list[float]]:
    """The sandboxed run itself, without the static check (tests call it to probe the runtime layers)."""
    request = json.dumps(
        {
            "code": code,
            "function": function,
            "inputs": [[state, action] for state, action in inputs],
            "memory_mb": memory_mb,
            "time_limit": time_limit,
        }
    )
    try:
        finished = subprocess.run(
            [sys.executable, "-I", "-c", _RUNNER],
            input=request,
            capture_output=True,
            text=True,
            timeout=time_limit + 5.0,  # + interpreter start-up
        )
    except subprocess.TimeoutExpired:
        raise SandboxError(f"exceeded the time limit of {time_limit:g} s") from None
    if not finished.stdout:
        reason = finished.stderr.strip().splitlines()[-1:] or [f"exit code {finished.returncode}"]
        if finished.returncode in (-9, -24, 137, 152):  # SIGKILL / SIGXCPU: the CPU limit
            reason = [f"exceeded the time limit of {time_limit:g} s"]
        raise SandboxError(f"the sandboxed process died: {reason[0]}")
    answer = json.loads(finished.stdout)
    if not answer["ok"]:
        raise SandboxError(answer["error"])
    outputs = answer["outputs"]
    if len({len(row) for row in outputs}) > 1:
        raise SandboxError(
            f"returned lists of different lengths: {sorted({len(r) for r in outputs})}"
        )
    return outputs
