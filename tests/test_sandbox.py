"""The LaRe sandbox's contract: factor functions run and give their numbers; the allow-list
accepts what a factor function needs and nothing else; failures are `SandboxError`s that say
why; the parent accepts only a well-formed answer. Escapes, judged by their side effects, are
in test_sandbox_escapes.py."""

from __future__ import annotations

import inspect
import os
import time

import pytest

from creditgym.credit.sandbox.result import MAX_FACTORS, parse_answer
from creditgym.credit.sandbox.runner import SandboxError, check_code, run_sandboxed, sandbox_layers

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


def test_a_rich_but_plain_factor_function_passes_and_computes():
    code = '''
from math import log, sqrt
import statistics as st

WEIGHTS = {"a": 2.0, "b": -1.0}

def helper(values: list[float]) -> float:
    """Mean of the positive values."""
    kept = [v for v in values if v > 0]
    return st.mean(kept) if kept else 0.0

def evaluate(state: dict, action: str) -> list[float]:
    total: float = 0.0
    for key, weight in sorted(WEIGHTS.items()):
        total += weight * state.get(key, 0.0)
    words = action.lower().split()
    seen = {w: i for i, w in enumerate(words)}
    flags = [1.0 if "take" in seen else 0.0, float(len(words) > 1 and words[0] == "go")]
    if total > 1:
        total = min(total, 10.0)
    elif total < -1:
        total = max(total, -10.0)
    else:
        pass
    return [total, helper([state["a"], state["b"]]), sqrt(abs(total)) + log(2)] + flags
'''
    inputs = [({"a": 1.0, "b": 0.5}, "Take apple"), ({"a": 0.0, "b": 3.0}, "go north")]
    out = run_sandboxed(code, inputs)
    assert out[0][:2] == [1.5, 0.75] and out[0][3:] == [1.0, 0.0]
    assert out[1][:2] == [-3.0, 3.0] and out[1][3:] == [0.0, 1.0]


def _source(function) -> str:
    return "import math\n" + inspect.getsource(function)


def test_the_envs_hand_written_factor_functions_pass_and_agree_with_running_them_directly():
    from creditgym.envs.coop.env import latent_factors as coop
    from creditgym.envs.coop.spread import spread_factors
    from creditgym.envs.household.factors import latent_factors as household

    states = [
        {"progress": 0.5, "holding_target": 1.0, "needed": 2.0, "placed": 1.0, "at_target": 1.0},
        {"landmark_0_dx": 3.0, "landmark_0_dy": 4.0, "landmark_0_nearest": 1.0, "collisions": 1.0},
    ]
    for function in (household, coop, spread_factors):
        inputs = [(s, a) for s in states for a in ("take apple 1", "look", "move apple 1 to desk")]
        expected = [[float(v) for v in function(s, a)] for s, a in inputs]
        assert run_sandboxed(_source(function), inputs, function=function.__name__) == expected


def test_the_coder_prompt_promises_only_modules_the_allow_list_has():
    from creditgym.credit.shapers.lare_coder import candidate_prompt

    prompt = candidate_prompt("t", "a: x", 0)
    assert "['math', 'statistics']" in prompt and "names starting with '_'" in prompt


