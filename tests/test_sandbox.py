"""The sandbox for LLM-written code: every escape is rejected, in time, and the trainer is unaffected."""

from __future__ import annotations

import os
import time

import pytest

from creditgym.credit.sandbox import SandboxError, _execute, check_code, run_sandboxed

GOOD = """
import math

def evaluate(state, action):
    return [float(state["holding"]), math.sqrt(state["distance"]), float(action.startswith("take"))]
"""
INPUTS = [
    ({"holding": 1, "distance": 4.0}, "take apple"),
    ({"holding": 0, "distance": 9.0}, "look"),
]


def test_good_code_runs_on_every_input():
    assert run_sandboxed(GOOD, INPUTS) == [[1.0, 2.0, 1.0], [0.0, 3.0, 0.0]]


@pytest.mark.parametrize(
    "code, reason",
    [
        ("import os\ndef evaluate(s, a):\n    return [0.0]", "import of 'os'"),
        ("import subprocess\ndef evaluate(s, a):\n    return [0.0]", "import of 'subprocess'"),
        ("import socket\ndef evaluate(s, a):\n    return [0.0]", "import of 'socket'"),
        (
            "def evaluate(s, a):\n    open('/tmp/x', 'w').write('x')\n    return [0.0]",
            "name 'open'",
        ),
        ("def evaluate(s, a):\n    return [().__class__.__bases__[0]]", "dunder attribute"),
        ("def evaluate(s, a):\n    return [eval('1')]", "name 'eval'"),
        ("def evaluate(s, a):\n    return [__import__('os')]", "name '__import__'"),
        ("def score(s, a):\n    return [0.0]", "no function 'evaluate'"),
        ("def evaluate(s, a) return", "syntax error"),
    ],
)
def test_static_check_rejects_escapes_with_the_reason(code, reason):
    with pytest.raises(SandboxError, match=reason):
        check_code(code)


def _runtime(code, time_limit=5.0, memory_mb=256):
    """Skip the static check to probe the process-level layers."""
    return _execute(code, INPUTS, "evaluate", time_limit, memory_mb)


def test_runtime_blocks_file_writes(tmp_path):
    target = tmp_path / "escaped.txt"
    with pytest.raises(SandboxError, match="open"):
        _runtime(
            f"def evaluate(s, a):\n    open({str(target)!r}, 'w').write('x')\n    return [0.0]"
        )
    assert not target.exists()


def test_runtime_blocks_sockets_processes_and_imports():
    for code in (
        "def evaluate(s, a):\n    import socket\n    return [0.0]",
        "def evaluate(s, a):\n    __import__('os').system('touch /tmp/pwned')\n    return [0.0]",
        "def evaluate(s, a):\n    return [float(len(open('/etc/passwd').read()))]",
    ):
        with pytest.raises(SandboxError, match="not allowed|NameError"):
            _runtime(code)


def test_an_endless_loop_is_stopped_within_the_time_limit():
    start = time.monotonic()
    with pytest.raises(SandboxError, match="time limit"):
        run_sandboxed("def evaluate(s, a):\n    while True:\n        pass", INPUTS, time_limit=1.0)
    assert time.monotonic() - start < 8.0


def test_unbounded_allocation_hits_the_memory_limit():
    with pytest.raises(SandboxError, match="memory"):
        run_sandboxed(
            "def evaluate(s, a):\n    x = [0] * (10 ** 10)\n    return [0.0]", INPUTS, memory_mb=256
        )


@pytest.mark.parametrize(
    "body, reason",
    [
        ("return 1.0", "list of numbers"),
        ("return ['a']", "list of numbers"),
        ("return [float('nan')]", "non-finite"),
        ("return [1.0] * len(a)", "different lengths"),
        ("return [1 / 0]", "ZeroDivisionError"),
    ],
)
def test_wrong_outputs_are_rejected(body, reason):
    with pytest.raises(SandboxError, match=reason):
        run_sandboxed(f"def evaluate(s, a):\n    {body}", INPUTS)


def test_the_trainer_process_is_unaffected():
    before = (os.getcwd(), dict(os.environ))
    with pytest.raises(SandboxError):
        run_sandboxed(
            "import math\ndef evaluate(s, a):\n    while True:\n        pass",
            INPUTS,
            time_limit=0.5,
        )
    assert run_sandboxed(GOOD, INPUTS)[0] == [1.0, 2.0, 1.0]  # and the next call works
    assert (os.getcwd(), dict(os.environ)) == before
