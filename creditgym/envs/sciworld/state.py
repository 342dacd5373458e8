"""ScienceWorld's true state as an anchor, and its goal progress as subgoal events.

* `state_anchor`: a digest of the engine's object tree (`getObjectTree`: every object of the
  universe with its properties, temperatures, contents, device states and electrical
  connections, the agent and its inventory included), made canonical first: the engine's
  object ids (``uuid`` fields, the ``-<id>`` suffix of every name key) count objects created
  since the JVM started, so they differ between engines and reloads of the same state; they
  are dropped, and each object's contents are sorted.
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
_SUBGOAL_LINE = re.compile(r"^\s*\d+\t(true|false)\t\s*\S+\t(.+)$")


def canonical_tree(node: Any) -> Any:
    """The object tree without the engine's object ids, every list of contents sorted."""
    if isinstance(node, dict):
        canonical = {}
        for key, value in node.items():
            if key == "uuid":
                continue
            if key == "contents" and isinstance(value, dict):
                children = [canonical_tree(child) for child in value.values()]
                canonical[key] = sorted(children, key=lambda c: json.dumps(c, sort_keys=True))
            else:
                canonical[_ENGINE_ID.sub("", key)] = canonical_tree(value)
        return canonical
    if isinstance(node, list):
        return sorted((canonical_tree(item) for item in node), key=json.dumps)
    if isinstance(node, str):
        return _ENGINE_ID.sub("", node)
    return node


def state_anchor(task: str, tree: Any) -> str:
    """A hex digest of `task` and the canonical object tree: equal for equal engine states."""
    blob = json.dumps([task, canonical_tree(tree)], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def subgoals(progress: str) -> list[tuple[str, bool]]:
    """``[(description, done), ...]`` from the engine's goal-progress text, in its order."""
    found = []
    for line in progress.splitlines():
        match = _SUBGOAL_LINE.match(line)
        if match:
            found.append((match.group(2).strip(), match.group(1) == "true"))
    return found
