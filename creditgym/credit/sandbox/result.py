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

The shape is also checked while the answer is still arriving (`AnswerScanner`, fed each chunk
the parent reads): nesting deeper than the schema, more rows or numbers than it allows, an
overlong string or number ends the read before any JSON parse, so a hostile answer costs the
parent no more memory than its bytes.

Every `SandboxError` carries a `kind` (`KINDS`): ``syntax`` (the code was rejected or does not
compile), ``timeout``, ``memory``, ``shape`` (the answer is not the schema) or ``crash``
(anything else: an exception in the code, a dead process).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SandboxError",
    "KINDS",
    "Answer",
    "AnswerScanner",
    "MAX_FACTORS",
    "MAX_ERROR_CHARS",
    "parse_answer",
    "clean_text",
]

MAX_FACTORS = 256  # factors per input: far more than any factor function needs
MAX_ERROR_CHARS = 500  # of an error message from the child, after cleaning
KINDS = ("syntax", "timeout", "memory", "shape", "crash")
# While reading: a JSON string of the answer may take this many bytes (the child's error is
# cut to MAX_ERROR_CHARS characters, each at most 12 bytes as JSON escapes), and a number or
# literal between two structural characters this many (a float's repr takes at most 24).
MAX_STRING_BYTES = 12 * MAX_ERROR_CHARS + 64
MAX_GAP_BYTES = 512
_STRUCTURE = re.compile(rb'["\\\[\]{},]')


class SandboxError(ValueError):
    """Untrusted code was rejected or failed; the message says why, `kind` which way.

    Attributes:
        kind: one of `KINDS` (``syntax``, ``timeout``, ``memory``, ``shape``, ``crash``).
    """

    def __init__(self, message: str, kind: str = "crash") -> None:
        super().__init__(message)
        self.kind = kind if kind in KINDS else "crash"

    def __reduce__(self) -> tuple[Any, ...]:  # keep the kind through pickling (Ray, processes)
        return (type(self), (str(self), self.kind))


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
    raise SandboxError(f"returned a non-finite value ({name})", "shape")


def _wrong_form(why: str) -> SandboxError:
    return SandboxError(f"the sandboxed process gave an answer of the wrong form ({why})", "shape")


