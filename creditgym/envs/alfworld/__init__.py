"""ALFWorld through its own TextWorld-PDDL engine (needs ``pip install creditgym[alfworld]``).

Importing this package registers, without importing ``alfworld`` itself:

* ``creditgym/ALFWorld-v0``: ALFWorld's official games (``alfworld-download``, found in
  ``$ALFWORLD_DATA`` or ``~/.cache/alfworld``), splits ``train``, ``valid_seen`` (140 games) and
  ``valid_unseen`` (134), 50 steps.
* ``creditgym/ALFWorldOffline-v0``: games generated offline in ALFWorld's format from the floor
  plans, PDDL domain and grammar the ``alfworld`` package ships; same splits, sizes and engine.
"""

from creditgym.envs.registry import register

_ENTRY_POINT = "creditgym.envs.alfworld.env:ALFWorldEnv"

register(
    "creditgym/ALFWorld-v0",
    _ENTRY_POINT,
    description=(
        "ALFWorld's official games through its own engine (needs creditgym[alfworld] and "
        "`alfworld-download`); splits train / valid_seen / valid_unseen."
    ),
)
register(
    "creditgym/ALFWorldOffline-v0",
    _ENTRY_POINT,
    description=(
        "ALFWorld's engine on games generated offline from its floor plans, domain and "
        "grammar (needs creditgym[alfworld]); no download."
    ),
    offline=True,
)
