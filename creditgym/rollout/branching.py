"""Branch rollouts: more runs of the same policy from cloned env states of a collected batch.

After the batch is collected, each chosen episode is replayed from its reset seed and its state
s_t before a chosen turn t is snapshotted (`clone_state`); K continuations of the policy then
restore that snapshot and play on to the episode's end, all of them in lockstep with one batched
`generate` per step (`creditgym.rollout.continuations`, which Monte-Carlo advantages share).
Two modes (``rollout.branch.mode``):

* ``tree``: from the turns a fixed schedule names (``at: schedule``, ``turns``) or from the
  turns where the policy's step entropy was highest (``at: entropy``, ``count``), of the first
  ``per_group`` episodes of each group. Each continuation samples its own action at t and is a
  new `Episode` of the parent's group: its first t turns are copies of the parent's (the same
  prompt and response token ids), marked ``metadata["branch_prefix_turns"] = t``; its later
  turns are new and trainable. The batch becomes a tree of shared prefixes per group, which the
  ``tree`` estimator reads (`creditgym.credit.estimators.tree`).
* ``vine`` (VinePPO, arXiv:2410.01679): from every turn's state of every episode, K
  continuations whose mean return is a Monte-Carlo value V(s_t) (`Turn.mc_value`, and
  `Turn.next_mc_value` = V(s_t+1), 0 after the last turn), for the ``vine`` estimator
  (`creditgym.credit.estimators.vine`). The continuations give values only; they are not trained.

Counting (`rollout_counts`): an env step is a step the policy chose an action for; its policy
tokens are the prompt + response tokens of that decision (``len(prompt_ids) +
len(response_ids)``). Continuation steps count like any other (a tree continuation's copied
prefix does not count again); replaying an episode to reach its snapshots takes env steps
without the policy, reported apart as ``replay_steps``.

Limits: single-agent envs that clone their state and replay deterministically from a seed;
window context (`PromptFormat.context` ``"window"``: a conversation-mode continuation would need
the parent's KV-cached chat); envs in this process (continuations never use Ray workers).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from creditgym.agents.base import Policy
from creditgym.envs import info as keys
from creditgym.envs.oracle import supports_cloning
from creditgym.rollout.collect import PromptFormat, make_envs
from creditgym.rollout.continuations import (
    Continuation,
    history,
    replay_snapshots,
    run_continuations,
)
from creditgym.rollout.seats import is_multiagent
from creditgym.trajectory import BRANCH_PREFIX_TURNS, Episode, group_episodes

__all__ = [
    "BranchCost",
    "RolloutCounts",
    "branch_metrics",
    "branch_points",
    "branch_rollouts",
    "check_branching",
    "rollout_counts",
    "sampled_episodes",
    "step_entropy",
    "trained_turns",
    "zero_copied_prefixes",
]

#: `Episode.metadata` keys: the continuation's parent (its index in the batch branched from) and
#: the cost of continuations that are not episodes of the batch (vine's), per parent.
BRANCH_PARENT = "branch_parent"
BRANCH_COST = "branch_cost"


@dataclass
class BranchCost:
    """What one call of `branch_rollouts` spent.

    Attributes:
        env_steps: steps the continuations took (each chosen by the policy).
        policy_tokens: prompt + response tokens the policy processed for them.
        replay_steps: env steps of replaying episodes from their seeds to reach the snapshots
            (no policy involved).
        continuations: how many continuations ran.
    """

    env_steps: int = 0
    policy_tokens: int = 0
    replay_steps: int = 0
    continuations: int = 0


@dataclass
class RolloutCounts:
    """A batch's cost, branch continuations included (see the module docstring).

    Attributes:
        env_steps, policy_tokens: everything the policy acted on, continuations included.
        branch_env_steps, branch_policy_tokens: the continuations' share of them.
        replay_steps: env steps of replays (not in `env_steps`).
        branch_episodes: tree continuations in the batch.
    """

    env_steps: int = 0
    policy_tokens: int = 0
    branch_env_steps: int = 0
    branch_policy_tokens: int = 0
    replay_steps: int = 0
    branch_episodes: int = 0


def step_entropy(turn: Any) -> float:
    """A turn's step entropy: the mean token surprisal of its response, -mean(logprobs) (0 for a
    turn without log-probs, e.g. a scripted policy's)."""
    return -float(np.mean(turn.logprobs)) if turn.logprobs else 0.0


