"""Text in and out of the Java text-game engines (ScienceWorld, TextWorldExpress).

Their parsers take any string, but a command the env passes on should be one short line a
player could type: single spaces, no trailing full stop, printable ASCII. Anything else is
refused before it reaches the engine, with a sentence saying why. The engines' names keep
their case (TextWorldExpress's ``box of Q-tips``, ``TV remote control``) and their parsers
match it exactly, so a command equal to an admissible action but for case becomes that action.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

__all__ = ["MAX_COMMAND_LENGTH", "normalize_command", "printable"]

MAX_COMMAND_LENGTH = 200
#: Characters the engines' own commands use (object names carry digits, hyphens, apostrophes,
#: parentheses and commas in a few places).
_COMMAND_CHARS = frozenset(string.ascii_letters + string.digits + " '-(),")
_PRINTABLE = frozenset(string.printable) - frozenset("\r\x0b\x0c")


def printable(text: str, limit: int | None = None) -> str:
    """`text` with anything outside printable ASCII dropped, cut to `limit` characters."""
    kept = "".join(ch for ch in str(text) if ch in _PRINTABLE)
    return kept if limit is None else kept[:limit]


def normalize_command(action: Any, admissible: Iterable[str] = ()) -> tuple[str, str | None]:
    """``(command, problem)``: the command as the engine expects it, or why it is refused.

    Collapses whitespace and strips trailing ``.``/``!``/``?`` and quotes (LLMs add them); a
    command that matches one of `admissible` but for case becomes it. `problem` is None when
    the command may go to the engine, else a sentence for the observation. Non-strings are
    refused.
    """
    if not isinstance(action, str):
        return "", (
            f"An action is a line of text, not {type(action).__name__}; type one command, for "
            "example one of the admissible actions."
        )
    command = " ".join(action.split()).strip(" .!?\"'")
    if not command:
        return "", "Please type a command, for example one of the admissible actions."
    if len(command) > MAX_COMMAND_LENGTH:
        return command, (
            f"That command is too long (over {MAX_COMMAND_LENGTH} characters); type one "
            "short command."
        )
    if not set(command) <= _COMMAND_CHARS:
        return command, (
            f"I can't parse {printable(command, 60)!r}: use one command of letters, digits "
            "and spaces, like the admissible actions."
        )
    folded = command.lower()
    return next((a for a in admissible if a.lower() == folded), command), None
