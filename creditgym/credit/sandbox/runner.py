"""Run untrusted (LLM-written) factor functions outside the trainer's process, in three layers.

`run_sandboxed(code, inputs)` calls ``evaluate(state, action)`` from `code` on every
``(state, action)`` input and returns one list of floats per input, or raises `SandboxError`
with the reason. The first two layers are each built to hold on their own against file,
network, process and privilege escapes, the third against anything the child sends back; the
tests probe each one alone:

1. **Allow-list** (`policy`): the code is parsed and may use only the Python a factor
   function needs (plain functions, assignments, ``if``, ``for``, arithmetic, literals,
   comprehensions, allow-listed builtins, ``math`` / ``statistics`` functions, a few data
   methods); no ``_`` names or attributes, no other attribute at all, no lambdas, generators,
   decorators, classes, ``while``, ``try``, ``with``, ``match``, ``global``, other imports.
2. **The OS below it** (`process`, `child`): a fresh interpreter per call, its
   own session and process group (killed whole afterwards; as root, every process of the
   call's own user id too), an empty directory it cannot use, stdin on /dev/null, an empty
   environment, no inherited descriptors; then a new network namespace, rlimits (address
   space, CPU, file size 0, no processes, no descriptors), as root a drop to a fresh
   unprivileged uid/gid with no groups, no capabilities left, an allow-list seccomp filter
   (memory, write, exit; every other system call fails); inside Python a
   closure-held audit hook and restricted builtins whose ``import`` gives namespaces of
   allow-listed functions, never a module. The code sees plain JSON data only.
3. **The parent validates** (`result`): stdout and stderr are read with a cap (more
   ends the run), the answer comes on its own pipe framed by a per-call nonce, its shape is
   checked while it is read (before any JSON parse), and it must match a strict schema: one
   list per input, all the same length, finite numbers only.

Every failure, of any input at any size, is a `SandboxError` whose ``kind`` says which way it
failed (``syntax``, ``timeout``, ``memory``, ``shape``, ``crash``), so a caller can handle them
all with one ``except``.

Which OS layers a machine allows is found at run time: `sandbox_layers()` reports what is
active here (a layer the machine refuses is skipped, and reported as off).
"""

from __future__ import annotations

import functools
import json
import math
import os
import secrets
from collections.abc import Sequence
from typing import Any

from creditgym.credit.sandbox.policy import (
    ALLOWED_BUILTINS,
    ALLOWED_MODULES,
    MODULE_FUNCTIONS,
    check_code,
)
from creditgym.credit.sandbox.process import run_child, sandbox_uid
from creditgym.credit.sandbox.result import (
    KINDS,
    MAX_FACTORS,
    AnswerScanner,
    SandboxError,
    clean_text,
    parse_answer,
)

__all__ = [
    "SandboxError",
    "KINDS",
    "ALLOWED_MODULES",
    "CHILD_LAYERS",
    "check_code",
    "run_sandboxed",
    "sandbox_layers",
]

# The layers the child applies itself, in order (see `child`); `run_sandboxed` asks for
# all of them, tests ask for one at a time.
CHILD_LAYERS = (
    "network_namespace",
    "rlimits",
    "unprivileged_user",
    "no_capabilities",
    "seccomp",
    "audit_hook",
    "restricted_builtins",
)
STARTUP_GRACE = 5.0  # seconds of wall clock on top of `time_limit`, for the interpreter to start


def run_sandboxed(
    code: str,
    inputs: Sequence[tuple[Any, str]],
    *,
    function: str = "evaluate",
    time_limit: float = 10.0,
    item_time_limit: float | None = None,
    memory_mb: int = 512,
) -> list[list[float]]:
    """Call ``function(state, action)`` from untrusted `code` on each input in the sandbox.

    Args:
        code: Python source defining `function` (`creditgym.credit.sandbox.policy` says what
            it may use); exactly this source runs once it passed the check.
        inputs: ``(state, action)`` pairs of plain JSON data.
        function: the function to call.
        time_limit: CPU seconds for the whole batch; the wall clock allows a few more for the
            interpreter to start, then the process group is killed.
        item_time_limit: with it, each call gets this many CPU seconds of its own (the first
            to run over ends the batch), and the batch gets ``time_limit + item_time_limit *
            len(inputs)``: a large batch is no reason to fail, an endless loop still fails
            after `item_time_limit`.
        memory_mb: address-space limit of the sandbox process.

    Returns:
        One list of floats per input, all of the same length.

    Raises:
        SandboxError: the code was rejected, failed, ran out of time or memory, or returned
            the wrong shape; the message says which, its ``kind`` which way (`KINDS`). No other
            exception escapes.
    """
    source = check_code(code, function)
    return _execute(
        source, inputs, function, time_limit, memory_mb, item_time_limit=item_time_limit
    )