def branch_points(episodes: Sequence[Episode], branch: Any) -> list[tuple[int, int]]:
    """(episode index, turn t) of every tree branch point, in batch order: the first
    ``branch.per_group`` non-failed episodes of each group, at the scheduled turns they reach
    (``at: schedule``) or at their ``count`` turns of highest `step_entropy` (``at: entropy``;
    ties go to the earlier turn)."""
    index = {id(episode): i for i, episode in enumerate(episodes)}
    points: list[tuple[int, int]] = []
    for group in group_episodes(episodes):
        sampled = [e for e in group.episodes if not e.failed and BRANCH_PARENT not in e.metadata]
        for episode in sampled[: branch.per_group]:
            if branch.at == "schedule":
                turns = sorted({t for t in branch.turns if t < len(episode)})
            else:
                entropy = [step_entropy(turn) for turn in episode.turns]
                turns = sorted(
                    sorted(range(len(entropy)), key=lambda t: -entropy[t])[: branch.count]
                )
            points += [(index[id(episode)], t) for t in turns]
    return sorted(points)


def check_branching(config: Any) -> None:
    """Fail before training, with the fix, where ``rollout.branch`` cannot run: an env that
    cannot clone its state, a multi-agent env, conversation context, or an estimator that
    needs another branch mode (one declaring ``rollout_branch_mode``).

    Raises:
        ConfigError: naming the setting, the env and what to change.
    """
    from creditgym.config import ConfigError
    from creditgym.credit.registry import resolve

    mode = config.rollout.branch.mode
    estimator = resolve("estimator", config.credit.estimator)
    needed = getattr(estimator.fn, "rollout_branch_mode", None)
    if needed is not None and needed != mode:
        raise ConfigError(
            f"credit.estimator {estimator.name!r} reads values that branch rollouts record; set "
            f"rollout.branch.mode={needed} (it is {mode!r})"
        )
    if mode == "none":
        return
    env_id = config.env.id
    if config.policy.context != "window":
        raise ConfigError(
            f"rollout.branch.mode={mode} needs policy.context=window (continuations rebuild "
            "each prompt from the episode's turns); set policy.context=window or "
            "rollout.branch.mode=none"
        )
    env = make_envs(env_id, 1, split=config.env.train_split, **config.env.kwargs)[0]
    try:
        if is_multiagent(env):
            raise ConfigError(
                f"rollout.branch.mode={mode}: {env_id} is a multi-agent env, and branch rollouts "
                "continue one agent's episode; set rollout.branch.mode=none"
            )
        if not supports_cloning(env):
            raise ConfigError(
                f"rollout.branch.mode={mode}: {env_id} cannot clone its state (no "
                "clone_state()/restore_state()), so no rollout can continue from its turns; set "
                "rollout.branch.mode=none, or train on an env that clones (household, "
                "WebShop-style, SearchQA)"
            )
    finally:
        env.close()


def branch_rollouts(
    episodes: list[Episode],
    policy: Policy,
    branch: Any,
    *,
    env_id: str,
    prompt_format: PromptFormat,
    split: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    max_turns: int = 0,
    record_cost_to_go: bool = True,
) -> tuple[list[Episode], BranchCost]:
    """The batch after ``branch.mode``'s continuations (see the module docstring): ``tree``
    appends the continuations as episodes; ``vine`` fills `Turn.mc_value` and
    `Turn.next_mc_value` of every non-failed episode and records its continuations' cost in
    the episode's ``metadata["branch_cost"]``; ``none`` returns the batch as it is.

    Args:
        episodes: the collected batch (single-agent, window context, seeds in metadata).
        policy: the rollout policy; continuations sample from it as the rollout did.
        branch: the ``rollout.branch`` config (`creditgym.config.BranchConfig`).
        env_id, split, env_kwargs: how to make envs like the rollout's.
        prompt_format: the rollout's prompt format.
        max_turns: the rollout's turn limit (a continuation from turn t may take
            ``max_turns - t`` turns); 0 = the env's own budget.
        record_cost_to_go: record the env's oracle cost-to-go on tree continuations' turns.

    Raises:
        ValueError: a replay from an episode's seed does not reproduce it.
    """
    if branch.mode == "none":
        return episodes, BranchCost()
    make = _env_maker(env_id, split, env_kwargs)
    if branch.mode == "tree":
        return _tree(episodes, policy, branch, make, prompt_format, max_turns, record_cost_to_go)
    return _vine(episodes, policy, branch, make, prompt_format, max_turns)


def _env_maker(env_id: str, split: str | None, env_kwargs: dict[str, Any] | None) -> Any:
    def make(count: int) -> list[Any]:
        return make_envs(env_id, count, split=split, **dict(env_kwargs or {}))

    return make


