"""What the policy is offered in ScienceWorld: the engine's valid actions, deduplicated, capped.

The engine lists every valid action-object combination of the current state
(`get_valid_action_object_combinations_with_templates`): about 400 in the hallway at the
start, 1,000-4,000 in a furnished room, most of them two-object actions such as ``connect
agent to air`` or ``move picture to orange``. The admissible list is built from it, and from
nothing else (the gold action is never added):

1. one entry per (template, objects) and per text: the engine often lists the same action
   under several names of its objects (``open door to kitchen``, ``open kitchen door``), and
   two objects of one name (``air``) give the same text; the alphabetically first name is
   kept (the engine's own order changes from one load of a task to the next);
2. ``reset task`` is dropped (it restarts the task inside the episode; the env refuses it);
3. above `max_admissible` entries: every action without objects (``look around``,
   ``inventory``, ``wait``, ...) and with one object (``open``, ``pick up``, ``focus on``,
   ``go to``, ``activate``, ...) is kept first, and the rest of the
   room is a sample of the two-object actions drawn with a seed taken from the state's
   anchor, so the same state always offers the same list. Where the zero- and one-object
   actions alone pass the cap, they are sampled the same way (those without objects always
   kept).

The env still accepts any command the engine parses, listed or not.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["FORBIDDEN_COMMANDS", "admissible_actions"]

#: Engine commands the env refuses: they would restart the task mid-episode.
FORBIDDEN_COMMANDS = frozenset({"reset task"})


def admissible_actions(
    valid: Iterable[Mapping[str, Any]], max_admissible: int | None, state_key: str
) -> tuple[list[str], int]:
    """``(offered, num_distinct)``: the actions offered (see the module docstring) and how many
    distinct valid actions the engine listed before the cap.

    Args:
        valid: the engine's ``{"action", "template_id", "obj_ids"}`` records.
        max_admissible: the cap; None offers every distinct action.
        state_key: the state's anchor, which seeds the sample.
    """
    by_objects: tuple[list[str], list[str], list[str]] = ([], [], [])
    seen: set[Any] = set()
    for record in sorted(valid, key=lambda r: str(r.get("action", ""))):
        action = str(record.get("action", ""))
        objects = tuple(record.get("obj_ids") or ())
        key = (record.get("template_id"), objects)
        if not action or action in FORBIDDEN_COMMANDS or key in seen or action in seen:
            continue
        seen.update((key, action))
        by_objects[min(len(objects), 2)].append(action)
    none, one, two = by_objects
    total = len(none) + len(one) + len(two)
    if max_admissible is None or total <= max_admissible:
        return none + one + two, total
    rng = random.Random(state_key)
    if len(none) + len(one) <= max_admissible:
        picked = set(rng.sample(range(len(two)), max_admissible - len(none) - len(one)))
        return none + one + [a for i, a in enumerate(two) if i in picked], total
    room = max(0, max_admissible - len(none))
    picked = set(rng.sample(range(len(one)), room))
    return none + [a for i, a in enumerate(one) if i in picked], total
