"""Subgoal events and symbolic state of an ALFWorld game, read from the engine's facts.

ALFWorld's goals (``alfworld.gen.goal_library``) are conjunctions over the task's object type,
receptacle type and lamp type: hold the object, make it clean / hot / cool, have it in a
receptacle of the goal's type, switch a lamp on. A `GoalTracker` watches the engine's facts for
those conjuncts on objects of the goal's types and reports each the first time it holds in an
episode, so ``events`` come from the engine's own state, never from the text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GoalTracker"]

#: The state change each task type asks of its object before it is placed.
_READY_PREDICATE = {
    "pick_clean_then_place_in_recep": "isclean",
    "pick_heat_then_place_in_recep": "ishot",
    "pick_cool_then_place_in_recep": "iscool",
}
_VERB = {"isclean": "cleaned", "ishot": "heated", "iscool": "cooled"}


@dataclass
class GoalTracker:
    """The goal of one game (types lower-cased as the engine spells them: ``appletype``)."""

    task_type: str
    object_type: str
    parent_type: str
    toggle_type: str
    reached: set[str] = field(default_factory=set)

    @classmethod
    def from_game(cls, game_file: Path) -> GoalTracker:
        """The goal named in the ``traj_data.json`` beside `game_file` (ALFWorld's layout)."""
        traj = json.loads((game_file.parent / "traj_data.json").read_text())
        params = traj.get("pddl_params") or {}

        def type_name(key: str) -> str:
            value = params.get(key) or ""
            return f"{value.lower()}type" if isinstance(value, str) and value else ""

        return cls(
            str(traj.get("task_type", "")),
            type_name("object_target"),
            type_name("parent_target"),
            type_name("toggle_target"),
        )

    def reset(self, facts: Iterable[Any]) -> None:
        """Start an episode: conjuncts that already hold are not news."""
        self.reached = set(self._conjuncts(_Facts(facts)))

    def update(self, facts: Iterable[Any]) -> list[str]:
        """Events for the goal conjuncts holding now for the first time this episode."""
        new = [c for c in self._conjuncts(_Facts(facts)) if c not in self.reached]
        self.reached.update(new)
        return new

    def symbolic_state(self, facts: Iterable[Any]) -> dict[str, float]:
        """Named numbers of the goal's progress (LaRe's latent reward code reads them)."""
        state = _Facts(facts)
        held = state.held()
        targets = state.of_type(self.object_type)
        ready = _READY_PREDICATE.get(self.task_type)
        placed = [
            o
            for o, r in state.pairs("inreceptacle")
            if o in targets and r in state.of_type(self.parent_type)
        ]
        lamps_on = [o for o in state.of_type(self.toggle_type) if state.holds("istoggled", o)]
        return {
            "holding": float(bool(held)),
            "holding_target": float(any(o in targets for o in held)),
            "target_ready": float(
                any(o in targets and (ready is None or state.holds(ready, o)) for o in held)
            ),
            "placed": float(len(placed)),
            "needed": float(0 if self.parent_type == "" else 2 if "two" in self.task_type else 1),
            "lamp_on": float(bool(lamps_on)),
            "subgoals_reached": float(len(self.reached)),
        }

    def _conjuncts(self, state: _Facts) -> list[str]:
        targets = state.of_type(self.object_type)
        done = [f"took {o}" for o in state.held() if o in targets]
        for predicate, verb in _VERB.items():
            done += [f"{verb} {o}" for o in targets if state.holds(predicate, o)]
        parents = state.of_type(self.parent_type)
        done += [
            f"placed {o} in {r}"
            for o, r in state.pairs("inreceptacle")
            if o in targets and r in parents
        ]
        done += [
            f"turned on {o}" for o in state.of_type(self.toggle_type) if state.holds("istoggled", o)
        ]
        return done


class _Facts:
    """The engine's facts indexed by predicate, with display names (``apple 1``)."""

    def __init__(self, facts: Iterable[Any]) -> None:
        self._by_predicate: dict[str, list[tuple[str, ...]]] = {}
        for fact in facts:
            args = tuple(arg.name.strip() for arg in fact.arguments)
            self._by_predicate.setdefault(fact.name, []).append(args)
        self._types = {args[0]: args[1] for args in self._by_predicate.get("objecttype", [])}
        self._types.update(
            {args[0]: args[1] for args in self._by_predicate.get("receptacletype", [])}
        )
        self._unary = {
            (name, args[0]) for name, rows in self._by_predicate.items() for args in rows if args
        }

    def of_type(self, type_name: str) -> set[str]:
        return {name for name, kind in self._types.items() if kind == type_name and type_name}

    def held(self) -> list[str]:
        return [args[1] for args in self._by_predicate.get("holds", []) if len(args) == 2]

    def holds(self, predicate: str, name: str) -> bool:
        return (predicate, name) in self._unary

    def pairs(self, predicate: str) -> list[tuple[str, str]]:
        return [(a[0], a[1]) for a in self._by_predicate.get(predicate, []) if len(a) == 2]
