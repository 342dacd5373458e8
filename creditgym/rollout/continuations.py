"""Continuations: restore a cloned env state, then play the policy to the episode's end.

The lockstep runner under Monte-Carlo advantages (`creditgym.measure.monte_carlo`) and branch
rollouts (`creditgym.rollout.branching`): all continuations run at most `len(envs)` at a time,
with one batched `generate` per step, as rollouts do. A branch continuation also keeps its
turns as trainable `Turn`s and counts the policy tokens it spent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from creditgym.agents.base import Policy
from creditgym.agents.parsing import parse_action
from creditgym.envs import info as keys
from creditgym.envs.oracle import clone_state, cost_to_go, restore_state
from creditgym.rollout.collect import PromptFormat, new_turn
from creditgym.trajectory import Episode, Turn

__all__ = ["Continuation", "check_replay", "history", "replay_snapshots", "run_continuations"]


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


def check_replay(observation: object, episode: Episode, t: int, needed_by: str) -> None:
    """Raise ValueError where `observation`, met replaying `episode` from its reset seed, is not
    the one recorded at turn `t`: the env is not deterministic under its seed, which
    `needed_by` (what the replay is for, named in the message) requires."""
    if observation != episode.turns[t].observation:
        raise ValueError(
            f"replaying episode {episode.task_id} of {episode.env_id} from its seed gave a "
            f"different observation at turn {t}; {needed_by} need an env that is "
            "deterministic under its reset seed"
        )


def replay_snapshots(
    env: Any, episode: Episode, wanted: Sequence[int], *, needed_by: str
) -> dict[int, tuple[object, object | None]]:
    """Replay `episode` in `env` from its seed; for each wanted turn t, snapshots of s_t and of
    s_t+1 (None where turn t ended the episode). `needed_by` names what the replay is for in
    the error a replay that differs raises.

    Raises:
        ValueError: the replay's observations differ from the recorded ones (the env is not
            deterministic under its reset seed).
    """
    observation, _ = env.reset(seed=episode.metadata["seed"])
    wanted_set, found = set(wanted), {}
    for t, turn in enumerate(episode.turns):
        if t > max(wanted_set, default=-1):  # nothing more to snapshot
            break
        check_replay(observation, episode, t, needed_by)
        before = clone_state(env) if t in wanted_set else None
        observation, _, terminated, truncated, _ = env.step(turn.action)
        if t in wanted_set:
            found[t] = (before, None if terminated or truncated else clone_state(env))
    return found


def history(episode: Episode, upto: int) -> list[tuple[str, str]]:
    """The (observation, action) pairs of `episode` before turn `upto`, for window prompts."""
    return [(turn.observation, turn.action) for turn in episode.turns[:upto]]


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
