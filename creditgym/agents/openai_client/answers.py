"""Reading an OpenAI-compatible server's answers: the fields we use, checked, or an error.

A server is untrusted: every field is looked up with `read_field`, which names what is missing,
and every log-prob must be a finite number. `MalformedAnswer` is never retried by the client.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = [
    "BadLogprob",
    "MalformedAnswer",
    "NonFiniteLogprob",
    "preview",
    "server_message",
    "read_field",
    "read_choice",
    "continuation_logprobs",
]


class MalformedAnswer(Exception):
    """The server answered JSON without the fields the OpenAI API promises."""


class BadLogprob(MalformedAnswer):
    """A log-prob in the answer is there but is not a log-probability (positive, not a number)."""


class NonFiniteLogprob(BadLogprob):
    """A log-prob in the answer is NaN or infinite (JSON parsers accept both)."""


#: How far above 0 a log-prob may be and still count as 0 (float rounding in servers).
_LOGPROB_SLACK = 1e-4


def _logprob(value: Any) -> float:
    """One token log-prob from an answer: a JSON number <= 0 (a little above 0 is rounding,
    read as 0). Booleans, strings, numbers too large for a float, NaN, infinities and
    positive values are not log-probabilities: `MalformedAnswer`, never another exception."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadLogprob(f"a token log-prob is {type(value).__name__} {value!r:.40}, not a number")
    try:
        number = float(value)
    except OverflowError:  # an integer with hundreds of digits
        raise NonFiniteLogprob(
            "a token log-prob is an integer too large for a float, not a finite number"
        ) from None
    if not math.isfinite(number):
        raise NonFiniteLogprob(f"a token log-prob is not a finite number: {number}")
    if number > _LOGPROB_SLACK:
        raise BadLogprob(f"a token log-prob is {number:g}, above 0: not a log-probability")
    return min(number, 0.0)


def _logprob_list(values: Any, where: str) -> list[Any]:
    if not isinstance(values, list):
        raise MalformedAnswer(f"{where} is {type(values).__name__}, not a list")
    return values


def preview(raw: bytes, limit: int = 200) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    return repr(text[:limit] + ("..." if len(text) > limit else "")) if text else "(empty body)"


def server_message(raw: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, else a preview of the body."""
    try:
        error = json.loads(raw)["error"]
        message = error["message"] if isinstance(error, dict) else error
        return message if isinstance(message, str) else preview(raw)
    except (ValueError, KeyError, TypeError, RecursionError):
        return preview(raw)


def read_field(obj: Any, *path: str | int) -> Any:
    """``obj[path[0]][path[1]]...``; raises `MalformedAnswer` naming the missing field."""
    for depth, key in enumerate(path):
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            where = "".join(f"[{k!r}]" for k in path[: depth + 1])
            raise MalformedAnswer(f"no {where} in the answer") from None
    return obj


def _optional(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def read_choice(answer: Any, chat: bool) -> tuple[str, list[float]]:
    """Text and per-token log-probs of the first choice of a (chat) completion."""
    choice = read_field(answer, "choices", 0)
    text = read_field(choice, "message", "content") if chat else read_field(choice, "text")
    if not isinstance(text, str):
        raise MalformedAnswer(f"the choice's text is {type(text).__name__}, not a string")
    logprobs = _optional(choice, "logprobs")
    if chat:
        tokens = _logprob_list(_optional(logprobs, "content") or [], "logprobs.content")
        values = [_logprob(read_field(token, "logprob")) for token in tokens]
    else:
        tokens = _optional(logprobs, "token_logprobs") or []
        values = [_logprob(value) for value in _logprob_list(tokens, "logprobs.token_logprobs")]
    return text, values


def continuation_logprobs(answer: Any, prompt_chars: int) -> np.ndarray:
    """Log-probs of the echoed tokens that start at or after character `prompt_chars`."""
    logprobs = read_field(answer, "choices", 0, "logprobs")
    values = read_field(logprobs, "token_logprobs")
    values = _logprob_list(values, "logprobs.token_logprobs")
    offsets = _optional(logprobs, "text_offset")
    try:
        if offsets is None:  # rebuild offsets from the token strings
            tokens = read_field(logprobs, "tokens")
            offsets = list(np.cumsum([0] + [len(token) for token in tokens[:-1]]))
        if len(offsets) != len(values):
            raise MalformedAnswer("token_logprobs and text_offset differ in length")
        kept = [value for offset, value in zip(offsets, values) if offset >= prompt_chars]
        if any(value is None for value in kept):
            raise MalformedAnswer("a continuation token has no log-prob (null)")
        return np.asarray([_logprob(value) for value in kept], dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise MalformedAnswer(f"unreadable token_logprobs or text_offset ({error})") from None
