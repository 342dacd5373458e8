"""LaRe's code writer: an LLM writes the latent-reward factor function, verified in the sandbox.

As in the paper (arXiv:2412.11120, Sec. 4.1): the LLM is given the task and the documented
``symbolic_state`` fields and writes `n_candidates` functions ``evaluate(state, action) ->
list[float]``; it is then asked to merge them into one; the merged function is run on sample
states in the sandbox, and any error (a rejected import, an exception, the wrong shape) is fed
back for another try, up to `max_rounds` rounds. Every request goes through `CachedLLM`, so a
rerun costs nothing; the accepted code is also returned for the caller to keep.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from creditgym.credit.llm import CachedLLM
from creditgym.credit.sandbox.runner import ALLOWED_MODULES, SandboxError, run_sandboxed

__all__ = ["CodeResult", "write_factor_code", "extract_code"]

_ROLE = "You are an expert in reinforcement learning who writes small, correct Python functions."


def _spec(task: str, state_doc: str) -> str:
    return (
        f"{_ROLE}\n\nTask of the agent: {task}\n\nAfter every action the environment reports a "
        f"state dict with these fields:\n{state_doc}\n\nWrite a Python function "
        "`evaluate(state, action)` that returns a list of floats: latent reward factors, each "
        "one an aspect of how much the action (a string) and the state it led to advance the "
        f"task. Use only plain Python and the modules {sorted(ALLOWED_MODULES)}; no files, no "
        "other imports, no lambdas, generators, classes, while, try or with, no names starting "
        "with '_'. Always return the same number of factors."
    )


def candidate_prompt(task: str, state_doc: str, index: int) -> str:
    """The request for one candidate (numbered, so each candidate is its own request)."""
    return (
        f"{_spec(task, state_doc)}\n\nThis is candidate {index + 1}. "
        "Answer with one ```python code block."
    )


def merge_prompt(task: str, state_doc: str, candidates: Sequence[str]) -> str:
    shown = "\n\n".join(
        f"Candidate {i + 1}:\n```python\n{code}\n```" for i, code in enumerate(candidates)
    )
    return (
        f"{_spec(task, state_doc)}\n\nHere are candidate functions:\n\n{shown}\n\n"
        "Merge them into one `evaluate(state, action)` that keeps every useful factor. "
        "Answer with one ```python code block."
    )


def repair_prompt(task: str, state_doc: str, code: str, error: str) -> str:
    return (
        f"{_spec(task, state_doc)}\n\nThis function failed:\n```python\n{code}\n```\n"
        f"Error: {error}\n\nFix it. Answer with one ```python code block."
    )


_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


def extract_code(answer: str) -> str:
    """The first fenced code block of an answer, else the answer from its first ``def`` or
    ``import``."""
    match = _BLOCK.search(answer)
    if match:
        return match.group(1).strip()
    start = re.search(r"^(def |import |from )", answer, re.MULTILINE)
    return answer[start.start() :].strip() if start else answer.strip()


@dataclass
class CodeResult:
    """What the writer produced: the accepted code (or None) and the log of every round."""

    code: str | None
    rounds: list[dict[str, str]] = field(default_factory=list)


def write_factor_code(
    llm: CachedLLM,
    task: str,
    state_doc: str,
    samples: Sequence[tuple[dict[str, Any], str]],
    *,
    n_candidates: int = 5,
    max_rounds: int = 5,
    time_limit: float = 10.0,
    item_time_limit: float = 1.0,
) -> CodeResult:
    """Candidates, a merge, then sandboxed self-verification with errors fed back.

    Args:
        llm: the cached client (the same kind CALM's judge uses).
        task: the task description.
        state_doc: the documented ``symbolic_state`` fields, one per line.
        samples: ``(state, action)`` pairs the code must run on.
        n_candidates: functions written before the merge (5 in the paper).
        max_rounds: verification rounds (5 in the paper).
        time_limit, item_time_limit: the sandbox's CPU seconds per batch and per sample (as
            training runs the code, `sandboxed_factors`).

    Any failure (rejected, crashed, too slow, out of memory, wrong shape) is shown to the LLM
    with its reason and logged in `CodeResult.rounds` with its ``kind``.
    """
    answers = llm.ask([candidate_prompt(task, state_doc, i) for i in range(n_candidates)])
    candidates = [extract_code(a) for a in answers if a]
    result = CodeResult(code=None)
    if not candidates:
        result.rounds.append({"stage": "candidates", "error": "the LLM gave no answer"})
        return result
    merged = llm.ask([merge_prompt(task, state_doc, candidates)])[0]
    code = extract_code(merged) if merged else candidates[0]
    for round_index in range(max_rounds):
        try:  # every failure of the code, whatever its kind, is a SandboxError
            run_sandboxed(code, samples, time_limit=time_limit, item_time_limit=item_time_limit)
        except SandboxError as error:
            result.rounds.append(
                {
                    "stage": f"verify {round_index + 1}",
                    "code": code,
                    "error": str(error),
                    "kind": error.kind,
                }
            )
            fixed = llm.ask([repair_prompt(task, state_doc, code, str(error))])[0]
            if fixed is None:
                break
            code = extract_code(fixed)
            continue
        result.rounds.append(
            {"stage": f"verify {round_index + 1}", "code": code, "error": "", "kind": ""}
        )
        result.code = code
        break
    return result
