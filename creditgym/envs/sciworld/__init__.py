"""ScienceWorld through its own engine (needs ``pip install creditgym[scienceworld]`` and Java).

Named ``sciworld`` so it never shadows the ``scienceworld`` library. Importing this package
registers, without importing ScienceWorld or starting Java:

* ``creditgym/ScienceWorld-v0``: the 30 ScienceWorld tasks (``task="all"``), or the ones named
  with ``task="boil"`` / ``task=["boil", "melt"]``; ``split="train" | "dev" | "test"`` picks
  the engine's variation fold. See `env.ScienceWorldEnv`.
"""

from creditgym.envs.registry import register

register(
    "creditgym/ScienceWorld-v0",
    "creditgym.envs.sciworld.env:ScienceWorldEnv",
    description=(
        "ScienceWorld's 30 science tasks through its own engine (task=..., split=train|dev|test);"
        " needs creditgym[scienceworld] and Java."
    ),
)
