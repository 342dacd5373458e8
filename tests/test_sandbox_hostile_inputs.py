"""Every failure of the sandbox is a `SandboxError` with a kind, whatever the input and its
size: hostile sources (deep nesting, long operator chains, huge literals, huge strings, many
nodes), failures at run time, answers that are too large, and the per-input time limit."""

from __future__ import annotations

import json
import time

import pytest

from creditgym.credit.sandbox import policy, runner
from creditgym.credit.sandbox.result import MAX_FACTORS, AnswerScanner
from creditgym.credit.sandbox.runner import SandboxError, check_code, run_sandboxed

INPUTS = [({"a": 1.0}, "go"), ({"a": 2.0}, "look")]


def _returning(expression: str) -> str:
    return f"def evaluate(state, action):\n    return [{expression}]\n"


def _nested_ifs(depth: int) -> str:
    lines = ["def evaluate(state, action):"]
    lines += [" " * (4 * (i + 1)) + "if state:" for i in range(depth)]
    return "\n".join([*lines, " " * (4 * (depth + 1)) + "return [1.0]"]) + "\n"


# Each of these used to escape as something else (RecursionError, ValueError), crash the
# check's time budget, or would: all must be a SandboxError of kind "syntax".
HOSTILE_SOURCES = {
    "450 additions": _returning("+".join(["1.0"] * 450)),
    "3,000 additions": _returning("+".join(["1.0"] * 3000)),
    "600 multiplications": _returning("*".join(["state['a']"] * 600)),
    "mixed chain of 1,000": _returning("-".join(["1.0+2.0*3.0"] * 333)),
    "unary minus 500 deep": _returning("-" * 500 + "1.0"),
    "not 300 deep": _returning("float(" + "not " * 300 + "1)"),
    "300 nested parentheses": _returning("(" * 300 + "1.0" + ")" * 300),
    "100 nested calls": _returning("abs(" * 100 + "1.0" + ")" * 100),
    "100 nested lists": _returning("len(" + "[" * 100 + "]" * 100 + ")"),
    "100 nested dicts": _returning("len(" + "{1: " * 100 + "1" + "}" * 100 + ")"),
    "a 5,000-digit decimal literal": _returning("9" * 5000),
    "a 30,000-character string": _returning("len('" + "x" * 30_000 + "')"),
    "6,000 list items (too many nodes)": _returning("len([" + "1," * 6000 + "])"),
    "800 functions": "".join(f"def f{i}(s, a):\n    return [{i}]\n" for i in range(800))
    + _returning("1.0"),
    "ifs 90 deep": _nested_ifs(90),
    "a null byte": "def evaluate(state, action):\n    return [1.0]\x00\n",
    "not text": b"def evaluate(state, action):\n    return [1.0]\n",
}


@pytest.mark.parametrize("name", list(HOSTILE_SOURCES))
def test_hostile_source_is_a_sandbox_error_of_kind_syntax(name):
    start = time.process_time()
    with pytest.raises(SandboxError) as error:  # any other exception fails the test
        run_sandboxed(HOSTILE_SOURCES[name], INPUTS)
    assert error.value.kind == "syntax", str(error.value)
    assert str(error.value) and "\n" not in str(error.value)
    assert time.process_time() - start < 1.0  # rejected by the check, before any child runs


def test_a_hex_literal_too_long_to_print_runs_as_written():
    # ast.unparse cannot print a 5,000-digit int: the child runs the checked source itself
    code = _returning("0x" + "f" * 5000 + " % 7")
    assert run_sandboxed(code, INPUTS) == [[float(int("f" * 5000, 16) % 7)]] * 2


def test_the_check_has_a_wall_time_budget(monkeypatch):
    monkeypatch.setattr(policy, "CHECK_SECONDS", 0.0)
    with pytest.raises(SandboxError, match="took over 0 s") as error:
        check_code(_returning("+".join(["1.0"] * 40) + ", " + ", ".join(["2.0"] * 600)))
    assert error.value.kind == "syntax"


def test_a_long_but_flat_function_is_accepted():
    code = _returning(", ".join(f"state['a'] * {i}" for i in range(200)))  # 200 factors
    assert check_code(code) == code