def _snapshots_by_turn(
    episodes: Sequence[Episode], points: Sequence[tuple[int, int]], make: Any
) -> tuple[dict[tuple[int, int], object], dict[int, int]]:
    """The snapshot of s_t at each (episode, t) point, and the replay steps each episode took."""
    wanted: dict[int, list[int]] = {}
    for e, t in points:
        wanted.setdefault(e, []).append(t)
    replay_env = make(1)[0]
    found, replayed = {}, {}
    try:
        for e, turns in wanted.items():
            for t, (before, _) in replay_snapshots(
                replay_env, episodes[e], turns, needed_by="branch rollouts (rollout.branch)"
            ).items():
                found[(e, t)] = before
            replayed[e] = min(max(turns) + 1, len(episodes[e]))  # replays stop at the last one
    finally:
        replay_env.close()
    return found, replayed


def _run(
    jobs: list[Continuation],
    policy: Policy,
    branch: Any,
    make: Any,
    prompt_format: PromptFormat,
    gamma: float,
) -> None:
    if jobs:
        run_continuations(
            jobs, policy, prompt_format, make(min(branch.batch_size, len(jobs))), gamma
        )


def _cost(jobs: Sequence[Continuation], replayed: dict[int, int]) -> BranchCost:
    return BranchCost(
        env_steps=sum(job.steps for job in jobs),
        policy_tokens=sum(job.policy_tokens for job in jobs),
        replay_steps=sum(replayed.values()),
        continuations=len(jobs),
    )


def _tree(
    episodes: list[Episode],
    policy: Policy,
    branch: Any,
    make: Any,
    prompt_format: PromptFormat,
    max_turns: int,
    record_cost_to_go: bool,
) -> tuple[list[Episode], BranchCost]:
    points = branch_points(episodes, branch)
    snapshots, replayed = _snapshots_by_turn(episodes, points, make)
    jobs = [
        Continuation(
            sample=i,
            kind="tree",
            snapshot=snapshots[(e, t)],
            history=history(episodes[e], t),
            budget=max(max_turns - t, 0) if max_turns else 0,
            record=True,
            record_cost_to_go=record_cost_to_go,
            invalid_penalty=prompt_format.invalid_penalty,
        )
        for i, (e, t) in enumerate(points)
        for _ in range(branch.k)
    ]
    _run(jobs, policy, branch, make, prompt_format, gamma=1.0)
    continuations = [_continuation_episode(episodes, points[job.sample], job) for job in jobs]
    for e, steps in replayed.items():  # replay steps, charged to the episode replayed
        episodes[e].metadata[BRANCH_COST] = {"replay_steps": steps}
    cost = _cost(jobs, replayed)
    return episodes + continuations, cost


def _continuation_episode(
    episodes: Sequence[Episode], point: tuple[int, int], job: Continuation
) -> Episode:
    """A tree continuation as an episode of its parent's group: copies of the parent's first t
    turns, then the continuation's own."""
    e, t = point
    parent = episodes[e]
    metadata = {
        key: value
        for key, value in copy.deepcopy(parent.metadata).items()
        if key not in (BRANCH_COST, "score")
    }
    metadata.update({BRANCH_PREFIX_TURNS: t, BRANCH_PARENT: e})
    if "score" in job.final_info:
        metadata["score"] = float(job.final_info["score"])
    return Episode(
        turns=copy.deepcopy(parent.turns[:t]) + job.turns,
        env_id=parent.env_id,
        task_id=parent.task_id,
        group_id=parent.group_id,
        agent_id=parent.agent_id,
        success=bool(job.final_info.get(keys.WON, False)),
        terminated=job.terminated,
        truncated=job.truncated,
        task_type=parent.task_type,
        metadata=metadata,
    )


