"""MiniHack (NetHack) tasks as text environments (needs ``pip install creditgym[minihack]``).

Named ``nethack`` so it never shadows the ``minihack`` library. Importing this package
registers, without importing MiniHack or NLE:

* ``creditgym/MiniHack-v0``: any MiniHack navigation task; ``make(..., task="MiniHack-...")``.
* ``creditgym/MiniHackRoom-v0``: ``MiniHack-Room-Random-5x5-v0``, walk to the stairs (100 steps).
* ``creditgym/MiniHackKeyRoom-v0``: ``MiniHack-KeyRoom-S5-v0``, fetch the key, unlock the
  door, reach the stairs behind it (200 steps).
* ``creditgym/MiniHackMazeWalk-v0``: ``MiniHack-MazeWalk-9x9-v0``, a dark maze (200 steps).
* ``creditgym/MiniHackRiver-v0``: ``MiniHack-River-Narrow-v0``, push boulders into a two-wide
  river to cross it (350 steps).
"""

from creditgym.envs.registry import register

_ENTRY_POINT = "creditgym.envs.nethack.env:MiniHackTextEnv"

register(
    "creditgym/MiniHack-v0",
    _ENTRY_POINT,
    description=(
        "Any MiniHack navigation task as text (make(..., task='MiniHack-...')); "
        "needs creditgym[minihack]."
    ),
)
register(
    "creditgym/MiniHackRoom-v0",
    _ENTRY_POINT,
    description="MiniHack Room 5x5 as text: walk to the staircase down.",
    task="MiniHack-Room-Random-5x5-v0",
)
register(
    "creditgym/MiniHackKeyRoom-v0",
    _ENTRY_POINT,
    description="MiniHack KeyRoom S5 as text: pick up the key, unlock the door, reach the stairs.",
    task="MiniHack-KeyRoom-S5-v0",
)
register(
    "creditgym/MiniHackMazeWalk-v0",
    _ENTRY_POINT,
    description="MiniHack MazeWalk 9x9 as text: find the stairs in a dark maze.",
    task="MiniHack-MazeWalk-9x9-v0",
)
register(
    "creditgym/MiniHackRiver-v0",
    _ENTRY_POINT,
    description="MiniHack River Narrow as text: push boulders into the river to cross it.",
    task="MiniHack-River-Narrow-v0",
)
