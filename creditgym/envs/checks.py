"""The creditgym environment contract as one call: `check_text_env` for single-agent text envs,
`check_parallel_env` for multi-agent PettingZoo ones.

Each runs the library's own checker (Gymnasium's `check_env`, PettingZoo's
`parallel_api_test`), then what creditgym adds on top: the `info` keys of
`creditgym.envs.info`, determinism under a seed, and that bad actions never raise: empty,
100k characters, control characters, unicode, wrong types (None, numbers, bytes, lists,
dicts), whitespace and case variants of an admissible action, and steps after the episode
ended. Use them in the tests of your own environments.
"""

from __future__ import annotations

import random
from typing import Any

import gymnasium as gym
from gymnasium.utils.env_checker import check_env

from creditgym.envs import info as keys

__all__ = ["check_text_env", "check_parallel_env", "bad_actions", "EnvContractError"]


class EnvContractError(AssertionError):
    """An environment broke the creditgym env contract."""


# Actions no env should take, as (label, action): strings first, then wrong types.
_BAD_ACTIONS: list[tuple[str, Any]] = [
    ("empty", ""),
    ("gibberish", "xyzzy plugh"),
    ("half a command", "go to"),
    ("brackets", "}{<>)(][click[search[answer["),
    ("100k characters", "take " * 20_000),
    ("control characters", "look\x00\x07\x1b[31m\r\n\t\x7f"),
    ("unicode", "🙂 ünïcödé 中文 \u202eevil\u200b"),
    ("lone surrogate", "look \udcff"),
    ("None", None),
    ("int", 3),
    ("float", float("nan")),
    ("bytes", b"look"),
    ("list", ["look"]),
    ("dict", {"action": "look"}),
]


# Labels of actions that must come back with valid=False: gibberish and every wrong type.
_NEVER_VALID = frozenset({"gibberish", "None", "int", "float", "bytes", "list", "dict"})


def bad_actions(admissible: list[str] | tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """The fuzz: `_BAD_ACTIONS` plus whitespace/case variants of the first admissible action."""
    variants = []
    if admissible:
        action = str(admissible[0])
        variants = [
            ("upper case", action.upper()),
            ("title case", action.title()),
            ("padded", f"  {action}  "),
            ("newline", f"{action}\n"),
            ("doubled spaces", action.replace(" ", "  ")),
            ("full stop", f"{action}."),
        ]
    return _BAD_ACTIONS + variants


def _require_keys(info: Any, where: str, env_name: str) -> None:
    if not isinstance(info, dict):
        raise EnvContractError(f"{env_name}: info after {where} is {type(info).__name__}, not dict")
    missing = [key for key in keys.REQUIRED_KEYS if key not in info]
    if missing:
        raise EnvContractError(
            f"{env_name}: info after {where} lacks {missing}; every creditgym env must "
            f"provide {list(keys.REQUIRED_KEYS)} (see creditgym/envs/info.py)."
        )
    try:
        hash(info[keys.ANCHOR])
    except TypeError as error:
        raise EnvContractError(
            f"{env_name}: info['anchor'] after {where} is not hashable: {error}"
        ) from None


def _step(env: Any, action: Any, env_name: str, label: str) -> tuple:
    """`env.step(action)`, turning any exception into an `EnvContractError` naming the action."""
    try:
        return env.step(action)
    except Exception as error:  # the contract: bad actions never raise
        shown = repr(action) if len(repr(action)) < 60 else repr(action)[:57] + "..."
        raise EnvContractError(
            f"{env_name}: step({shown}) ({label}) raised {type(error).__name__}: {error}"
        ) from error


def _check_single_step(result: tuple, where: str, env_name: str) -> None:
    obs, reward, terminated, truncated, info = result
    if not isinstance(obs, str):
        raise EnvContractError(
            f"{env_name}: observation after {where} is {type(obs).__name__}, expected str"
        )
    if not isinstance(terminated, bool) or not isinstance(truncated, bool):
        raise EnvContractError(f"{env_name}: terminated/truncated after {where} are not bools")
    float(reward)
    _require_keys(info, where, env_name)


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
    env: gym.Env,
    seed: int = 0,
    steps: int = 30,
    skip_gym_check: bool = False,
    max_episode_steps: int = 1000,
) -> None:
    """Raise `EnvContractError` (or Gymnasium's own error) where `env` breaks the contract.

    Args:
        env: the environment (wrapped or not).
        seed: seed for the determinism check and the fuzz.
        steps: length of the random walks compared for determinism.
        skip_gym_check: skip `gymnasium.utils.env_checker.check_env` (already run).
        max_episode_steps: the random walk to the episode's end gives up after this many
            steps (then the after-the-end check is skipped).
    """
    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    if not skip_gym_check:
        check_env(env.unwrapped, skip_render_check=True)

    _, info = env.reset(seed=seed)
    _require_keys(info, "reset", name)
    for label, action in bad_actions(info.get(keys.ADMISSIBLE_ACTIONS) or ()):
        result = _step(env, action, name, label)
        _check_single_step(result, f"step({label})", name)
        if label in _NEVER_VALID and result[4][keys.VALID]:
            raise EnvContractError(
                f"{name}: step({label}) reported valid=True; say what went wrong and set "
                "valid=False"
            )
        if result[2] or result[3]:
            _, info = env.reset(seed=seed)

    if _play(env, seed, steps) != _play(env, seed, steps):
        raise EnvContractError(
            f"{name}: two runs with seed={seed} and the same actions differ; "
            "seed every random choice from reset(seed=...)"
        )
    _check_steps_after_the_end(env, seed, max_episode_steps, name)


