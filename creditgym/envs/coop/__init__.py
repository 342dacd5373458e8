"""Cooperative household (PettingZoo `ParallelEnv`): registers ``creditgym/CoopHousehold*``.

PettingZoo is imported only when the env is made (``pip install creditgym[multiagent]``). They
live in creditgym's registry only (``multi_agent=True``): `creditgym.make` builds them, and
`gymnasium.make` on their ids says to use `creditgym.make`.
"""

from creditgym.envs.registry import register

_ENTRY_POINT = "creditgym.envs.coop.env:CoopHouseholdEnv"

register(
    "creditgym/CoopHousehold-v0",
    _ENTRY_POINT,
    description="multi-agent (PettingZoo): 2 agents put 2 objects on one receptacle, team reward "
    "[multiagent]",
    multi_agent=True,
)
register(
    "creditgym/CoopHousehold3-v0",
    _ENTRY_POINT,
    description="multi-agent (PettingZoo): 3 agents, 3 objects, 7 receptacles, 30 steps "
    "[multiagent]",
    multi_agent=True,
    agents=3,
    receptacles=7,
    max_steps=30,
)
register(
    "creditgym/MPESpread-v0",
    "creditgym.envs.coop.spread:TextSpreadEnv",
    description="multi-agent (PettingZoo): MPE cooperative navigation as text, 3 agents, "
    "episodic team reward [multiagent]",
    multi_agent=True,
)
