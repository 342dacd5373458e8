"""Monte-Carlo advantages on multi-agent (PettingZoo) envs: the team's advantage of a joint step.

The same estimate as `creditgym.measure.monte_carlo`, with the team as the actor: for turn t of
agent i, ``V`` is the mean team return of K continuations of the shared policy (every agent)
from the state before step t, ``Q`` the step's team reward plus the mean of K continuations from
the state after the *joint* step. ``A = Q - V`` is therefore the advantage of what the whole team
did at step t, the same for every agent's turn of that step: the per-agent label it is compared
with (the team's progress label) is a team quantity too. An agent's own counterfactual
advantage (its action fixed, the others resampled) is not estimated here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from creditgym.agents.base import Policy
from creditgym.agents.parsing import parse_action
from creditgym.envs import info as keys
from creditgym.envs.oracle import clone_state, restore_state
from creditgym.rollout.collect import PromptFormat
from creditgym.rollout.seats import Seat
from creditgym.trajectory import Episode

__all__ = ["team_monte_carlo"]


@dataclass
class _TeamJob:
    sample: int
    kind: str  # "q" (after the joint step) or "v" (before it)
    snapshot: object
    agent: str  # whose reward (the team's) is summed
    histories: dict[str, list[tuple[str, str]]]
    observations: dict[str, str] = field(default_factory=dict)
    infos: dict[str, dict] = field(default_factory=dict)
    value: float = 0.0
    discount: float = 1.0
    env: Any = None


def _teams(episodes: Sequence[Episode]) -> dict[Any, dict[str, int]]:
    """The episodes of each team rollout: {rollout: {agent: episode index}}."""
    teams: dict[Any, dict[str, int]] = {}
    for index, episode in enumerate(episodes):
        teams.setdefault(episode.metadata.get("team_rollout"), {})[episode.agent_id] = index
    return teams


def _histories(team: dict[str, Episode], upto: int) -> dict[str, list[tuple[str, str]]]:
    """Each agent's (observation, action) history before step `upto` (a fresh list per call)."""
    return {
        agent: [(turn.observation, turn.action) for turn in episode.turns[:upto]]
        for agent, episode in team.items()
    }


def _replay(
    env: Any, team: dict[str, Episode], wanted: set[int]
) -> dict[int, tuple[object, object | None]]:
    """Replay a team rollout from its seed; snapshots before and after each wanted step."""
    first = next(iter(team.values()))
    observations, _ = env.reset(seed=first.metadata["seed"])
    found = {}
    for step in range(len(first.turns)):
        if any(observations.get(a) != ep.turns[step].observation for a, ep in team.items()):
            raise ValueError(
                f"replaying team rollout {first.task_id} of {first.env_id} from its seed gave a "
                f"different observation at step {step}; Monte-Carlo advantages need an env that "
                "is deterministic under its reset seed"
            )
        before = clone_state(env) if step in wanted else None
        observations, *_ = env.step({a: ep.turns[step].action for a, ep in team.items()})
        if step in wanted:
            found[step] = (before, clone_state(env) if env.agents else None)
    return found


def team_monte_carlo(
    make_env: Any,
    episodes: Sequence[Episode],
    turns: Sequence[tuple[int, int]],
    policy: Policy,
    *,
    continuations: int,
    prompt_format: PromptFormat,
    batch_size: int,
    gamma: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Q, V, their variance sum and env steps for `turns` (see the module docstring).

    `make_env()` builds one env like the rollout's. Raises ValueError where a team's agents do
    not all play every step (step t of one agent would not be step t of the others).
    """
    teams = _teams(episodes)
    wanted: dict[Any, set[int]] = {}
    for e, t in turns:
        wanted.setdefault(episodes[e].metadata.get("team_rollout"), set()).add(t)
    replay_env, jobs = make_env(), []
    q_base = np.zeros(len(turns))
    index_of = {pair: i for i, pair in enumerate(turns)}
    for rollout, steps in wanted.items():
        team = {agent: episodes[i] for agent, i in teams[rollout].items()}
        if len({len(ep.turns) for ep in team.values()}) != 1:
            raise ValueError(
                "Monte-Carlo on a multi-agent env needs every agent to play every step; in team "
                f"rollout {rollout} the agents' episodes differ in length"
            )
        snapshots = _replay(replay_env, team, steps)
        for e, t in (
            (e, t) for e, t in turns if episodes[e].metadata.get("team_rollout") == rollout
        ):
            agent, (before, after) = episodes[e].agent_id, snapshots[t]
            q_base[index_of[(e, t)]] = episodes[e].turns[t].reward

            i = index_of[(e, t)]
            jobs += [
                _TeamJob(i, "v", before, agent, _histories(team, t)) for _ in range(continuations)
            ]
            if after is not None:
                jobs += [
                    _TeamJob(i, "q", after, agent, _histories(team, t + 1))
                    for _ in range(continuations)
                ]
    replay_env.close()
    envs = [make_env() for _ in range(min(batch_size, max(1, len(jobs))))]
    steps = _run_team_lockstep(jobs, policy, prompt_format, envs, gamma)
    returns = {kind: np.zeros((len(turns), continuations)) for kind in ("q", "v")}
    filled = {kind: np.zeros(len(turns), dtype=int) for kind in ("q", "v")}
    for job in jobs:
        returns[job.kind][job.sample, filled[job.kind][job.sample]] = job.value
        filled[job.kind][job.sample] += 1
    q = q_base + gamma * returns["q"].mean(axis=1)
    v = returns["v"].mean(axis=1)
    variance = returns["v"].var(axis=1, ddof=1) + gamma**2 * returns["q"].var(axis=1, ddof=1)
    return q, v, variance, steps


def _run_team_lockstep(
    jobs: Sequence[_TeamJob], policy: Policy, prompt_format: PromptFormat, envs: list, gamma: float
) -> int:
    """Play every job to its episode's end, `len(envs)` at a time, one `generate` per step for
    every live agent of every running env; returns env steps taken."""
    pending, running, free, steps = list(jobs)[::-1], [], list(envs), 0

    def fill() -> None:
        while free and pending:
            job = pending.pop()
            job.env = free.pop()
            job.observations, job.infos = restore_state(job.env, job.snapshot)
            running.append(job)

    fill()
    while running:
        seats = [(job, agent) for job in running for agent in job.env.agents]
        admissible = [job.infos[agent].get(keys.ADMISSIBLE_ACTIONS) for job, agent in seats]
        prompts = [
            prompt_format.prompt(
                job.infos[agent], job.observations[agent], job.histories[agent], actions
            )
            for (job, agent), actions in zip(seats, admissible)
        ]
        generations = policy.generate(
            prompts,
            admissible_actions=admissible if all(a is not None for a in admissible) else None,
            envs=[Seat(job.env, agent) for job, agent in seats],
        )
        joint: dict[int, dict[str, str]] = {}
        for (job, agent), actions, generation in zip(seats, admissible, generations):
            parsed = parse_action(generation.text, actions, require_tags=prompt_format.require_tags)
            joint.setdefault(id(job), {})[agent] = parsed.action
        still = []
        for job in running:
            actions = joint.get(id(job), {})
            observations, rewards, _, _, infos = job.env.step(actions)
            steps += 1
            job.value += job.discount * float(rewards.get(job.agent, 0.0))
            job.discount *= gamma
            for agent, action in actions.items():
                job.histories[agent].append((job.observations[agent], action))
            job.observations, job.infos = observations, infos
            if job.env.agents:
                still.append(job)
            else:
                free.append(job.env)
        running[:] = still
        fill()
    for env in envs:
        env.close()
    return steps
