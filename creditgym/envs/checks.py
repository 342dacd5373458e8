"""`check_text_env`: the creditgym text-env contract as one call.

Runs Gymnasium's own `check_env`, then what creditgym adds on top: the `info` keys of
`creditgym.envs.info`, determinism under a seed, and that bad actions never raise. Use it in
the tests of your own environments.
"""

from __future__ import annotations

import random

import gymnasium as gym
from gymnasium.utils.env_checker import check_env

from creditgym.envs import info as keys

__all__ = ["check_text_env", "EnvContractError"]


class EnvContractError(AssertionError):
    """An environment broke the creditgym text-env contract."""


def _require_keys(info: dict, where: str, env_name: str) -> None:
    missing = [key for key in keys.REQUIRED_KEYS if key not in info]
    if missing:
        raise EnvContractError(
            f"{env_name}: info after {where} lacks {missing}; every creditgym text env must "
            f"provide {list(keys.REQUIRED_KEYS)} (see creditgym/envs/info.py)."
        )
    try:
        hash(info[keys.ANCHOR])
    except TypeError as error:
        raise EnvContractError(
            f"{env_name}: info['anchor'] after {where} is not hashable: {error}"
        ) from None


def _play(env: gym.Env, seed: int, steps: int) -> list[tuple]:
    """A seeded random walk over admissible actions; returns everything observed."""
    rng = random.Random(seed)
    obs, info = env.reset(seed=seed)
    trace = [(obs, info.get(keys.ANCHOR), tuple(info.get(keys.ADMISSIBLE_ACTIONS, ())))]
    for _ in range(steps):
        actions = info.get(keys.ADMISSIBLE_ACTIONS) or ["look"]
        obs, reward, terminated, truncated, info = env.step(rng.choice(list(actions)))
        trace.append((obs, float(reward), terminated, truncated, info.get(keys.ANCHOR)))
        if terminated or truncated:
            break
    return trace


def check_text_env(
    env: gym.Env, seed: int = 0, steps: int = 30, skip_gym_check: bool = False
) -> None:
    """Raise `EnvContractError` (or Gymnasium's own error) where `env` breaks the contract.

    Args:
        env: the environment (wrapped or not).
        seed: seed for the determinism check.
        steps: length of the random walks compared for determinism.
        skip_gym_check: skip `gymnasium.utils.env_checker.check_env` (already run).
    """
    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    if not skip_gym_check:
        check_env(env.unwrapped, skip_render_check=True)

    _, info = env.reset(seed=seed)
    _require_keys(info, "reset", name)
    for bad_action in ["", "xyzzy plugh", "go to", "}{<>)(", "take" * 50]:
        try:
            obs, _, terminated, truncated, info = env.step(bad_action)
        except Exception as error:  # the contract: bad actions never raise
            raise EnvContractError(
                f"{name}: step({bad_action!r}) raised {type(error).__name__}: {error}"
            ) from error
        _require_keys(info, f"step({bad_action!r})", name)
        if not isinstance(obs, str):
            raise EnvContractError(f"{name}: observation is {type(obs).__name__}, expected str")
        if bad_action == "xyzzy plugh" and info[keys.VALID]:
            raise EnvContractError(
                f"{name}: step({bad_action!r}) reported valid=True; say what went wrong and set valid=False"
            )
        if terminated or truncated:
            env.reset(seed=seed)

    if _play(env, seed, steps) != _play(env, seed, steps):
        raise EnvContractError(
            f"{name}: two runs with seed={seed} and the same actions differ; "
            "seed every random choice from reset(seed=...)"
        )
