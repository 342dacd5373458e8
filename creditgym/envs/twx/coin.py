"""Coin's omniscient cost-to-go: the fewest commands from the true state to taking the coin.

TextWorldExpress's gold path for coin is a search (it does not know where the coin lies), so it
cannot say how far the coin is. The engine's own state can: every room's JSON names its
neighbours (``locationNorth`` ...) and the doors between them (``doorNorth`` ..., open or not),
and lists what the room holds. `coin_steps_to_go` runs a shortest-path search over that map:
a move costs one command, a closed door one more (``open door to <direction>``), a closed
container around the coin one more each, and taking the coin one. Like the household planner's,
this label knows where the coin is, which the agent does not (see "Credit fidelity" in the
README on what an omniscient label can and cannot say).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Mapping
from typing import Any

from creditgym.envs.twx.env import TextWorldExpressEnv

__all__ = ["CoinEnv", "coin_steps_to_go"]

DIRECTIONS = ("North", "South", "East", "West")


def _opens_to_coin(contents: Mapping[str, Any]) -> int | None:
    """Closed containers to open before the coin among `contents` can be taken; None if absent."""
    for name, thing in contents.items():
        if name == "coin":
            return 0
        inner = _opens_to_coin(thing.get("contents") or {})
        if inner is not None:
            closed = bool(thing.get("isOpenable")) and not thing.get("isOpen")
            return inner + int(closed)
    return None


def coin_steps_to_go(rooms: Mapping[str, Mapping[str, Any]], agent_room: str) -> int | None:
    """Fewest commands from `agent_room` to holding the coin, over `rooms` (the engine's room
    JSON by name); None where no room holds the coin (it is taken, or unreachable)."""
    target = {name: _opens_to_coin(room.get("contents") or {}) for name, room in rooms.items()}
    best = {agent_room: 0}
    frontier = [(0, agent_room)]
    while frontier:
        cost, here = heapq.heappop(frontier)
        if cost > best.get(here, cost):
            continue
        if target.get(here) is not None:
            return cost + target[here] + 1  # open what encloses it, then take it
        room = rooms.get(here) or {}
        for direction in DIRECTIONS:
            there = room.get(f"location{direction}")
            if there is None:
                continue
            door = room.get(f"door{direction}")
            step = 1 + int(door is not None and not door.get("isOpen"))
            if cost + step < best.get(there, cost + step + 1):
                best[there] = cost + step
                heapq.heappush(frontier, (cost + step, there))
    return None


class CoinEnv(TextWorldExpressEnv):
    """``creditgym/TWX-Coin-v0``: TextWorldExpress's coin game with the oracle's
    `steps_to_go()` (so `credit-report` can label its turns; see the module docstring)."""

    def steps_to_go(self) -> int | None:
        """Commands left to win from the current true state (0 once won)."""
        if self._game_seed is None or self._engine is None:
            return None
        if self._won:
            return 0
        game = self._engine.server.game()
        rooms = {}
        for room in game.locations():
            state = json.loads(str(room.toJSON()))
            rooms[state["name"]] = state
        return coin_steps_to_go(rooms, str(game.agentLocation().name()))
