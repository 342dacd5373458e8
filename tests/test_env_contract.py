"""The environment contract, once, over every registered id: the library's own checker
(Gymnasium's `check_env` or PettingZoo's `parallel_api_test`), creditgym's info keys and
determinism, a fuzz of bad actions (empty, 100k characters, control characters, unicode, wrong
types, whitespace/case variants of admissible actions) and steps after the end.

Ids that cannot be built with their defaults declare what they need (`register(requires=)`)
and are skipped by that declaration; ids whose optional extra is not installed, or whose
separately downloaded game data is missing (`MissingGameData`), are skipped.
"""

from __future__ import annotations

import pytest

import creditgym
from creditgym.envs import registry
from creditgym.envs.checks import check_parallel_env, check_text_env
from creditgym.envs.optional import MissingGameData

SLOW = ("creditgym/TextWorld", "creditgym/ScienceWorld", "creditgym/ALFWorld")  # shorter walks
#: Arguments that keep the slow ids quick: TextWorld presets generate a game per seed
#: (seconds each), so a pool of two; ScienceWorld loads a task per reset (about a second) and
#: lists thousands of valid actions per step, so one task with a short gold path and budget;
#: TextWorldExpress walks to the end of a short budget.
FAST_KWARGS = {
    "creditgym/TextWorld": {"num_games": 2},
    "creditgym/ScienceWorld": {"task": "find-non-living-thing", "max_steps": 6},
    "creditgym/TWX": {"max_steps": 20},  # every step hashes the whole game state
    "creditgym/ALFWorld": {"num_games": 2},  # a Fast Downward translation per new game
}


def _ids() -> list:
    params = []
    for env_id in creditgym.list_envs():
        needs = registry.required_kwargs(env_id)
        marks = [pytest.mark.skip(reason=f"needs {', '.join(needs)}")] if needs else []
        params.append(pytest.param(env_id, marks=marks, id=env_id))
    return params


def _make(env_id: str):
    kwargs = next((kw for prefix, kw in FAST_KWARGS.items() if env_id.startswith(prefix)), {})
    try:
        return creditgym.make(env_id, **kwargs)
    except ImportError as error:  # an optional extra (textworld, minihack, mpe2, ...) is missing
        if (error.name or "").startswith("creditgym"):
            raise  # our own module failing to import is a bug, never a skip
        pytest.skip(f"optional extra not installed: {error}")
    except MissingGameData as error:  # downloaded separately (ALFWorld's official games)
        pytest.skip(f"game data not downloaded: {error}")


@pytest.mark.parametrize("env_id", _ids())
def test_env_meets_the_contract(env_id):
    env = _make(env_id)
    try:
        if registry.is_multi_agent(env_id):
            check_parallel_env(env, num_cycles=30)
        else:
            check_text_env(env, steps=5 if env_id.startswith(SLOW) else 30)
    finally:
        env.close()


def test_only_ids_that_declare_required_arguments_are_skipped():
    skipped = [env_id for env_id in creditgym.list_envs() if registry.required_kwargs(env_id)]
    assert skipped == ["creditgym/TextWorld-v0"]


ODD_SEEDS = [
    -1,
    -(2**63),
    2**63,
    2**64,
    10**30,
    1.0,
    0.5,
    float("nan"),
    True,
    False,
    "3",
    b"3",
    [3],
]
ODD_OPTIONS = [["task_type"], [], "task_type", "", 3, ("a", "b"), b"x"]


@pytest.mark.parametrize(
    "env_id",
    [p for p in _ids() if p.values[0].startswith("creditgym/")],  # ours, not tests'
)
def test_odd_reset_arguments_are_refused_naming_the_argument(env_id):
    env = _make(env_id)
    try:
        for seed in ODD_SEEDS:
            with pytest.raises((TypeError, ValueError), match=r"seed"):  # not gymnasium's Error
                env.reset(seed=seed)
        for options in ODD_OPTIONS:
            with pytest.raises(TypeError, match=r"options must be a dict"):
                env.reset(seed=0, options=options)
        env.reset(seed=2**63 - 1)  # the range's ends still work
        env.reset(seed=0, options={})
    finally:
        env.close()
