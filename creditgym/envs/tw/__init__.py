"""TextWorld text adventures (needs ``pip install creditgym[textworld]``).

Named ``tw`` so it never shadows the ``textworld`` library. Importing this package registers,
without importing TextWorld itself:

* ``creditgym/TextWorld-v0``: any TextWorld game; ``make(..., game_file="game.z8")``.
* ``creditgym/TextWorldCoin-v0``: coin collector, level 5: find the coin five rooms away
  (walkthrough 5 commands), 30 steps.
* ``creditgym/TextWorldTreasure-v0``: treasure hunter, level 11 ("medium": ten rooms, closed
  doors and containers, objects to avoid), 40 steps.
* ``creditgym/TextWorldCooking-v0``: a First TextWorld Problems cooking game: read the
  cookbook in a six-room house, fetch one ingredient (opening containers), cut and cook it,
  prepare and eat the meal (walkthrough about 11 commands), 60 steps.

The presets generate the game of each seed on first use (about 1-3 s) and cache it; pass
``settings={...}`` to `creditgym.make` for other difficulty levels and ``num_games=N`` to
reuse a fixed pool of games.
"""

from creditgym.envs.registry import register

_ENTRY_POINT = "creditgym.envs.tw.env:TextWorldEnv"

register(
    "creditgym/TextWorld-v0",
    _ENTRY_POINT,
    description=(
        "Any TextWorld game file (make(..., game_file='game.z8')); needs creditgym[textworld]."
    ),
    requires=("game_file",),
)
register(
    "creditgym/TextWorldCoin-v0",
    _ENTRY_POINT,
    description="TextWorld coin collector (level 5, generated per seed): find the coin.",
    challenge="tw-coin_collector",
    settings={"level": 5},
    max_steps=30,
)
register(
    "creditgym/TextWorldTreasure-v0",
    _ENTRY_POINT,
    description="TextWorld treasure hunter (level 11, generated per seed): fetch the named object.",
    challenge="tw-treasure_hunter",
    settings={"level": 11},
    max_steps=40,
)
register(
    "creditgym/TextWorldCooking-v0",
    _ENTRY_POINT,
    description="TextWorld cooking (FTWP-style, generated per seed): cook and eat a recipe.",
    challenge="tw-cooking",
    settings={"recipe": 1, "take": 1, "go": 6, "open": True, "cook": True, "cut": True},
    max_steps=60,
)
