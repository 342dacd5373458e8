"""ScienceWorld's true state as an anchor, and its goal progress as subgoal events.

* `state_anchor`: a digest of the engine's object tree (`getObjectTree`: every object of the
  universe with its properties, temperatures, contents, device states and electrical
  connections, the agent and its inventory included), made canonical first: the engine's
  object ids (``uuid`` fields, the ``-<id>`` suffix of every name key) count objects created
  since the JVM started, so they differ between engines and reloads of the same state; they
  are dropped, and each object's contents are sorted. Temperatures are left out: the engine's
  heat transfer visits objects in an order that changes between loads, so the same commands
  leave temperatures that differ in the third decimal (no rounding is safe at a bin's edge).
  What temperature does to an object stays in: its state of matter, whether it burns, a
  device's setting. Other numbers are rounded to one decimal.
* `subgoals`: the engine's goal progress (`get_goal_progress`), one ``(description, done)``
  per sequential or unordered subgoal of the task.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

__all__ = ["canonical_tree", "state_anchor", "subgoals"]

_ENGINE_ID = re.compile(r"-\d+$")
#: Object-tree fields not in the anchor: the engine's object id, and temperatures (above).
_LEFT_OUT = frozenset({"uuid", "temperatureC"})
_SUBGOAL_LINE = re.compile(r"^\s*\d+\t(true|false)\t\s*\S+\t(.+)$")


def canonical_tree(node: Any) -> str:
    """The object tree as one canonical string: no engine object ids, every list of contents
    sorted, temperatures left out, other numbers rounded to one decimal (each node is written
    once: linear time)."""
    if isinstance(node, dict):
        fields = []
        for key, value in sorted(node.items()):
            if key in _LEFT_OUT:
                continue
            if key == "contents" and isinstance(value, dict):
                children = sorted(canonical_tree(child) for child in value.values())
                fields.append(f"contents:[{','.join(children)}]")
            else:
                fields.append(f"{_ENGINE_ID.sub('', key)}:{canonical_tree(value)}")
        return "{" + ",".join(fields) + "}"
    if isinstance(node, list):
        return "[" + ",".join(sorted(canonical_tree(item) for item in node)) + "]"
    if isinstance(node, str):
        return repr(_ENGINE_ID.sub("", node))
    if isinstance(node, float):
        return repr(round(node, 1))
    return json.dumps(node)


def state_anchor(task: str, tree: Any) -> str:
    """A hex digest of `task` and the canonical object tree: equal for equal engine states."""
    blob = f"{task}\n{canonical_tree(tree)}"
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def subgoals(progress: str) -> list[tuple[str, bool]]:
    """``[(description, done), ...]`` from the engine's goal-progress text, in its order."""
    found = []
    for line in progress.splitlines():
        match = _SUBGOAL_LINE.match(line)
        if match:
            found.append((match.group(2).strip(), match.group(1) == "true"))
    return found
