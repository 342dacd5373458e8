"""The experts: scripted players that return the next command toward success.

`expert_action` is a planner over the true state; `search_action` only uses what the agent has
been shown, so its demonstrations can be imitated by a policy that sees the same text.

The planner:

It knows where every object is (it reads the `World`, not the transcript), so it never
searches: it walks to a target object, opens what is closed, takes it, treats it at the
sinkbasin/microwave/fridge if the task asks, and carries it to the goal receptacle (or the
lit desklamp). It can take over from any state, including after a random agent's moves: a
stray object in hand is put down first. Every command it returns is admissible.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Collection

import numpy as np

from creditgym.envs.household.world import LAMP_STANDS, MIDDLE, NOBODY, TOOLS, World

__all__ = ["EXPERTS", "expert_action", "plan_length", "search_action", "search_cost_to_go"]

#: More expert commands than any household task needs; a plan this long means a planner bug.
_MAX_PLAN = 10_000


def expert_action(world: World) -> str:
    """The next command toward success from the world's current state (``"look"`` once won)."""
    if world.won:
        return "look"
    held = world.held
    if held != NOBODY and not world.is_target[held]:
        return _put_down(world)
    if held == NOBODY:
        return _fetch(world)
    if world.goal.in_light:
        lamp_at = world.obj_loc[world.lamp]
        return _go_or(world, lamp_at, f"use {world.obj_names[world.lamp]}")
    if not world.ready(held):
        tool = next(
            r
            for r, kind in enumerate(world.rec_kinds)
            if kind in TOOLS and TOOLS[kind][1] == world.goal.condition
        )
        verb = TOOLS[world.rec_kinds[tool]][0]
        return _go_or(world, tool, f"{verb} {world.obj_names[held]} with {world.rec_names[tool]}")
    dest = _destination(world)
    return _open_or(world, dest, f"move {world.obj_names[held]} to {world.rec_names[dest]}")


def search_action(world: World) -> str:
    """The next command of an expert that knows only what the agent has seen: where the task's
    objects (and the desklamp) are is found by sweeping the receptacles in the order the room
    lists them, opening what is closed, and taking a needed object where it shows up.

    Memoryless: the sweep goes on from wherever the agent stands, so a policy that sees only
    the current observation and the receptacle names can imitate it exactly. The receptacles
    of the goal's type are skipped (the task's objects never start there). Once it holds a
    needed object, it acts like the planner (tools and goal receptacles are named in the room
    list), except that it looks for the desklamp by the same sweep.
    """
    if world.won:
        return "look"
    held, here = world.held, world.loc
    if held != NOBODY and not world.is_target[held]:
        return _put_down(world)
    if held == NOBODY:
        if here != MIDDLE and not world.is_open[here]:
            return f"open {world.rec_names[here]}"
        dest = None if world.goal.in_light else _destination(world)
        for obj in world.visible(here) if here != MIDDLE else ():
            if world.is_target[obj] and (here != dest or not world.ready(obj)):
                return f"take {world.obj_names[obj]} from {world.rec_names[here]}"
        return _sweep(world)
    if world.goal.in_light and world.obj_loc[world.lamp] != here:
        return _sweep(world)
    return expert_action(world)


def _sweep(world: World) -> str:
    """Go to the next receptacle after the current one in the room's order (wrapping), skipping
    those of the goal's type."""
    count = len(world.rec_names)
    start = world.loc + 1  # MIDDLE is -1: the sweep starts at the first receptacle
    for step in range(count):
        rec = (start + step) % count
        if rec != world.loc and world.rec_kinds[rec] != world.goal.receptacle_type:
            return f"go to {world.rec_names[rec]}"
    raise RuntimeError("the room has no receptacle to search")


#: The household's experts by name (`HouseholdEnv(expert=...)`).
EXPERTS = {"planner": expert_action, "search": search_action}


