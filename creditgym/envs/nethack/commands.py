"""Text commands for NLE actions: names, aliases and the parser.

A MiniHack task has its own small action set (eight compass moves, plus ``pick up`` and
``apply key`` in KeyRoom); each action gets one canonical text command (what
``admissible_actions`` lists) and a few aliases an LLM is likely to write.
"""

from __future__ import annotations

import string

__all__ = ["DIRECTIONS", "command_name", "command_table", "parse_command"]

#: Compass name, abbreviation, (dx, dy) on the screen (y grows southwards), NLE key.
DIRECTIONS: tuple[tuple[str, str, tuple[int, int], str], ...] = (
    ("north", "n", (0, -1), "k"),
    ("east", "e", (1, 0), "l"),
    ("south", "s", (0, 1), "j"),
    ("west", "w", (-1, 0), "h"),
    ("northeast", "ne", (1, -1), "u"),
    ("southeast", "se", (1, 1), "n"),
    ("southwest", "sw", (-1, 1), "b"),
    ("northwest", "nw", (-1, -1), "y"),
)
_BY_KEY = {key: (name, abbreviation) for name, abbreviation, _, key in DIRECTIONS}
#: Non-movement NLE commands (by their key code) and their text commands, first canonical.
_COMMANDS: dict[int, tuple[str, ...]] = {
    ord(","): ("pick up", "pickup", "take", "pick up key", "take key", "get key", "grab key"),
    ord("a"): ("apply key", "apply", "use key", "unlock door", "open door", "unlock door with key"),
    4: ("kick",),  # ^D
    ord(">"): ("descend", "go down", "climb down", "go downstairs"),
    ord("<"): ("ascend", "go up", "climb up"),
    ord("s"): ("search",),
    ord("."): ("wait", "rest"),
    ord("o"): ("open",),
    ord("c"): ("close",),
}
_STRIP = " " + string.punctuation.replace(",", "")


def _aliases(action: int) -> tuple[str, ...]:
    key = chr(int(action))
    if key in _BY_KEY:
        name, abbreviation = _BY_KEY[key]
        return (
            f"move {name}",
            f"go {name}",
            f"walk {name}",
            name,
            abbreviation,
            f"move {abbreviation}",
        )
    return _COMMANDS.get(int(action), (f"key {int(action)}",))


def command_name(action: int) -> str:
    """The canonical text command of an NLE action (``"move north"``, ``"pick up"``)."""
    return _aliases(action)[0]


def command_table(actions: tuple[int, ...]) -> dict[str, int]:
    """Every accepted spelling (lower case) -> index into the task's action tuple."""
    table: dict[str, int] = {}
    for index, action in enumerate(actions):
        for alias in _aliases(action):
            table.setdefault(alias, index)
    return table


def parse_command(text: object, table: dict[str, int]) -> int | None:
    """Index of the action `text` names, or None when it names none of the task's actions."""
    command = " ".join(str(text).lower().split()).strip(_STRIP)
    return table.get(command)