def test_a_failure_to_start_the_child_is_a_sandbox_error(monkeypatch):
    def no_processes(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(runner, "run_child", no_processes)
    with pytest.raises(SandboxError, match="could not run the code: BlockingIOError") as error:
        run_sandboxed(_returning("1.0"), INPUTS)
    assert error.value.kind == "crash"


def test_inputs_nested_beyond_json_are_a_sandbox_error():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(SandboxError, match="plain JSON"):
        run_sandboxed(_returning("1.0"), [({"x": deep}, "go")])


@pytest.mark.parametrize(
    "body, kind",
    [
        ("for i in range(10 ** 12):\n        pass\n    return [1.0]", "timeout"),
        ("x = [0] * (10 ** 10)\n    return [1.0]", "memory"),
        ("return [1 / 0]", "crash"),
        ("return [evaluate(state, action)]", "crash"),  # RecursionError in the child
        ("return 'nope'", "shape"),
        ("return [1.0] * 300", "shape"),
        ("return [float('nan')]", "shape"),
    ],
)
def test_each_run_time_failure_has_its_kind(body, kind):
    with pytest.raises(SandboxError) as error:
        run_sandboxed(f"def evaluate(state, action):\n    {body}", INPUTS, time_limit=1.0)
    assert error.value.kind == kind, str(error.value)


def test_the_kind_survives_pickling():
    import pickle

    error = pickle.loads(pickle.dumps(SandboxError("too slow", "timeout")))
    assert (str(error), error.kind) == ("too slow", "timeout")


# ---- the per-input time limit ------------------------------------------------------------------

BUSY = (
    "def evaluate(state, action):\n"
    "    t = 0\n    for i in range(1200000):\n        t += i\n    return [1.0]\n"
)


def test_a_large_batch_gets_time_per_input():
    inputs = [({"a": 1.0}, "go")] * 50  # 2-4 s of CPU in all, 40-80 ms each
    with pytest.raises(SandboxError, match="time limit") as error:
        run_sandboxed(BUSY, inputs, time_limit=1.0)  # one limit for the whole batch
    assert error.value.kind == "timeout"
    assert run_sandboxed(BUSY, inputs, time_limit=1.0, item_time_limit=0.5) == [[1.0]] * 50


def test_an_endless_loop_fails_after_its_own_inputs_limit_not_the_batchs():
    endless = "def evaluate(state, action):\n    for i in range(10 ** 12):\n        pass\n"
    start = time.monotonic()
    with pytest.raises(SandboxError, match=r"0.3 s per input \(on input 0\)") as error:
        run_sandboxed(endless, [({}, "go")] * 200, time_limit=1.0, item_time_limit=0.3)
    assert error.value.kind == "timeout"
    assert time.monotonic() - start < 5.0  # not the batch's 61 s


# ---- the answer, checked while it is read ------------------------------------------------------

NONCE = b"0123456789abcdef"


def test_an_oversized_row_is_refused_in_its_first_chunk_before_any_parse():
    row = b"[" + b"1.0, " * 2_600_000 + b"1.0]"  # 13 MB: one row of 2.6M floats
    raw = NONCE + b'{"ok": true, "outputs": [' + row + b'], "layers": []}' + NONCE
    scanner = AnswerScanner(NONCE, 2000)
    with pytest.raises(SandboxError, match=f"1 to {MAX_FACTORS} numbers; got more"):
        scanner.feed(raw[:65536])  # what one read of the pipe gives


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"[[[[1.0]]]]", "nested deeper"),
        (b'{"ok": true, "outputs": [' + b"[1.0], " * 40 + b"[1.0]]}", "one list per input"),
        (b'{"ok": "' + b"x" * 10_000 + b'"}', "string over"),
        (b'{"ok": true, "outputs": [[' + b"9" * 2000 + b"]]}", "no JSON structure"),
        (b'{"ok": true}{"ok": true}', "after the answer"),
        (b'{"ok": true}]', "after the answer"),
        (b"]", "stray"),
    ],
)
def test_the_answer_scanner_refuses_what_cannot_be_an_answer(body, reason):
    with pytest.raises(SandboxError, match=reason) as error:
        AnswerScanner(NONCE, 20).feed(NONCE + body + NONCE)
    assert error.value.kind == "shape"


def test_the_scanner_accepts_a_valid_answer_cut_at_every_byte():
    body = {"ok": False, "error": 'a "quoted" [bracket] \\ and {brace},', "layers": ["rlimits"]}
    raw = NONCE + json.dumps(body).encode() + NONCE
    for size in range(1, 40):
        scanner = AnswerScanner(NONCE, 2)
        for start in range(0, len(raw), size):
            scanner.feed(raw[start : start + size])


def test_a_too_wide_answer_from_the_child_is_refused_while_read(monkeypatch):
    parsed = []
    real_parse = runner.parse_answer
    monkeypatch.setattr(runner, "parse_answer", lambda *a: parsed.append(1) or real_parse(*a))
    # 2,000 inputs: a 13 MB answer fits under the byte cap; one row of 2.6M floats does not
    # fit the schema, and is refused in the first chunk the parent reads
    inputs = [({"i": 0}, "go")] + [({"i": 1}, "go")] * 1999
    code = "def evaluate(state, action):\n    return [1.0] * (2600000 if state['i'] == 0 else 1)\n"
    with pytest.raises(SandboxError, match="got more") as error:
        run_sandboxed(code, inputs, memory_mb=1024)
    assert error.value.kind == "shape"
    assert parsed == []  # refused before the parent parsed anything