def _vine(
    episodes: list[Episode],
    policy: Policy,
    branch: Any,
    make: Any,
    prompt_format: PromptFormat,
    max_turns: int,
) -> tuple[list[Episode], BranchCost]:
    points = [(e, t) for e, ep in enumerate(episodes) if not ep.failed for t in range(len(ep))]
    snapshots, replayed = _snapshots_by_turn(episodes, points, make)
    jobs = [
        Continuation(
            sample=i,
            kind="vine",
            snapshot=snapshots[(e, t)],
            history=history(episodes[e], t),
            budget=max(max_turns - t, 0) if max_turns else 0,
            invalid_penalty=prompt_format.invalid_penalty,
        )
        for i, (e, t) in enumerate(points)
        for _ in range(branch.k)
    ]
    _run(jobs, policy, branch, make, prompt_format, gamma=branch.gamma)
    returns = np.zeros((len(points), branch.k))  # (states, K)
    per_episode: dict[int, dict[str, int]] = {}
    filled = np.zeros(len(points), dtype=int)
    for job in jobs:
        returns[job.sample, filled[job.sample]] = job.value
        filled[job.sample] += 1
        e = points[job.sample][0]
        cost = per_episode.setdefault(e, {"env_steps": 0, "policy_tokens": 0})
        cost["env_steps"] += job.steps
        cost["policy_tokens"] += job.policy_tokens
    values = returns.mean(axis=1)
    for (e, t), value in zip(points, values.tolist()):
        episodes[e].turns[t].mc_value = value
    for e, cost in per_episode.items():
        episode = episodes[e]
        for t, turn in enumerate(episode.turns):
            following = episode.turns[t + 1] if t + 1 < len(episode) else None
            turn.next_mc_value = following.mc_value if following is not None else 0.0
        episode.metadata["vine"] = {"k": branch.k, "gamma": branch.gamma}
        episode.metadata[BRANCH_COST] = {**cost, "replay_steps": replayed[e]}
    return episodes, _cost(jobs, replayed)


def rollout_counts(episodes: Sequence[Episode]) -> RolloutCounts:
    """Env steps and policy tokens of a batch, branch continuations included and prefix copies
    not (see the module docstring); failed episodes count the steps they took."""
    counts = RolloutCounts()
    for episode in episodes:
        own = episode.turns[episode.copied_turns :]
        steps = len(own)
        tokens = sum(len(turn.prompt_ids) + len(turn.response_ids) for turn in own)
        counts.env_steps += steps
        counts.policy_tokens += tokens
        if BRANCH_PARENT in episode.metadata:
            counts.branch_episodes += 1
            counts.branch_env_steps += steps
            counts.branch_policy_tokens += tokens
        cost = episode.metadata.get(BRANCH_COST, {})
        counts.env_steps += cost.get("env_steps", 0)
        counts.policy_tokens += cost.get("policy_tokens", 0)
        counts.branch_env_steps += cost.get("env_steps", 0)
        counts.branch_policy_tokens += cost.get("policy_tokens", 0)
        counts.replay_steps += cost.get("replay_steps", 0)
    return counts


def zero_copied_prefixes(
    episodes: Sequence[Episode], advantages: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """The advantages with 0 on every copied prefix turn, so each sampled turn is trained once
    (by the episode that sampled it)."""
    zeroed = []
    for episode, episode_advantages in zip(episodes, advantages):
        episode_advantages = np.array(episode_advantages, dtype=np.float64)
        episode_advantages[: episode.copied_turns] = 0.0
        zeroed.append(episode_advantages)
    return zeroed


def trained_turns(
    episodes: Sequence[Episode], advantages: Sequence[np.ndarray]
) -> tuple[list[Episode], list[np.ndarray]]:
    """The batch without copied prefix turns (shallow episode copies holding only the turns
    their episode sampled), for the update."""
    kept_episodes, kept_advantages = [], []
    for episode, episode_advantages in zip(episodes, advantages):
        copied = episode.copied_turns
        if copied:
            episode = copy.copy(episode)
            episode.turns = episode.turns[copied:]
            episode_advantages = np.asarray(episode_advantages)[copied:]
        kept_episodes.append(episode)
        kept_advantages.append(episode_advantages)
    return kept_episodes, kept_advantages


def sampled_episodes(episodes: Sequence[Episode]) -> list[Episode]:
    """The episodes the rollout sampled, without tree continuations (whose success and return
    are of states chosen for branching, not of the task distribution)."""
    return [episode for episode in episodes if BRANCH_PARENT not in episode.metadata]


def branch_metrics(episodes: Sequence[Episode]) -> dict[str, float]:
    """The branch continuations' share of a batch's cost, and their success, for metrics rows."""
    counts = rollout_counts(episodes)
    continuations = [e for e in episodes if BRANCH_PARENT in e.metadata and not e.failed]
    return {
        "rollout/branch_env_steps": float(counts.branch_env_steps),
        "rollout/branch_policy_tokens": float(counts.branch_policy_tokens),
        "rollout/branch_episodes": float(counts.branch_episodes),
        "rollout/branch_success": (
            float(np.mean([e.success for e in continuations])) if continuations else 0.0
        ),
        "rollout/replay_steps": float(counts.replay_steps),
    }
