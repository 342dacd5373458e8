"""TextWorldExpress through its own engine (needs ``pip install creditgym[twx]`` and Java).

Named ``twx`` so it never shadows the ``textworld_express`` library. Importing this package
registers, without importing TextWorldExpress or starting Java, three of its games with the
engine's default parameters (``params={...}`` changes them, ``split="train" | "dev" |
"test"`` picks the engine's seed fold; see `env.TextWorldExpressEnv`):

* ``creditgym/TWX-TWC-v0``: TextWorld Commonsense: put household objects where they belong.
* ``creditgym/TWX-CookingWorld-v0``: the First TextWorld Problems cooking games.
* ``creditgym/TWX-Coin-v0``: find the coin and take it (with an omniscient `steps_to_go()`,
  `coin.CoinEnv`, so `credit-report` labels its turns).
"""

from creditgym.envs.registry import register

_ENTRY_POINT = "creditgym.envs.twx.env:TextWorldExpressEnv"

register(
    "creditgym/TWX-TWC-v0",
    _ENTRY_POINT,
    description="TextWorld Commonsense (TextWorldExpress): put objects away; needs creditgym[twx].",
    game="twc",
)
register(
    "creditgym/TWX-CookingWorld-v0",
    _ENTRY_POINT,
    description="CookingWorld via TextWorldExpress: cook and eat a recipe; needs creditgym[twx].",
    game="cookingworld",
)
register(
    "creditgym/TWX-Coin-v0",
    "creditgym.envs.twx.coin:CoinEnv",
    description="Coin collector (TextWorldExpress): find and take the coin; needs creditgym[twx].",
    game="coin",
)
