"""Monte-Carlo advantages of the behaviour policy, for scoring credit methods.

For a sampled turn t of an episode (state s_t, action a_t, reward r_t, next state s_t+1):

    V^pi(s_t)      = mean of K returns of the policy continued from s_t
    Q^pi(s_t, a_t) = r_t + gamma * mean of K returns continued from s_t+1 (0 if the turn ended
                     the episode)
    A^pi           = Q - V,  standard error sqrt(Var_Q / K + Var_V / K)

Start states come from replaying the recorded episode from its reset seed (envs are
deterministic under a seed; a replay that does not reproduce the recorded observations is an
error) and snapshotting it with the env's ``clone_state``; every continuation restores its
snapshot into a free env. All continuations of all sampled turns run in lockstep, at most
`batch_size` envs at a time, with one batched `generate` per step, as rollouts do, so a model
policy pays one batched forward pass per step for all of them.

The lockstep runner is `creditgym.rollout.continuations`, which branch rollouts share.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from creditgym.agents.base import Policy
from creditgym.envs.oracle import supports_cloning
from creditgym.measure.monte_carlo_team import team_monte_carlo
from creditgym.rollout.collect import PromptFormat, make_envs
from creditgym.rollout.continuations import (
    Continuation,
    history,
    replay_snapshots,
    run_continuations,
)
from creditgym.rollout.seats import is_multiagent
from creditgym.trajectory import Episode

__all__ = ["MonteCarloAdvantages", "sample_turns", "monte_carlo_advantages"]


@dataclass
class MonteCarloAdvantages:
    """Monte-Carlo estimates for sampled turns (flat arrays aligned with `turns`).

    Attributes:
        turns: (episode index, turn index) of each sampled turn.
        q, v, advantage, stderr: (turns,) Q^pi(s_t, a_t), V^pi(s_t), A = Q - V, its standard error.
        continuations: K, the returns averaged per Q and per V.
        gamma: discount of the continuation returns.
        env_steps: environment steps the continuations took.
        seconds: wall time.
    """

    turns: list[tuple[int, int]]
    q: np.ndarray
    v: np.ndarray
    advantage: np.ndarray
    stderr: np.ndarray
    continuations: int
    gamma: float
    env_steps: int = 0
    seconds: float = 0.0


def sample_turns(
    episodes: Sequence[Episode], count: int, seed: int | np.random.Generator = 0
) -> list[tuple[int, int]]:
    """`count` distinct (episode, turn) pairs drawn uniformly from the non-failed episodes'
    own turns (all of them if there are fewer), in batch order; a branch continuation's
    copied prefix is left out (its parent holds those turns). `seed`: an int or a generator
    to draw with."""
    pool = [
        (e, t)
        for e, episode in enumerate(episodes)
        if not episode.failed
        for t in range(episode.copied_turns, len(episode.turns))
    ]
    if count >= len(pool):
        return pool
    chosen = np.random.default_rng(seed).choice(len(pool), size=count, replace=False)
    return [pool[i] for i in sorted(chosen)]


def monte_carlo_advantages(
    env_id: str,
    episodes: Sequence[Episode],
    turns: Sequence[tuple[int, int]],
    policy: Policy,
    *,
    continuations: int = 8,
    prompt_format: PromptFormat | None = None,
    split: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    batch_size: int = 256,
    gamma: float = 1.0,
) -> MonteCarloAdvantages:
    """Q, V and A = Q - V of the behaviour `policy` for each of `turns` (see the module
    docstring); the envs are made like the rollout's (`env_id`, `split`, `env_kwargs`).

    Multi-agent envs get the team's advantage of each joint step (`monte_carlo_team`).

    Raises:
        ValueError: the env cannot clone its state or does not replay deterministically;
            `continuations` < 2 (no standard error).
    """
    if continuations < 2:
        raise ValueError(f"--mc {continuations}: Monte-Carlo needs at least 2 continuations")
    start = time.perf_counter()
    prompt_format = prompt_format or PromptFormat()
    env_kwargs = dict(env_kwargs or {})
    replay_env = make_envs(env_id, 1, split=split, **env_kwargs)[0]
    if not supports_cloning(replay_env):
        raise ValueError(
            f"{env_id} cannot clone its state (no clone_state()/restore_state()), so Monte-Carlo "
            "advantages cannot continue rollouts from a turn; run without --mc"
        )
    if is_multiagent(replay_env):  # the team's advantage of each joint step
        replay_env.close()
        q, v, variance, env_steps = team_monte_carlo(
            lambda: make_envs(env_id, 1, split=split, **env_kwargs)[0],
            episodes,
            turns,
            policy,
            continuations=continuations,
            prompt_format=prompt_format,
            batch_size=batch_size,
            gamma=gamma,
        )
        return MonteCarloAdvantages(
            list(turns),
            q,
            v,
            q - v,
            np.sqrt(variance / continuations),
            continuations,
            gamma,
            env_steps,
            time.perf_counter() - start,
        )

    # Start states: replay each episode once, snapshotting the sampled turns.
    by_episode: dict[int, list[int]] = {}
    for e, t in turns:
        by_episode.setdefault(e, []).append(t)
    jobs: list[Continuation] = []
    q_base = np.zeros(len(turns))  # r_t of each sampled turn
    index_of = {pair: i for i, pair in enumerate(turns)}
    for e, wanted in by_episode.items():
        episode = episodes[e]
        for t, (before, after) in replay_snapshots(
            replay_env, episode, wanted, needed_by="Monte-Carlo advantages"
        ).items():
            i = index_of[(e, t)]
            q_base[i] = episode.turns[t].reward
            jobs += [
                Continuation(i, "v", before, history(episode, t)) for _ in range(continuations)
            ]
            if after is not None:
                jobs += [
                    Continuation(i, "q", after, history(episode, t + 1))
                    for _ in range(continuations)
                ]
    replay_env.close()

    returns = {
        "q": np.zeros((len(turns), continuations)),
        "v": np.zeros((len(turns), continuations)),
    }
    filled = {"q": np.zeros(len(turns), dtype=int), "v": np.zeros(len(turns), dtype=int)}
    env_steps = run_continuations(
        jobs,
        policy,
        prompt_format,
        make_envs(env_id, min(batch_size, max(1, len(jobs))), split=split, **env_kwargs),
        gamma,
    )
    for job in jobs:
        returns[job.kind][job.sample, filled[job.kind][job.sample]] = job.value
        filled[job.kind][job.sample] += 1

    v = returns["v"].mean(axis=1)
    future = returns["q"].mean(axis=1)  # 0 where the turn ended the episode (no q jobs)
    q = q_base + gamma * future
    variance = returns["v"].var(axis=1, ddof=1) + gamma**2 * returns["q"].var(axis=1, ddof=1)
    return MonteCarloAdvantages(
        turns=list(turns),
        q=q,
        v=v,
        advantage=q - v,
        stderr=np.sqrt(variance / continuations),
        continuations=continuations,
        gamma=gamma,
        env_steps=env_steps,
        seconds=time.perf_counter() - start,
    )
