"""Text rendering of the household: ALFWorld's feedback strings, word for word where ALFWorld
has one.

Every function here is pure (names in, string out), so the world can cache the strings it builds.
"""

from __future__ import annotations

from collections.abc import Sequence

NOTHING_HAPPENS = "Nothing happens."


def listing(names: Sequence[str]) -> str:
    """ALFWorld's list style: ``a apple 1``, ``a apple 1, and a knife 2``, ``a x, a y, and a z``.

    ALFWorld writes "a" before every name (even "a apple 1") and ", and" before the last item,
    even when there are only two; we copy both so transcripts look like ALFWorld's.
    """
    if not names:
        return "nothing"
    items = [f"a {name}" for name in names]
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + ", and " + items[-1]


def room(receptacles: Sequence[str]) -> str:
    """What the agent sees from the middle of the room (the first observation and `look` there)."""
    return (
        "You are in the middle of a room. Looking quickly around you, "
        f"you see {listing(receptacles)}."
    )


def first_observation(receptacles: Sequence[str], task: str) -> str:
    return f"{room(receptacles)}\n\nYour task is to: {task}"


def contents(receptacle: str, openable: bool, is_open: bool, objects: Sequence[str]) -> str:
    """What a receptacle shows: its state if it opens, then what is in or on it."""
    if not openable:
        return f"On the {receptacle}, you see {listing(objects)}."
    if not is_open:
        return f"The {receptacle} is closed."
    return f"The {receptacle} is open. In it, you see {listing(objects)}."


def arrive(receptacle: str, seen: str) -> str:
    return f"You arrive at {receptacle}. {seen}"


def open_(receptacle: str, seen: str) -> str:
    return f"You open the {receptacle}. {seen}"


def close(receptacle: str) -> str:
    return f"You close the {receptacle}."


def take(obj: str, receptacle: str) -> str:
    return f"You pick up the {obj} from the {receptacle}."


def move(obj: str, receptacle: str) -> str:
    return f"You move the {obj} to the {receptacle}."


def treat(verb: str, obj: str, tool: str) -> str:
    """`clean`, `heat` and `cool` all read "You <verb> the <obj> using the <tool>."."""
    return f"You {verb} the {obj} using the {tool}."


def use(lamp: str, on: bool) -> str:
    return f"You turn {'on' if on else 'off'} the {lamp}."


def examine_object(obj: str, conditions: Sequence[str]) -> str:
    """``This is a normal mug 1.`` or ``This is a clean and hot mug 1.``."""
    adjectives = " and ".join(conditions) if conditions else "normal"
    return f"This is a {adjectives} {obj}."


def inventory(held: str | None) -> str:
    if held is None:
        return "You are not carrying anything."
    return f"You are carrying: a {held}."


def facing(receptacle: str) -> str:
    """ALFWorld's `look` at a receptacle (it really does always say "nothing")."""
    return f"You are facing the {receptacle}. Next to it, you see nothing."
