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

The same lockstep runner (`Continuation`, `run_continuations`) plays branch rollouts
(`creditgym.train.branching`): there a continuation also keeps its turns as trainable `Turn`s
and counts the policy tokens it spent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from creditgym.agents.base import Policy
from creditgym.agents.parsing import parse_action
from creditgym.envs import info as keys
from creditgym.envs.oracle import clone_state, cost_to_go, restore_state, supports_cloning
from creditgym.train.monte_carlo_team import team_monte_carlo
from creditgym.train.multiagent import is_multiagent
from creditgym.train.rollout import PromptFormat, make_envs, new_turn
from creditgym.trajectory import Episode, Turn

__all__ = [
    "MonteCarloAdvantages",
    "Continuation",
    "sample_turns",
    "monte_carlo_advantages",
    "replay_snapshots",
    "run_continuations",
]


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


@dataclass
class Continuation:
    """One continuation: restore `snapshot`, then play the policy to the episode's end.

    Attributes:
        sample: which start state it belongs to (the caller's index).
        kind: the caller's label (``"q"``: from s_t+1, ``"v"``: from s_t, ...).
        snapshot: the env state to restore (`clone_state`).
        history: the (observation, action) turns before the snapshot, for window prompts.
        budget: most turns it may take; 0 = until the env ends the episode.
        record: keep every turn as a trainable `Turn` (token ids, log-probs) in `turns`.
        record_cost_to_go: with `record`, ask the env's oracle cost-to-go around every turn.
        invalid_penalty: subtracted from the reward of a turn whose response did not parse,
            as the rollout does (`PromptFormat.invalid_penalty`).
        value: the discounted return it collected.
        steps: env steps it took; policy_tokens: prompt + response tokens the policy processed.
        terminated, truncated: how it ended (truncated: the env's budget or `budget`).
        final_info: the env's info after its last step.
    """

    sample: int
    kind: str
    snapshot: object
    history: list[tuple[str, str]]
    budget: int = 0
    record: bool = False
    record_cost_to_go: bool = False
    invalid_penalty: float = 0.0
    observation: str = ""
    info: dict = field(default_factory=dict)
    value: float = 0.0
    discount: float = 1.0
    steps: int = 0
    policy_tokens: int = 0
    turns: list[Turn] = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False
    final_info: dict = field(default_factory=dict)
    env: Any = None


def sample_turns(episodes: Sequence[Episode], count: int, seed: int = 0) -> list[tuple[int, int]]:
    """`count` distinct (episode, turn) pairs drawn uniformly from the non-failed episodes'
    turns (all of them if there are fewer), in batch order."""
    pool = [
        (e, t)
        for e, episode in enumerate(episodes)
        if not episode.failed
        for t in range(len(episode.turns))
    ]
    if count >= len(pool):
        return pool
    chosen = np.random.default_rng(seed).choice(len(pool), size=count, replace=False)
    return [pool[i] for i in sorted(chosen)]


def replay_snapshots(
    env: Any, episode: Episode, wanted: Sequence[int]
) -> dict[int, tuple[object, object | None]]:
    """Replay `episode` in `env` from its seed; for each wanted turn t, snapshots of s_t and of
    s_t+1 (None where turn t ended the episode).

    Raises:
        ValueError: the replay's observations differ from the recorded ones (the env is not
            deterministic under its reset seed).
    """
    observation, _ = env.reset(seed=episode.metadata["seed"])
    wanted_set, found = set(wanted), {}
    for t, turn in enumerate(episode.turns):
        if t > max(wanted_set, default=-1):  # nothing more to snapshot
            break
        if observation != turn.observation:
            raise ValueError(
                f"replaying episode {episode.task_id} of {episode.env_id} from its seed gave a "
                f"different observation at turn {t}; Monte-Carlo advantages need an env that is "
                "deterministic under its reset seed"
            )
        before = clone_state(env) if t in wanted_set else None
        observation, _, terminated, truncated, _ = env.step(turn.action)
        if t in wanted_set:
            found[t] = (before, None if terminated or truncated else clone_state(env))
    return found


def _history(episode: Episode, upto: int) -> list[tuple[str, str]]:
    return [(turn.observation, turn.action) for turn in episode.turns[:upto]]


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
        for t, (before, after) in replay_snapshots(replay_env, episode, wanted).items():
            i = index_of[(e, t)]
            q_base[i] = episode.turns[t].reward
            jobs += [
                Continuation(i, "v", before, _history(episode, t)) for _ in range(continuations)
            ]
            if after is not None:
                jobs += [
                    Continuation(i, "q", after, _history(episode, t + 1))
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


def run_continuations(
    jobs: Sequence[Continuation],
    policy: Policy,
    prompt_format: PromptFormat,
    envs: list[Any],
    gamma: float,
) -> int:
    """Play every continuation to its episode's end (or its `budget`), `len(envs)` at a time,
    with one batched `generate` per step; closes `envs`; returns the env steps taken."""
    pending = list(jobs)[::-1]
    running: list[Continuation] = []
    free = list(envs)
    steps = 0

    def fill() -> None:
        while free and pending:
            job = pending.pop()
            job.env = free.pop()
            job.observation, job.info = restore_state(job.env, job.snapshot)
            running.append(job)

    fill()
    while running:
        admissible = [job.info.get(keys.ADMISSIBLE_ACTIONS) for job in running]
        prompts = [
            prompt_format.prompt(job.info, job.observation, job.history, actions)
            for job, actions in zip(running, admissible)
        ]
        generations = policy.generate(
            prompts,
            admissible_actions=admissible if all(a is not None for a in admissible) else None,
            envs=[job.env for job in running],
        )
        still = []
        for job, actions, prompt, generation in zip(running, admissible, prompts, generations):
            parsed = parse_action(generation.text, actions, require_tags=prompt_format.require_tags)
            turn = (
                new_turn(job.observation, job.info, prompt, generation, parsed)
                if job.record
                else None
            )
            before = cost_to_go(job.env) if job.record and job.record_cost_to_go else None
            observation, reward, terminated, truncated, info = job.env.step(parsed.action)
            steps += 1
            job.steps += 1
            job.policy_tokens += len(generation.prompt_ids) + len(generation.token_ids)
            reward = float(reward)
            if job.invalid_penalty and not parsed.valid:
                reward -= job.invalid_penalty
            job.value += job.discount * reward
            job.discount *= gamma
            job.history.append((job.observation, parsed.action))
            if turn is not None:
                _fill_turn(turn, job, reward, observation, info, before)
            job.observation, job.info = observation, info
            out_of_budget = job.budget > 0 and job.steps >= job.budget
            if terminated or truncated or out_of_budget:
                job.terminated = bool(terminated)
                job.truncated = bool(truncated) or (out_of_budget and not terminated)
                job.final_info = info
                free.append(job.env)
                job.env = None
            else:
                still.append(job)
        running[:] = still
        fill()
    for env in envs:
        env.close()
    return steps


def _fill_turn(
    turn: Turn, job: Continuation, reward: float, observation: str, info: dict, before: int | None
) -> None:
    """The env's answer in a recorded turn, as the rollout records it."""
    turn.reward = reward
    turn.next_info = info
    turn.next_observation = observation
    turn.valid = turn.valid and bool(info.get(keys.VALID, True))
    if job.record_cost_to_go:
        turn.cost_to_go, turn.next_cost_to_go = before, cost_to_go(job.env)
    job.turns.append(turn)