@pytest.mark.parametrize(
    "code, reason",
    [
        ("import os\ndef evaluate(s, a):\n    return [0.0]", "import of 'os'"),
        ("import subprocess\ndef evaluate(s, a):\n    return [0.0]", "import of 'subprocess'"),
        ("from math import *\ndef evaluate(s, a):\n    return [0.0]", "importing '\\*'"),
        ("from statistics import sys\ndef evaluate(s, a):\n    return [0.0]", "importing 'sys'"),
        ("def evaluate(s, a):\n    return [open('/tmp/x').read()]", "name 'open'"),
        ("def evaluate(s, a):\n    return [().__class__]", "'__class__'"),
        ("def evaluate(s, a):\n    return [eval('1')]", "name 'eval'"),
        ("def evaluate(s, a):\n    return [__import__('os')]", "'__import__'"),
        ("def evaluate(s, a):\n    return [type(s)]", "name 'type'"),
        ("def evaluate(s, a):\n    getattr = 1\n    return [getattr]", "name 'getattr'"),
        ("def evaluate(s, a):\n    return [undefined(s)]", "name 'undefined'"),
        ("def evaluate(s, a):\n    return ['{0}'.format(s)]", "'format'"),
        ("import math\ndef evaluate(s, a):\n    return [math.sys]", "math.sys"),
        ("import math\ndef evaluate(s, a):\n    math.sqrt = abs\n    return [0.0]", "assigning"),
        ("def evaluate(s, a):\n    return [(lambda: 1)()]", "lambdas"),
        ("def evaluate(s, a):\n    return [sum(x for x in s)]", "generator expressions"),
        ("def evaluate(s, a):\n    while True:\n        pass", "while loops"),
        ("def evaluate(s, a):\n    try:\n        pass\n    finally:\n        pass", "try"),
        ("class A:\n    pass\ndef evaluate(s, a):\n    return [0.0]", "classes"),
        ("def evaluate(s, a):\n    global g\n    return [0.0]", "global"),
        ("def evaluate(s, a):\n    raise ValueError('x')", "raise"),
        ("def evaluate(s, a):\n    return [b'x']", "bytes constant"),
        ("def evaluate(s, a, *rest):\n    return [0.0]", "\\*args"),
        ("def evaluate(s, a):\n    return [f(**s)]\ndef f():\n    return 0", "\\*\\*unpacking"),
        ("def score(s, a):\n    return [0.0]", "no function 'evaluate'"),
        ("def evaluate(s):\n    return [0.0]", "two arguments"),
        ("def evaluate(s, a) return", "syntax error"),
        ("x = 1\0", "cannot be parsed|syntax error"),
        ("x = " + "+".join(["1"] * 200_000), "at most|too deeply"),
    ],
)
def test_the_allow_list_rejects_with_the_line_and_the_reason(code, reason):
    with pytest.raises(SandboxError, match=reason):
        check_code(code)


def test_rejections_name_the_line():
    with pytest.raises(SandboxError, match="^line 3: "):
        check_code("def evaluate(s, a):\n    x = 1\n    return [lambda: x]")


def test_annotations_are_never_checked_or_run():
    code = (
        "LIMIT: Nowhere[__class__] = 2.0\n"
        "def evaluate(state: Whatever[__class__], action: open('/etc/passwd')) -> list:\n"
        "    x: Unknown = 1.0\n    y: int\n    return [x * LIMIT]"
    )
    assert check_code(code) == code  # exactly the checked source runs
    assert run_sandboxed(code, INPUTS) == [[2.0], [2.0]]


def test_an_endless_loop_is_stopped_within_the_time_limit():
    start = time.monotonic()
    with pytest.raises(SandboxError, match="time limit"):
        run_sandboxed(
            "def evaluate(s, a):\n    for i in range(10 ** 12):\n        pass",
            INPUTS,
            time_limit=1.0,
        )
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
        ("return [True]", "list of numbers"),
        ("return [float('nan')]", "non-finite"),
        ("return [float('inf'), 1.0]", "non-finite"),
        ("return [1.0] * len(a)", "different lengths"),
        ("return []", "1 to 256 numbers"),
        ("return [1 / 0]", "ZeroDivisionError"),
        ("return [s['missing']]", "KeyError"),
    ],
)
def test_wrong_outputs_are_rejected(body, reason):
    with pytest.raises(SandboxError, match=reason):
        run_sandboxed(f"def evaluate(s, a):\n    {body}", INPUTS)


def test_bad_arguments_are_rejected_before_anything_runs():
    with pytest.raises(SandboxError, match="time_limit"):
        run_sandboxed(GOOD, INPUTS, time_limit=float("nan"))
    with pytest.raises(SandboxError, match="memory_mb"):
        run_sandboxed(GOOD, INPUTS, memory_mb=1)
    with pytest.raises(SandboxError, match="plain JSON"):
        run_sandboxed(GOOD, [({"x": object()}, "a")])
    with pytest.raises(SandboxError, match="pairs"):
        run_sandboxed(GOOD, [({"x": 1}, "a", "extra")])


