"""Offline generation of TextWorld games, one per seed, cached on disk.

TextWorld's own challenge generators (`textworld.challenges`: ``tw-coin_collector``,
``tw-treasure_hunter``, ``tw-cooking``) build a game from difficulty settings and a seed;
Inform 7 (bundled with TextWorld) compiles it to a ``.z8`` story file plus the ``.json`` that
TextWorld reads its state from. Generating one costs 0.5-3 s, so every game is written once to
``<cache>/textworld/<challenge>-<settings key>/seed<seed>.z8`` (cache: ``$CREDITGYM_CACHE`` or
``~/.cache/creditgym``) and reused. Files are written to a temporary folder and moved into
place, so concurrent processes generating the same game never see half a game.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from creditgym.cache import cache_root as creditgym_cache_root
from creditgym.envs.optional import require

__all__ = [
    "CHALLENGE_DEFAULTS",
    "cache_root",
    "challenge_settings",
    "game_json",
    "generate_game",
    "quest_facts",
]

#: Every setting each supported challenge takes, with TextWorld's defaults (``tw-make``'s).
#: ``tw-cooking``'s ``recipe_seed`` is not a setting: it is the game seed, so recipes vary.
CHALLENGE_DEFAULTS: dict[str, dict[str, Any]] = {
    "tw-coin_collector": {"level": 1},
    "tw-treasure_hunter": {"level": 1},
    "tw-cooking": {
        "recipe": 1,
        "take": 0,
        "go": 1,
        "open": False,
        "cook": False,
        "cut": False,
        "drop": False,
        "split": None,
    },
}


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Folder of generated games: ``<cache_dir>/textworld``, where `cache_dir` defaults to
    ``$CREDITGYM_CACHE`` or ``~/.cache/creditgym``."""
    return creditgym_cache_root(cache_dir) / "textworld"


def challenge_settings(challenge: str, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """`settings` completed with the challenge's defaults; unknown challenges or keys raise."""
    if challenge not in CHALLENGE_DEFAULTS:
        raise ValueError(
            f"unknown TextWorld challenge {challenge!r}; "
            f"expected one of {sorted(CHALLENGE_DEFAULTS)}. "
            "To play any other TextWorld game, pass game_file=<path to .z8> instead."
        )
    defaults = CHALLENGE_DEFAULTS[challenge]
    unknown = sorted(set(settings or {}) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown setting(s) {unknown} for {challenge!r}; it takes {sorted(defaults)} "
            f"(defaults {defaults})."
        )
    return {**defaults, **(settings or {})}


def _settings_key(challenge: str, settings: Mapping[str, Any], textworld_version: str) -> str:
    blob = json.dumps([challenge, sorted(settings.items()), textworld_version], default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def game_json(game_file: str | os.PathLike) -> Path:
    """The ``.json`` TextWorld writes next to a compiled game (same name, other suffix)."""
    return Path(game_file).with_suffix(".json")


def generate_game(
    challenge: str,
    settings: Mapping[str, Any] | None,
    seed: int,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Path of the ``.z8`` game for (`challenge`, `settings`, `seed`), generated on first use.

    Args:
        challenge: ``"tw-coin_collector"``, ``"tw-treasure_hunter"`` or ``"tw-cooking"``.
        settings: difficulty settings (see `CHALLENGE_DEFAULTS`); missing ones take defaults.
        seed: the game seed; the same seed and settings always give the same game.
        cache_dir: cache base folder (see `cache_root`).
    """
    textworld = require("textworld", "textworld")
    full = challenge_settings(challenge, settings)
    folder = (
        cache_root(cache_dir)
        / f"{challenge}-{_settings_key(challenge, full, textworld.__version__)}"
    )
    target = folder / f"seed{int(seed)}.z8"
    if target.is_file() and game_json(target).is_file():
        return target

    folder.mkdir(parents=True, exist_ok=True)
    settings_file = folder / "settings.json"
    if not settings_file.exists():
        settings_file.write_text(json.dumps({"challenge": challenge, "settings": full}, indent=1))
    import textworld.challenges
    from textworld.generator import compile_game

    scratch = Path(tempfile.mkdtemp(prefix=".generating-", dir=folder))
    try:
        options = textworld.GameOptions()
        options.seeds = int(seed)
        options.path = str(scratch / "game.z8")
        options.force_recompile = True
        _, make_game, _ = textworld.challenges.CHALLENGES[challenge]
        with warnings.catch_warnings():  # Jericho warns that it cannot track generated games' score
            warnings.simplefilter("ignore")
            game = make_game(settings={**full, "recipe_seed": int(seed)}, options=options)
            compiled = Path(compile_game(game, options))
        # The .json goes first: a .z8 in place means the game is complete.
        os.replace(game_json(compiled), game_json(target))
        os.replace(compiled, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def quest_facts(game_file: str | os.PathLike) -> frozenset[str]:
    """Facts the game's quests make true on the way to winning, as `text.fact_string`s.

    These are the added facts of every action in every quest's winning event (the walkthrough's
    effects: ``at(player, kitchen)``, ``open(fridge)``, ``in(red potato, inventory)``,
    ``sliced(red potato)``, ...); a step that makes one true for the first time is quest
    progress, reported as an event.
    """
    textworld = require("textworld", "textworld")
    from creditgym.envs.tw.text import fact_string

    game = textworld.Game.load(str(game_json(game_file)))
    names = {key: entity.name for key, entity in game.infos.items()}
    return frozenset(
        fact_string(fact, names)
        for quest in game.quests
        for event in quest.win_events
        for action in event.actions
        for fact in action.added
    )
