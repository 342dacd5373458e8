"""The ALFWorld-style household family: ``creditgym/Household-v0`` and its easier presets.

>>> import creditgym
>>> env = creditgym.make("creditgym/HouseholdEasy-v0")
>>> obs, info = env.reset(seed=0)
>>> obs, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
"""

from creditgym.envs.household.env import HouseholdEnv
from creditgym.envs.household.tasks import (
    SPLITS,
    TASK_TYPES,
    HouseholdTask,
    TaskConfig,
    generate_task,
)
from creditgym.envs.household.world import Goal, Layout
from creditgym.envs.registry import register

__all__ = [
    "PRESETS",
    "SPLITS",
    "TASK_TYPES",
    "Goal",
    "HouseholdEnv",
    "Layout",
    "HouseholdTask",
    "TaskConfig",
    "generate_task",
]

_ENTRY_POINT = "creditgym.envs.household.env:HouseholdEnv"

#: env id -> (description, constructor kwargs)
PRESETS = {
    "creditgym/Household-v0": (
        "ALFWorld-sized household (15-25 receptacles, all six task types, closed cabinets, "
        "50 steps)",
        {
            "receptacles": (15, 25),
            "distractors": (10, 20),
            "task_types": TASK_TYPES,
            "max_steps": 50,
            "closed": True,
        },
    ),
    "creditgym/HouseholdMedium-v0": (
        "small household with two-object and clean/heat/cool tasks (6-8 receptacles, 30 steps)",
        {
            "receptacles": (6, 8),
            "distractors": (2, 4),
            "task_types": (
                "pick_two_and_place",
                "pick_clean_then_place",
                "pick_heat_then_place",
                "pick_cool_then_place",
            ),
            "max_steps": 30,
            "closed": True,
        },
    ),
    "creditgym/HouseholdEasy-v0": (
        "tiny household, pick-and-place only, nothing closed (4 receptacles, 15 steps): "
        "learnable on a CPU",
        {
            "receptacles": 4,
            "distractors": (0, 1),
            "task_types": ("pick_and_place",),
            "max_steps": 15,
            "closed": False,
        },
    ),
}

for _env_id, (_description, _kwargs) in PRESETS.items():
    register(_env_id, _ENTRY_POINT, description=_description, **_kwargs)
