"""Starting TextWorldExpress's engine, its games and parameters, and its true state.

The engine is the ``textworld_express`` package's `TextWorldExpressEnv`: a py4j client of the
Scala engine in the jar it ships, in its own JVM (about 0.4 s to start). Engines are pooled
per process (`creditgym.envs.java_engines`). Steps go straight to the engine's JSON step
(``stepJSON``): the package's own `step` also asks for the task description and keeps a
history on every step, which the env does not need.

The engine draws some gold paths (coin's walk through the rooms) with a random generator it
does not seed, so the same game can get another gold path on every generation. The first one
drawn for a game is cached on disk and reused, which keeps the expert deterministic.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from creditgym.cache import cache_root
from creditgym.envs import java_engines
from creditgym.envs.optional import require, require_java

__all__ = [
    "ENGINE_KIND",
    "GAMES",
    "SPLITS",
    "cached_gold_path",
    "game_params",
    "start_engine",
    "state_anchor",
]

ENGINE_KIND = "textworld_express"
#: The engine's games creditgym plays, with the parameters each accepts.
GAMES: dict[str, tuple[str, ...]] = {
    "twc": ("numLocations", "numItemsToPutAway", "includeDoors", "limitInventorySize"),
    "cookingworld": (
        "numLocations",
        "numIngredients",
        "numDistractorItems",
        "includeDoors",
        "limitInventorySize",
    ),
    "coin": ("numLocations", "numDistractorItems", "includeDoors", "limitInventorySize"),
}
#: creditgym's split names and the engine's seed fold of each.
SPLITS = {"train": "train", "dev": "dev", "test": "test"}


def start_engine() -> Any:
    """A TextWorldExpress engine from the pool, or a new one (needs Java)."""
    package = require("textworld_express", "twx")
    require_java("TextWorldExpress", "twx")
    return java_engines.acquire(
        ENGINE_KIND, lambda: package.TextWorldExpressEnv(envStepLimit=10**9)
    )


def game_params(game: str, params: Mapping[str, int] | None) -> str:
    """The engine's parameter string (``"numLocations=1,includeDoors=0"``) for `params`;
    unknown games, unknown parameters and non-integer values raise `ValueError`."""
    if game not in GAMES:
        raise ValueError(f"unknown TextWorldExpress game {game!r}; expected one of {list(GAMES)}")
    params = dict(params or {})
    unknown = sorted(set(params) - set(GAMES[game]))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for TextWorldExpress game {game!r}; it takes "
            f"{list(GAMES[game])}"
        )
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{game} parameter {name}={value!r}; expected a non-negative int")
    return ",".join(f"{name}={params[name]}" for name in GAMES[game] if name in params)


def state_anchor(engine: Any, seed: int) -> str:
    """A digest of the engine's whole game state: every room with all it contains (as the
    engine's own ``toJSON``), the inventory, where the agent is, and the game's seed."""
    game = engine.server.game()
    parts = [f"seed={seed}", str(game.agentLocation().name()), str(game.agentInventory().toJSON())]
    parts += [str(room.toJSON()) for room in game.locations()]
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).hexdigest()


def cached_gold_path(
    engine: Any, game: str, params: str, seed: int, cache_dir: str | os.PathLike | None = None
) -> list[str]:
    """The gold path of the game the engine just generated (game `game`, parameters `params`,
    seed `seed`): the first one ever drawn for that game, from the disk cache."""
    version = getattr(__import__("textworld_express"), "__version__", "unknown")
    name = f"{game}-{params or 'default'}-{seed}".replace(",", "+").replace("=", "")
    path = cache_root(cache_dir) / "textworld_express" / str(version) / "gold" / f"{name}.json"
    try:
        gold = json.loads(path.read_text())
    except (OSError, ValueError):
        gold = None
    if isinstance(gold, list) and gold and all(isinstance(a, str) for a in gold):
        return gold
    gold = [str(action) for action in engine.server.getGoldActionSequence()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(json.dumps(gold))
        os.replace(scratch, path)
    except OSError:  # a read-only cache: this process keeps the path it drew
        pass
    return gold