@functools.cache
def sandbox_layers() -> dict[str, bool]:
    """Which layers are active on this machine, found by running a trivial function once.

    Keys: ``allow_list``, ``separate_process``, ``validated_answer`` (always on) and the
    child's `CHILD_LAYERS` (on where the machine allows them: ``unprivileged_user`` needs
    root, ``network_namespace`` needs root or user namespaces, ``seccomp`` needs x86-64 or
    aarch64).
    """
    code = check_code("def evaluate(state, action):\n    return [1.0]\n")
    layers = _execute(code, [({}, "")], "evaluate", 5.0, 256, report_layers=True)
    active = {"allow_list": True, "separate_process": True, "validated_answer": True}
    return active | {name: name in layers for name in CHILD_LAYERS}


def _execute(
    code: str,
    inputs: Sequence[tuple[Any, str]],
    function: str,
    time_limit: float,
    memory_mb: int,
    layers: Sequence[str] = CHILD_LAYERS,
    *,
    item_time_limit: float | None = None,
    report_layers: bool = False,
) -> Any:
    """The run itself, without the allow-list (tests call it to probe the layers below).

    Returns the outputs, or with `report_layers` the child layers that took effect. Any failure
    at all is a `SandboxError`.
    """
    try:
        return _run(code, inputs, function, time_limit, memory_mb, layers, item_time_limit)[
            1 if report_layers else 0
        ]
    except SandboxError:
        raise
    except Exception as error:  # noqa: BLE001  (an OSError starting the child, MemoryError, ...)
        reason = clean_text(f"{type(error).__name__}: {error}", 200)
        raise SandboxError(f"the sandbox could not run the code: {reason}", "crash") from None


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _run(
    code: str,
    inputs: Sequence[tuple[Any, str]],
    function: str,
    time_limit: float,
    memory_mb: int,
    layers: Sequence[str],
    item_time_limit: float | None,
) -> tuple[list[list[float]], tuple[str, ...]]:
    if not _positive(time_limit):
        raise SandboxError(f"time_limit must be a positive number of seconds, not {time_limit!r}")
    if item_time_limit is not None and not _positive(item_time_limit):
        raise SandboxError(
            f"item_time_limit must be a positive number of seconds, not {item_time_limit!r}"
        )
    if not (isinstance(memory_mb, int) and memory_mb >= 64):
        raise SandboxError(f"memory_mb must be an int of at least 64, not {memory_mb!r}")
    try:
        inputs = [(state, action) for state, action in inputs]
    except (TypeError, ValueError):
        raise SandboxError("inputs must be (state, action) pairs") from None
    batch_limit = time_limit + (item_time_limit or 0.0) * len(inputs)
    nonce = secrets.token_hex(16)
    uid = sandbox_uid()
    try:
        request = json.dumps(
            {
                "code": code,
                "function": function,
                "inputs": inputs,
                "memory_mb": memory_mb,
                "time_limit": batch_limit,
                "item_time_limit": item_time_limit,
                "nonce": nonce,
                "parent": os.getpid(),
                "layers": list(layers),
                "uid": uid,
                "builtins": sorted(ALLOWED_BUILTINS),
                "modules": {name: sorted(names) for name, names in MODULE_FUNCTIONS.items()},
            }
        ).encode()
    except (TypeError, ValueError, RecursionError) as error:
        raise SandboxError(f"the inputs must be plain JSON data: {error}") from None
    answer_cap = 4096 + len(inputs) * (MAX_FACTORS * 26 + 8)  # 26: the longest float in JSON
    scanner = AnswerScanner(nonce.encode(), max(len(inputs), len(CHILD_LAYERS)))
    run = run_child(
        request,
        wall_limit=batch_limit + STARTUP_GRACE,
        answer_cap=answer_cap,
        uid=uid,
        answer_check=scanner.feed,
    )
    if run.rejected:
        raise SandboxError(run.rejected, "shape")
    if run.flooded:
        kind = "shape" if run.flooded == "answer" else "crash"
        raise SandboxError(f"the sandboxed process wrote too much to its {run.flooded}", kind)
    if run.timed_out or run.returncode in (-9, -24):  # SIGKILL or SIGXCPU: the CPU limit
        raise SandboxError(f"exceeded the time limit of {batch_limit:g} s", "timeout")
    if not run.answer:
        last = run.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        reason = clean_text(last[0], 200) if last else f"exit code {run.returncode}"
        raise SandboxError(f"the sandboxed process died: {reason}", _kind_of(reason))
    answer = parse_answer(run.answer, nonce.encode(), len(inputs), frozenset(CHILD_LAYERS))
    if answer.outputs is None:
        raise SandboxError(answer.error, _kind_of(answer.error))
    return answer.outputs, answer.layers


def _kind_of(error: str) -> str:
    """The kind of a failure the child reported in words (see `child._run`)."""
    if "MemoryError" in error or "memory limit" in error:
        return "memory"
    if "time limit" in error:
        return "timeout"
    if error.startswith("cannot compile"):
        return "syntax"
    if "must return a list of numbers" in error:
        return "shape"
    return "crash"
