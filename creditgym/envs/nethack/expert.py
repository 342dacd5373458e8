"""The MiniHack expert: breadth-first search over the map the agent has seen.

One solver for every preset, from the agent's own observations (the map NLE shows, with a
memory of terrain under objects and of moves that failed), trying in order:

1. walk to a known staircase down;
2. KeyRoom: with the key, stand orthogonally next to the closed door and ``apply key``;
   without it, walk to the key and ``pick up``;
3. River: when water stands between the agent and the stairs (or hides unexplored land),
   push a boulder into it: a breadth-first search over (agent, boulder) positions finds the
   shortest push plan into a reachable water cell, continuing an existing bridge first;
4. explore: walk to the nearest known cell next to unexplored ones (NetHack shows every
   cell next to the agent, so unexplored cells next to a visited one are solid rock).

Movement follows NetHack: no diagonal moves into or out of doors, none squeezing between two
walls or boulders, boulders move one cell ahead of the agent and fill water they fall into
(90% of the time; a boulder that sinks just means another push).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from creditgym.envs.nethack import view
from creditgym.envs.nethack.commands import DIRECTIONS

__all__ = ["Expert"]

Cell = tuple[int, int]
_MOVES = tuple((f"move {name}", delta) for name, _, delta, _ in DIRECTIONS)
_CARDINAL = tuple(delta for _, _, delta, _ in DIRECTIONS[:4])
_MAX_PUSH_STATES = 300_000


class Expert:
    """Scripted MiniHack solver; call `reset` at episode start, `observe` after every step."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._terrain: np.ndarray | None = None  # (21, 79) remembered cell kinds
        self._key_at: Cell | None = None
        self._stairs: set[Cell] = set()
        self._water_seen: set[Cell] = set()
        self._bad_moves: set[tuple[Cell, Cell]] = set()  # (from, delta) that did not move us
        self._bad_pushes: set[tuple[Cell, Cell]] = set()  # (boulder, delta) that did not move it
        self._plan: list[tuple[str, Cell]] = []  # (command, agent cell it starts from)
        self._frame: view.Frame | None = None

    # -- Memory --------------------------------------------------------------------------------
    def observe(self, frame: view.Frame, command: str | None = None) -> None:
        """Update the map memory with `frame`, the result of `command` (None after reset)."""
        previous, self._frame = self._frame, frame
        tables = view.glyph_tables()
        glyphs = frame.glyphs.astype(np.int64)
        kinds = tables.kind[glyphs]
        shows_terrain = tables.terrain[glyphs]
        memory = (
            np.full(kinds.shape, view.UNKNOWN, np.int8) if self._terrain is None else self._terrain
        )
        # Keep what we learned (rock found by standing next to it) where NetHack shows blank;
        # under an object, a monster or the agent, assume floor unless we know better.
        under_thing = np.where(memory == view.UNKNOWN, view.FLOOR, memory)
        shown = np.where(kinds == view.UNKNOWN, memory, kinds)
        self._terrain = np.where(shows_terrain, shown, under_thing).astype(np.int8)
        self._terrain[frame.y, frame.x] = max(int(self._terrain[frame.y, frame.x]), view.FLOOR)
        # NetHack always shows the cells next to the agent: still blank means solid rock.
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                if self._kind((frame.x + dx, frame.y + dy)) == view.UNKNOWN:
                    self._terrain[frame.y + dy, frame.x + dx] = view.WALL
        self._boulders = {(int(x), int(y)) for y, x in zip(*np.nonzero(tables.boulder[glyphs]))}
        self._stairs |= {(int(x), int(y)) for y, x in zip(*np.nonzero(tables.stairs_down[glyphs]))}
        self._water_seen |= {
            (int(x), int(y)) for y, x in zip(*np.nonzero(kinds == view.WATER_CELL))
        }
        keys = [(int(x), int(y)) for y, x in zip(*np.nonzero(tables.key[glyphs]))]
        if keys:
            self._key_at = keys[0]
        elif frame.has("key"):
            self._key_at = None
        if (
            previous is not None
            and command in dict(_MOVES)
            and (frame.x, frame.y) == (previous.x, previous.y)
        ):
            delta = dict(_MOVES)[command]
            here = (previous.x, previous.y)
            ahead = (here[0] + delta[0], here[1] + delta[1])
            if ahead in self._boulders:
                self._bad_pushes.add((ahead, delta))
            else:
                self._bad_moves.add((here, delta))

    # -- Decisions -----------------------------------------------------------------------------
    def act(self) -> str:
        """The next text command."""
        frame = self._frame
        if frame is None:
            raise RuntimeError("Expert.act() before observe(): call observe(frame) after reset")
        agent = (frame.x, frame.y)
        if self._plan and self._plan[0][1] == agent:
            return self._plan.pop(0)[0]
        self._plan = []

        path = self._walk(agent, self._stairs)
        if path:
            return path[0]
        doors = self._cells(view.CLOSED_DOOR)
        if doors:
            if frame.has("key"):
                if any(self._next_to(agent, door) for door in doors):
                    return "apply key"
                beside = {c for door in doors for c in self._around(door) if self._walkable(c)}
                path = self._walk(agent, beside)
                if path:
                    return path[0]
            elif self._key_at is not None:
                if self._key_at == agent:
                    return "pick up"
                path = self._walk(agent, {self._key_at})
                if path:
                    return path[0]
        plan = self._bridge(agent)
        if plan:
            self._plan = plan[1:]
            return plan[0][0]
        path = self._walk(agent, self._frontier())
        return path[0] if path else "move north"

    def walk_length(self) -> int | None:
        """Moves of the expert's shortest walk to a known staircase down over the map it has
        seen (0 when standing on it); None while no staircase is known or none is reachable
        by walking (a key, a door or a bridge comes first): its plan is not known yet."""
        frame = self._frame
        if frame is None:
            return None
        agent = (frame.x, frame.y)
        if agent in self._stairs:
            return 0
        path = self._walk(agent, self._stairs)
        return len(path) if path else None

    # -- The map -------------------------------------------------------------------------------
    def _kind(self, cell: Cell) -> int:
        x, y = cell
        if not (0 <= y < self._terrain.shape[0] and 0 <= x < self._terrain.shape[1]):
            return view.WALL
        return int(self._terrain[y, x])

    def _cells(self, kind: int) -> set[Cell]:
        return {(int(x), int(y)) for y, x in zip(*np.nonzero(self._terrain == kind))}

    def _walkable(self, cell: Cell) -> bool:
        return self._kind(cell) in (view.FLOOR, view.DOOR) and cell not in self._boulders

    def _around(self, cell: Cell) -> list[Cell]:
        return [(cell[0] + dx, cell[1] + dy) for dx, dy in _CARDINAL]

    @staticmethod
    def _next_to(a: Cell, b: Cell) -> bool:
        return abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1

    def _diagonal_ok(self, here: Cell, ahead: Cell, boulders: set[Cell]) -> bool:
        """NetHack: no diagonal step into/out of a door or between two walls/boulders."""
        if self._kind(here) == view.DOOR or self._kind(ahead) == view.DOOR:
            return False
        side_a, side_b = (ahead[0], here[1]), (here[0], ahead[1])

        def blocked(cell: Cell) -> bool:
            return self._kind(cell) in (view.WALL, view.UNKNOWN) or cell in boulders

        return not (blocked(side_a) and blocked(side_b))

    def _step_ok(self, here: Cell, delta: Cell, boulders: set[Cell]) -> bool:
        ahead = (here[0] + delta[0], here[1] + delta[1])
        if (here, delta) in self._bad_moves:
            return False
        if self._kind(ahead) not in (view.FLOOR, view.DOOR) or ahead in boulders:
            return False
        return delta in _CARDINAL or self._diagonal_ok(here, ahead, boulders)

    def _walk(self, start: Cell, goals: set[Cell]) -> list[str]:
        """Commands of a shortest walk (no pushing) from `start` to any of `goals`."""
        if not goals or start in goals:
            return []
        parents: dict[Cell, tuple[Cell, str] | None] = {start: None}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            for command, delta in _MOVES:
                ahead = (here[0] + delta[0], here[1] + delta[1])
                if ahead in parents or not self._step_ok(here, delta, self._boulders):
                    continue
                parents[ahead] = (here, command)
                if ahead in goals:
                    path = []
                    while parents[ahead] is not None:
                        ahead, command = parents[ahead]
                        path.append(command)
                    return path[::-1]
                queue.append(ahead)
        return []

    def _reachable(self, start: Cell) -> set[Cell]:
        seen, queue = {start}, deque([start])
        while queue:
            here = queue.popleft()
            for _, delta in _MOVES:
                ahead = (here[0] + delta[0], here[1] + delta[1])
                if ahead not in seen and self._step_ok(here, delta, self._boulders):
                    seen.add(ahead)
                    queue.append(ahead)
        return seen

    def _frontier(self) -> set[Cell]:
        """Known walkable cells next to unexplored ones (8-neighbourhood)."""
        unknown = np.pad(self._terrain == view.UNKNOWN, 1)
        near = np.zeros_like(unknown)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                near |= np.roll(np.roll(unknown, dy, axis=0), dx, axis=1)
        walkable = np.isin(self._terrain, (view.FLOOR, view.DOOR)) & near[1:-1, 1:-1]
        return {(int(x), int(y)) for y, x in zip(*np.nonzero(walkable))} - self._boulders

    # -- River: push boulders into the water ---------------------------------------------------
    def _bridge(self, agent: Cell) -> list[tuple[str, Cell]]:
        water = self._cells(view.WATER_CELL)
        if not water or not self._boulders:
            return []
        hides_land = any(self._kind(c) == view.UNKNOWN for w in water for c in self._around(w))
        if not (self._stairs or hides_land):
            return []
        region = self._reachable(agent)
        filled = self._water_seen - water
        # Step onto a new bridge cell first: it shows what lies beyond it.
        lookout = {c for c in filled & region if c in self._frontier()}
        path = self._walk(agent, lookout)
        if path:
            return [(path[0], agent)]
        targets = {w for w in water if any(c in region for c in self._around(w))}
        # Continue a bridge: water reached only over filled cells, not from the shore.
        continuing = {
            w for w in targets if all(c in filled for c in self._around(w) if c in region)
        }
        for goal in (continuing, targets):
            plan = self._push_plan(agent, goal) if goal else []
            if plan:
                return plan
        return []

    def _push_plan(self, agent: Cell, targets: set[Cell]) -> list[tuple[str, Cell]]:
        """Shortest (command, from-cell) sequence that pushes some boulder into `targets`."""
        start_states = [(agent, boulder) for boulder in sorted(self._boulders)]
        parents: dict[tuple[Cell, Cell], tuple[tuple[Cell, Cell], str] | None] = {
            s: None for s in start_states
        }
        queue = deque(start_states)
        while queue and len(parents) < _MAX_PUSH_STATES:
            state = queue.popleft()
            here, boulder = state
            others = self._boulders - {boulder}
            for command, delta in _MOVES:
                ahead = (here[0] + delta[0], here[1] + delta[1])
                if ahead == boulder:
                    landing = (boulder[0] + delta[0], boulder[1] + delta[1])
                    if not self._push_ok(here, boulder, landing, delta, others, targets):
                        continue
                    if landing in targets:
                        path = [(command, here)]
                        while parents[state] is not None:
                            state, step = parents[state]
                            path.append((step, state[0]))
                        return path[::-1]
                    successor = (ahead, landing)
                elif self._step_ok(here, delta, others | {boulder}):
                    successor = (ahead, boulder)
                else:
                    continue
                if successor not in parents:
                    parents[successor] = (state, command)
                    queue.append(successor)
        return []

    def _push_ok(
        self,
        here: Cell,
        boulder: Cell,
        landing: Cell,
        delta: Cell,
        others: set[Cell],
        targets: set[Cell],
    ) -> bool:
        if (boulder, delta) in self._bad_pushes or (here, delta) in self._bad_moves:
            return False
        if landing in others or not (landing in targets or self._kind(landing) == view.FLOOR):
            return False
        if delta in _CARDINAL:
            return True
        return self._diagonal_ok(here, boulder, others) and self._diagonal_ok(
            boulder, landing, others
        )
