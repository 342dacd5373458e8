"""The sandbox's third layer: the parent trusts nothing the child sends back.

The child writes one answer on a dedicated pipe, framed by a random nonce that only the parent
and the child's own runner know. `parse_answer` accepts exactly that frame around a small JSON
object, and exactly the schema below; anything else (output on stdout, a truncated frame,
``NaN``, a string, a ragged list, a nesting bomb) is a `SandboxError` naming the reason.

Schema of the framed JSON object::

    {"ok": true,  "outputs": [[float, ...], ...], "layers": [str, ...]}
    {"ok": false, "error": str,                   "layers": [str, ...]}

``outputs`` has one row per input, every row the same length (1 to `MAX_FACTORS`), every value
a finite int or float (not a bool).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["SandboxError", "Answer", "MAX_FACTORS", "MAX_ERROR_CHARS", "parse_answer", "clean_text"]

MAX_FACTORS = 256  # factors per input: far more than any factor function needs
MAX_ERROR_CHARS = 500  # of an error message from the child, after cleaning


class SandboxError(ValueError):
    """Untrusted code was rejected or failed; the message says why."""


@dataclass(frozen=True)
class Answer:
    """A validated answer: the outputs (None when the code failed), its error, the layers."""

    outputs: list[list[float]] | None
    error: str
    layers: tuple[str, ...]


def clean_text(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text` cut to `limit` characters, control characters replaced, for an error message."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def _reject_constant(name: str) -> Any:
    raise SandboxError(f"returned a non-finite value ({name})")


def parse_answer(raw: bytes, nonce: bytes, n_inputs: int, known_layers: frozenset[str]) -> Answer:
    """Validate the child's framed answer `raw` against the schema (see the module docstring).

    Args:
        raw: everything read from the answer pipe (already size-capped by the reader).
        nonce: the frame the parent gave this run.
        n_inputs: how many rows ``outputs`` must have.
        known_layers: layer names the child may report.

    Raises:
        SandboxError: the frame, the JSON or the schema is wrong; the message says which.
    """
    if len(raw) < 2 * len(nonce) or not (raw.startswith(nonce) and raw.endswith(nonce)):
        raise SandboxError("the sandboxed process gave no well-formed answer")
    body = raw[len(nonce) : len(raw) - len(nonce)]
    try:
        answer = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except SandboxError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError, MemoryError) as error:
        raise SandboxError(
            f"the sandboxed process gave an unreadable answer ({type(error).__name__})"
        ) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise SandboxError("the sandboxed process gave an answer of the wrong form")
    layers = _layers(answer.get("layers"), known_layers)
    if answer["ok"]:
        if set(answer) != {"ok", "outputs", "layers"}:
            raise SandboxError("the sandboxed process gave an answer of the wrong form")
        return Answer(_outputs(answer["outputs"], n_inputs), "", layers)
    if set(answer) != {"ok", "error", "layers"} or not isinstance(answer["error"], str):
        raise SandboxError("the sandboxed process gave an answer of the wrong form")
    return Answer(None, clean_text(answer["error"]) or "failed without a message", layers)


def _layers(value: Any, known: frozenset[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v in known for v in value):
        raise SandboxError("the sandboxed process reported unknown layers")
    return tuple(value)


def _outputs(value: Any, n_inputs: int) -> list[list[float]]:
    """The checked rows: a list of `n_inputs` equally long lists of finite numbers."""
    if not isinstance(value, list) or len(value) != n_inputs:
        raise SandboxError(f"must return one list per input ({n_inputs}); got something else")
    rows = []
    for row in value:
        if not isinstance(row, list) or not all(
            type(v) in (int, float)
            for v in row  # exact types: no bools, no subclasses
        ):
            raise SandboxError("must return a list of numbers for every input")
        if not 1 <= len(row) <= MAX_FACTORS:
            raise SandboxError(f"must return 1 to {MAX_FACTORS} numbers; got {len(row)}")
        try:
            floats = [float(v) for v in row]
        except OverflowError:  # an int too large for a float
            raise SandboxError("returned a non-finite value (an int beyond float range)") from None
        if not all(math.isfinite(v) for v in floats):
            raise SandboxError("returned a non-finite value")
        rows.append(floats)
    lengths = sorted({len(row) for row in rows})
    if len(lengths) > 1:
        raise SandboxError(f"returned lists of different lengths: {lengths}")
    return rows