def _check_steps_after_the_end(env: gym.Env, seed: int, max_steps: int, name: str) -> None:
    rng = random.Random(seed)
    _, info = env.reset(seed=seed)
    for _ in range(max_steps):
        actions = info.get(keys.ADMISSIBLE_ACTIONS) or ["look"]
        _, _, terminated, truncated, info = env.step(rng.choice(list(actions)))
        if terminated or truncated:
            break
    else:
        return  # the walk never ended: nothing to check
    last_admissible = info.get(keys.ADMISSIBLE_ACTIONS) or ["look"]
    for label, action in [
        ("an admissible action", last_admissible[0]),
        ("empty", ""),
        ("None", None),
    ]:
        where = f"{label} after the end"
        _check_single_step(_step(env, action, name, where), f"step({where})", name)


def check_parallel_env(
    env: Any, seed: int = 0, num_cycles: int = 30, skip_api_test: bool = False
) -> None:
    """The multi-agent contract: PettingZoo's `parallel_api_test`, per-agent info keys,
    determinism, bad actions (per agent, and a `step` argument that is not a dict) and steps
    after the episode ended never raise."""
    name = type(env).__name__
    if not skip_api_test:
        from pettingzoo.test import parallel_api_test

        parallel_api_test(env, num_cycles=num_cycles)

    observations, infos = env.reset(seed=seed)
    for agent in env.agents:
        _require_keys(infos.get(agent), f"reset ({agent})", name)
    first = env.agents[0]
    admissible = infos[first].get(keys.ADMISSIBLE_ACTIONS) or ()
    for label, action in bad_actions(admissible):
        if not env.agents:
            env.reset(seed=seed)
        _check_parallel_step(env, dict.fromkeys(env.agents, action), name, label)
    for label, actions in [("None", None), ("a string", "look"), ("a list", ["look", "look"])]:
        if not env.agents:
            env.reset(seed=seed)
        _check_parallel_step(env, actions, name, f"{label} instead of a dict", never_valid=True)

    if _play_team(env, seed, num_cycles) != _play_team(env, seed, num_cycles):
        raise EnvContractError(
            f"{name}: two runs with seed={seed} and the same actions differ; "
            "seed every random choice from reset(seed=...)"
        )
    _play_team(env, seed, 10_000)  # to the end
    if not env.agents:
        for label, actions in [("a dict", {first: "look"}), ("None", None), ("{}", {})]:
            result = _step(env, actions, name, f"{label} after the end")
            if any(result):
                raise EnvContractError(
                    f"{name}: step({label}) after the end returned {result!r}; expected "
                    "empty dicts (PettingZoo's convention)"
                )


def _check_parallel_step(
    env: Any, actions: Any, name: str, label: str, never_valid: bool = False
) -> None:
    live = list(env.agents)
    observations, rewards, terminations, truncations, infos = _step(env, actions, name, label)
    for agent in live:
        if not isinstance(observations.get(agent), str):
            raise EnvContractError(f"{name}: {agent}'s observation after {label} is not a str")
        _require_keys(infos.get(agent), f"{label} ({agent})", name)
        if (never_valid or label in _NEVER_VALID) and infos[agent][keys.VALID]:
            raise EnvContractError(f"{name}: {agent} got valid=True for {label}")


def _play_team(env: Any, seed: int, steps: int) -> list[tuple]:
    rng = random.Random(seed)
    observations, infos = env.reset(seed=seed)
    trace: list[tuple] = [tuple(sorted(observations.items()))]
    for _ in range(steps):
        if not env.agents:
            break
        actions = {
            agent: rng.choice(list(infos[agent].get(keys.ADMISSIBLE_ACTIONS) or ["look"]))
            for agent in env.agents
        }
        observations, rewards, _, _, infos = env.step(actions)
        trace.append((tuple(sorted(observations.items())), tuple(sorted(rewards.items()))))
    return trace