def test_the_trainer_process_is_unaffected():
    before = (os.getcwd(), dict(os.environ))
    with pytest.raises(SandboxError):
        run_sandboxed(
            "def evaluate(s, a):\n    for i in range(10 ** 12):\n        pass",
            INPUTS,
            time_limit=0.5,
        )
    assert run_sandboxed(GOOD, INPUTS)[0] == [1.0, 2.0, 1.0]  # and the next call works
    assert (os.getcwd(), dict(os.environ)) == before


def test_sandbox_layers_reports_the_layers_the_machine_allows():
    layers = sandbox_layers()
    assert layers["allow_list"] and layers["separate_process"] and layers["validated_answer"]
    assert layers["rlimits"] and layers["audit_hook"] and layers["restricted_builtins"]
    if os.geteuid() == 0 and _has_capability(7):  # CAP_SETUID
        assert layers["unprivileged_user"]
    if os.uname().machine == "x86_64":
        assert layers["seccomp"]


def _has_capability(bit: int) -> bool:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("CapEff:"))
    return bool(int(line.split()[1], 16) >> bit & 1)


# ---- the parent's validator, fed hostile answers directly -------------------------------------

NONCE = b"0123456789abcdef"
KNOWN = frozenset({"seccomp", "rlimits"})


def _framed(body: bytes) -> bytes:
    return NONCE + body + NONCE


def test_the_validator_accepts_exactly_the_schema():
    answer = parse_answer(
        _framed(b'{"ok": true, "outputs": [[1, 2.5]], "layers": ["seccomp"]}'), NONCE, 1, KNOWN
    )
    assert answer.outputs == [[1.0, 2.5]] and answer.layers == ("seccomp",)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b'{"ok": true, "outputs": [[1.0]], "layers": []}', "no well-formed answer"),
        (_framed(b'{"ok": true, "outputs": [[1.0]], "layers": []}')[1:], "no well-formed"),
        (
            b"XXXXXXXXXXXXXXXX" + b'{"ok": true, "outputs": [[1.0]], "layers": []}' + NONCE,
            "no well",
        ),
        (_framed(b"not json"), "unreadable"),
        (_framed(b"\xff\xfe"), "unreadable"),
        (_framed(b"[" * 100_000 + b"]" * 100_000), "unreadable|wrong form"),
        (_framed(b'{"ok": true, "outputs": [[NaN]], "layers": []}'), "non-finite"),
        (_framed(b'{"ok": true, "outputs": [[Infinity]], "layers": []}'), "non-finite"),
        (_framed(b'{"ok": true, "outputs": [[1e999]], "layers": []}'), "non-finite"),
        (
            _framed(b'{"ok": true, "outputs": [[' + b"9" * 400 + b"]], " + b'"layers": []}'),
            "non-finite",
        ),
        (_framed(b'{"ok": true, "outputs": [["1.0"]], "layers": []}'), "list of numbers"),
        (_framed(b'{"ok": true, "outputs": [[true]], "layers": []}'), "list of numbers"),
        (_framed(b'{"ok": true, "outputs": "[[1.0]]", "layers": []}'), "one list per input"),
        (_framed(b'{"ok": true, "outputs": [[1.0], [2.0]], "layers": []}'), "one list per input"),
        (_framed(b'{"ok": true, "outputs": [[]], "layers": []}'), "1 to"),
        (_framed(b'{"ok": true, "outputs": [[1.0]], "layers": [], "x": 1}'), "wrong form"),
        (_framed(b'{"ok": true, "outputs": [[1.0]], "layers": ["root"]}'), "unknown layers"),
        (_framed(b'{"ok": "yes", "outputs": [[1.0]], "layers": []}'), "wrong form"),
        (_framed(b"[[1.0]]"), "wrong form"),
        (_framed(b'{"ok": false, "error": 5, "layers": []}'), "wrong form"),
    ],
)
def test_the_validator_turns_every_hostile_answer_into_a_sandbox_error(raw, reason):
    with pytest.raises(SandboxError, match=reason):
        parse_answer(raw, NONCE, 1, KNOWN)