def plan_length(
    world: World, memo: dict[tuple, int] | None = None, expert: Callable[[World], str] | None = None
) -> int:
    """How many commands the expert (the planner, or `expert`: any memoryless one, e.g.
    `search_action`) takes from `world`'s state to win (0 once won), ignoring any step budget:
    the expert is played out on a copy, so this is exactly its count.

    `memo` (anchor -> plan length, one per expert) carries results between calls on states of
    one task: every state the played-out plan passes through is stored, so asking along the
    expert's own path costs a dict look-up.
    """
    expert = expert or expert_action
    memo = {} if memo is None else memo
    sim = world.copy()
    path: list[tuple] = []
    rest = 0
    while not sim.won:
        anchor = sim.anchor()
        if anchor in memo:
            rest = memo[anchor]
            break
        if len(path) >= _MAX_PLAN:
            raise RuntimeError(f"the household expert did not win within {_MAX_PLAN} commands")
        path.append(anchor)
        sim.execute(sim.admissible()[1][expert(sim)])
    for steps, anchor in enumerate(reversed(path), start=rest + 1):
        memo[anchor] = steps
    return rest + len(path)


def search_cost_to_go(
    world: World,
    observed: Collection[int],
    memo: dict[tuple, int] | None = None,
    placements: int = 64,
) -> float:
    """The searching expert's expected steps to win given what the agent has seen: an
    information-state cost-to-go, where `plan_length` is the omniscient planner's.

    The objects the searcher still has to find (the task's objects, and the desklamp of a light
    task, that lie in receptacles whose contents the agent has not seen: not in `observed`) may
    be in any unobserved receptacle where such an object can be, each alike: a task object in
    any not of the goal's type, the desklamp on any lamp stand (`LAMP_STANDS`: never inside a
    closed receptacle, where it could not be used). The result is the mean of the searcher's
    played-out plan length over those placements (all of them, or `placements` drawn with a
    seed of the state when there are more). Where nothing is hidden, it is the searcher's plan
    length. `memo` is `plan_length`'s, for the searcher.
    """
    if world.won:
        return 0.0
    wanted = [*world.targets, *([world.lamp] if world.goal.in_light else [])]
    hidden = [o for o in wanted if world.obj_loc[o] != NOBODY and world.obj_loc[o] not in observed]
    unobserved = [
        r
        for r in range(len(world.rec_names))
        if r not in observed and world.rec_kinds[r] != world.goal.receptacle_type
    ]
    candidates = [
        [r for r in unobserved if obj != world.lamp or world.rec_kinds[r] in LAMP_STANDS]
        for obj in hidden
    ]
    if not hidden or not all(candidates):
        return float(plan_length(world, memo, search_action))
    if math.prod(map(len, candidates)) <= placements:
        chosen = list(itertools.product(*candidates))
    else:  # a sample, the same for the same state
        rng = np.random.default_rng(zlib.crc32(repr(world.anchor()).encode()))
        chosen = [tuple(rng.choice(where) for where in candidates) for _ in range(placements)]
    lengths = []
    for placement in chosen:
        sim = world.copy()
        for obj, rec in zip(hidden, placement):
            sim.place(obj, int(rec))
        lengths.append(plan_length(sim, memo, search_action))
    return float(np.mean(lengths))


def _destination(world: World) -> int:
    """The goal receptacle holding the most ready goal objects (the lowest index on ties)."""
    best, best_count = world.goal_receptacles[0], -1
    for rec in world.goal_receptacles:
        count = sum(1 for obj in world.targets if world.obj_loc[obj] == rec and world.ready(obj))
        if count > best_count:
            best, best_count = rec, count
    return best


def _fetch(world: World) -> str:
    """Walk to the most useful goal object not yet in place, open its receptacle, take it."""
    dest = None if world.goal.in_light else _destination(world)
    candidates = [
        obj for obj in world.targets if world.obj_loc[obj] != dest or not world.ready(obj)
    ]
    # Prefer objects already in the goal's condition, then ones where the agent stands.
    obj = min(candidates, key=lambda o: (not world.ready(o), world.obj_loc[o] != world.loc, o))
    rec = world.obj_loc[obj]
    return _open_or(world, rec, f"take {world.obj_names[obj]} from {world.rec_names[rec]}")


def _put_down(world: World) -> str:
    """Free the hands: put the held object into the receptacle the agent stands at."""
    return _open_or(
        world, world.loc, f"move {world.obj_names[world.held]} to {world.rec_names[world.loc]}"
    )


def _go_or(world: World, rec: int, command: str) -> str:
    return command if world.loc == rec else f"go to {world.rec_names[rec]}"


def _open_or(world: World, rec: int, command: str) -> str:
    """Go to `rec`, open it if it is closed, then `command`."""
    if world.loc != rec:
        return f"go to {world.rec_names[rec]}"
    if not world.is_open[rec]:
        return f"open {world.rec_names[rec]}"
    return command