class AnswerScanner:
    """Checks the framed answer's shape chunk by chunk, as the parent reads it.

    It looks only at JSON's structural bytes (found by a regular expression, so numbers cost
    nothing) and rejects, with a `SandboxError` of kind ``shape``, as soon as the bytes seen
    cannot be a valid answer: a wrong frame start, nesting deeper than the schema's three
    levels, more rows than `max_rows`, more than `MAX_FACTORS` numbers in a row, a string over
    `MAX_STRING_BYTES`, a run of over `MAX_GAP_BYTES` without structure, a second value.
    What passes is small enough for `parse_answer` to parse and check in full.
    """

    def __init__(self, nonce: bytes, max_rows: int) -> None:
        self.nonce = nonce
        self.limits = {1: 3, 2: max(1, max_rows), 3: MAX_FACTORS}  # items per nesting level
        self.seen = 0  # bytes fed so far
        self.items: list[int] = []  # per open container: its items so far
        self.closed = False  # the top-level value has ended
        self.string_start = -1  # offset of the open string's quote, -1 outside strings
        self.skip_until = 0  # an escaped byte inside a string is not structure
        self.last = len(nonce)  # offset of the last structural byte (or of the body's start)

    def feed(self, chunk: bytes) -> None:
        """Check the next `chunk` of the raw answer; raise `SandboxError` at the first fault."""
        start, frame = self.seen, len(self.nonce)
        self.seen += len(chunk)
        if start < frame:
            head = chunk[: frame - start]
            if head != self.nonce[start : start + len(head)]:
                raise SandboxError("the sandboxed process gave no well-formed answer", "shape")
        for match in _STRUCTURE.finditer(chunk, max(0, frame - start)):
            self._structural(start + match.start(), match.group())
        if self.string_start >= 0 and self.seen - self.string_start > MAX_STRING_BYTES:
            raise _wrong_form(f"a string over {MAX_STRING_BYTES} bytes")
        if self.string_start < 0 and self.seen - max(self.last, frame) > MAX_GAP_BYTES:
            raise _wrong_form(f"over {MAX_GAP_BYTES} bytes that are no JSON structure")

    def _structural(self, at: int, char: bytes) -> None:
        if at < self.skip_until:
            return
        if self.string_start >= 0:  # inside a string only its end and escapes count
            if char == b"\\":
                self.skip_until = at + 2
            elif char == b'"':
                if at - self.string_start > MAX_STRING_BYTES:
                    raise _wrong_form(f"a string over {MAX_STRING_BYTES} bytes")
                self.string_start, self.last = -1, at
            return
        if at - self.last > MAX_GAP_BYTES:
            raise _wrong_form(f"over {MAX_GAP_BYTES} bytes that are no JSON structure")
        self.last = at
        if self.closed or char == b"\\":
            raise _wrong_form("bytes after the answer")
        if char == b'"':
            self.string_start = at
        elif char in (b"[", b"{"):
            if len(self.items) == 3:
                raise _wrong_form("nested deeper than the schema")
            self.items.append(1)
        elif not self.items:  # a comma or a closing bracket outside any container
            raise _wrong_form(f"a stray {char.decode()!r}")
        elif char == b",":
            self.items[-1] += 1
            self._check_count()
        else:
            self.items.pop()
            self.closed = not self.items

    def _check_count(self) -> None:
        depth, count = len(self.items), self.items[-1]
        if count <= self.limits[depth]:
            return
        if depth == 3:
            raise SandboxError(f"must return 1 to {MAX_FACTORS} numbers; got more", "shape")
        if depth == 2:
            raise SandboxError(
                f"must return one list per input ({self.limits[2]}); got more", "shape"
            )
        raise _wrong_form("too many keys")


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
        raise SandboxError("the sandboxed process gave no well-formed answer", "shape")
    AnswerScanner(nonce, max(n_inputs, len(known_layers))).feed(raw)  # bounded before parsing
    body = raw[len(nonce) : len(raw) - len(nonce)]
    try:
        answer = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except SandboxError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError, MemoryError) as error:
        raise SandboxError(
            f"the sandboxed process gave an unreadable answer ({type(error).__name__})", "shape"
        ) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise SandboxError("the sandboxed process gave an answer of the wrong form", "shape")
    layers = _layers(answer.get("layers"), known_layers)
    if answer["ok"]:
        if set(answer) != {"ok", "outputs", "layers"}:
            raise SandboxError("the sandboxed process gave an answer of the wrong form", "shape")
        return Answer(_outputs(answer["outputs"], n_inputs), "", layers)
    if set(answer) != {"ok", "error", "layers"} or not isinstance(answer["error"], str):
        raise SandboxError("the sandboxed process gave an answer of the wrong form", "shape")
    return Answer(None, clean_text(answer["error"]) or "failed without a message", layers)


def _layers(value: Any, known: frozenset[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v in known for v in value):
        raise SandboxError("the sandboxed process reported unknown layers", "shape")
    return tuple(value)


def _outputs(value: Any, n_inputs: int) -> list[list[float]]:
    """The checked rows: a list of `n_inputs` equally long lists of finite numbers."""
    if not isinstance(value, list) or len(value) != n_inputs:
        raise SandboxError(
            f"must return one list per input ({n_inputs}); got something else", "shape"
        )
    rows = []
    for row in value:
        if not isinstance(row, list) or not all(
            type(v) in (int, float)
            for v in row  # exact types: no bools, no subclasses
        ):
            raise SandboxError("must return a list of numbers for every input", "shape")
        if not 1 <= len(row) <= MAX_FACTORS:
            raise SandboxError(f"must return 1 to {MAX_FACTORS} numbers; got {len(row)}", "shape")
        try:
            floats = [float(v) for v in row]
        except OverflowError:  # an int too large for a float
            raise SandboxError(
                "returned a non-finite value (an int beyond float range)", "shape"
            ) from None
        if not all(math.isfinite(v) for v in floats):
            raise SandboxError("returned a non-finite value", "shape")
        rows.append(floats)
    lengths = sorted({len(row) for row in rows})
    if len(lengths) > 1:
        raise SandboxError(f"returned lists of different lengths: {lengths}", "shape")
    return rows