def test_ragged_rows_and_too_many_factors_are_rejected():
    with pytest.raises(SandboxError, match="different lengths"):
        parse_answer(
            _framed(b'{"ok": true, "outputs": [[1], [1, 2]], "layers": []}'), NONCE, 2, KNOWN
        )
    wide = b"[" + b",".join([b"1"] * (MAX_FACTORS + 1)) + b"]"
    with pytest.raises(SandboxError, match="1 to 256"):
        parse_answer(
            _framed(b'{"ok": true, "outputs": [' + wide + b'], "layers": []}'), NONCE, 1, KNOWN
        )


def test_a_childs_error_text_is_cut_and_cleaned():
    body = b'{"ok": false, "error": "' + b"\\u001b[31m" + b"x" * 5000 + b'", "layers": []}'
    answer = parse_answer(_framed(body), NONCE, 1, KNOWN)
    assert answer.outputs is None and len(answer.error) <= 500 and "\x1b" not in answer.error


def test_every_allow_listed_function_runs_inside_the_sandbox():
    """None of them may need something the layers take away (a lazy import, a file, an
    audited event): each is called once, and its number comes back."""
    from creditgym.credit.sandbox.policy import MODULE_FUNCTIONS

    special = {  # arguments where one float list does not fit
        "atan2": "(1.0, 2.0)", "comb": "(5, 2)", "copysign": "(1.0, -2.0)", "dist": "(xs, xs)",
        "fmod": "(5.0, 3.0)", "gcd": "(4, 6)", "hypot": "(3.0, 4.0)", "isclose": "(1.0, 1.0)",
        "lcm": "(4, 6)", "ldexp": "(1.0, 2)", "log": "(8.0, 2.0)", "perm": "(5, 2)",
        "pow": "(2.0, 3.0)", "remainder": "(5.0, 3.0)", "factorial": "(5)", "isqrt": "(17)",
        "acosh": "(2.0)", "atanh": "(0.5)", "acos": "(0.5)", "asin": "(0.5)",
        "correlation": "(xs, ys)", "covariance": "(xs, ys)", "quantiles": "(xs)",
        "frexp": "(8.0)", "modf": "(2.5)",
    }  # fmt: skip
    lines = ["import math", "import statistics", "", "def evaluate(state, action):"]
    lines += ["    xs = [1.0, 2.0, 3.0, 4.5]", "    ys = [2.0, 1.0, 4.0, 3.0]", "    out = []"]
    for module, names in sorted(MODULE_FUNCTIONS.items()):
        for name in sorted(names):
            if name in ("e", "pi", "tau", "inf", "nan"):
                lines.append(f"    out.append(float({module}.{name} > 0 or {module}.{name} < 1))")
                continue
            args = special.get(
                name, "(xs)" if module == "statistics" or name in ("fsum", "prod") else "(0.5)"
            )
            value = f"{module}.{name}{args}"
            lines.append(f"    v = {value}")
            lines.append(
                "    out.append(float(len(v)) if isinstance(v, (list, tuple)) else float(v))"
            )
    lines.append("    return out")
    rows = run_sandboxed("\n".join(lines) + "\n", INPUTS)
    assert len(rows) == 2 and rows[0] == rows[1]
    assert len(rows[0]) == sum(len(names) for names in MODULE_FUNCTIONS.values())


@pytest.mark.parametrize(
    "machine, header",
    [
        ("x86_64", "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
        ("aarch64", "/usr/include/asm-generic/unistd.h"),  # arm64 uses the generic table
    ],
)
def test_the_seccomp_table_has_the_kernels_system_call_numbers(machine, header):
    import re
    from pathlib import Path

    from creditgym.credit.sandbox.child import SECCOMP_ARCHES

    if not Path(header).exists():
        pytest.skip(f"no {header} to compare with (install linux-libc-dev)")
    text = Path(header).read_text()
    # asm-generic names a few calls through __NR3264_* (fcntl, mmap) for 64-bit machines
    kernel = {k: int(v) for k, v in re.findall(r"#define __NR(?:3264)?_(\w+) (\d+)\b", text)}
    table = SECCOMP_ARCHES[machine][1]
    assert {name: kernel.get(name) for name in table} == table
