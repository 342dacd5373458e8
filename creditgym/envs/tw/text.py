"""Text in and out of a TextWorld game: command hygiene, feedback cleaning, facts as strings.

The game runs in a Z-machine interpreter (frotz) that reads raw keyboard input, so a command
is checked before it reaches the game: one command per step (no ``.`` or ``then`` chains),
letters, digits, spaces, apostrophes and hyphens only (a leading backslash is a frotz escape),
and no meta-commands (``quit``, ``restart``, ``save``, ...) that would leave the game waiting
for a yes/no answer or out of step with TextWorld's state tracking.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["clean_feedback", "fact_string", "fact_strings", "normalize_command", "printable"]

MAX_COMMAND_LENGTH = 120
META_COMMANDS = frozenset(
    {
        "quit",
        "q",
        "restart",
        "restore",
        "save",
        "undo",
        "script",
        "unscript",
        "transcript",
        "noscript",
    }
)
_COMMAND_CHARS = frozenset(string.ascii_lowercase + string.digits + " '-")
_PRINTABLE = frozenset(string.printable) - frozenset("\r\x0b\x0c")
_BLANK_LINES = re.compile(r"\n{3,}")
#: Words the interpreter prints around the end of a game that are no business of the agent.
_END_PROMPT = "Would you like to RESTART"
#: What TextWorld's entities ``P`` and ``I`` stand for in facts.
_SPECIAL_NAMES = {"P": "player", "I": "inventory"}


def printable(text: str, limit: int | None = None) -> str:
    """`text` with anything outside printable ASCII dropped, cut to `limit` characters."""
    kept = "".join(ch for ch in text if ch in _PRINTABLE)
    return kept if limit is None else kept[:limit]


def normalize_command(action: Any) -> tuple[str, str | None]:
    """``(command, problem)``: the command in the form the game expects, or why it is refused.

    Lower-cases, collapses whitespace and drops trailing ``.``/``!``/``?`` and quotes (LLMs add
    them). `problem` is None when the command may be sent to the game, else a sentence for the
    observation.
    """
    command = " ".join(str(action).lower().split()).strip(" .!?\"'")
    shown = printable(command, 60)
    if not command:
        return "", "Please type a command, for example one of the admissible actions."
    if len(command) > MAX_COMMAND_LENGTH:
        return (
            command,
            f"That command is too long (over {MAX_COMMAND_LENGTH} characters); "
            "type one short command.",
        )
    if not set(command) <= _COMMAND_CHARS:
        return command, (
            f"I can't parse {shown!r}: use one command of letters, digits, spaces, apostrophes "
            "and hyphens, like 'open door' or 'take coin'."
        )
    words = command.split()
    if "then" in words:
        return command, "One command per step, please (no 'then')."
    if words[0] in META_COMMANDS:
        return command, f"The meta-command {words[0]!r} is disabled in this environment."
    return command, None


def clean_feedback(feedback: str) -> str:
    """The game's response without the interpreter's prompt/status line and padding."""
    lines = []
    for line in feedback.splitlines():
        line = line.rstrip()
        if line.startswith(">") or _END_PROMPT in line:
            continue
        lines.append(line)
    return _BLANK_LINES.sub("\n\n", printable("\n".join(lines))).strip()


def fact_string(fact: Any, names: Mapping[str, str | None] | None = None) -> str:
    """A TextWorld `Proposition` as ``"predicate(arg, ...)"``, e.g. ``"in(coin, inventory)"``.

    Args:
        fact: the proposition.
        names: display name of each variable id (``"k_0" -> "passkey"``); the facts a game
            state reports already carry display names, a quest's actions carry ids.
    """
    args = []
    for variable in fact.arguments:
        name = (names or {}).get(variable.name) or variable.name
        args.append(_SPECIAL_NAMES.get(name, name))
    return f"{fact.name}({', '.join(args)})"


def fact_strings(facts: Iterable[Any]) -> frozenset[str]:
    """All facts of a game state as strings: hashable, deterministic, picklable."""
    return frozenset(fact_string(fact) for fact in facts)
