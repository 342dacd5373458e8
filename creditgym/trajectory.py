"""The one data model every part of creditgym speaks: `Turn`, `Episode`, `EpisodeGroup`.

Rollouts produce `Episode`s; credit modules read them and return one float per turn; the
trainer broadcasts each turn's advantage to that turn's action tokens. This module imports
nothing else of creditgym but the info-key names (`creditgym.info_keys`, which imports nothing),
so that every other part can depend on it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from creditgym.info_keys import ANCHOR

__all__ = [
    "Turn",
    "Episode",
    "EpisodeGroup",
    "group_episodes",
    "turn_rewards",
    "BRANCH_PREFIX_TURNS",
]

#: `Episode.metadata` key: how many leading turns of a branch continuation copy its parent's.
BRANCH_PREFIX_TURNS = "branch_prefix_turns"


@dataclass
class Turn:
    """One decision of one agent: what it saw, what it said, and what the env answered.

    Attributes:
        observation: the environment's text observation the decision was made on.
        action: the action sent to the environment (parsed from `response`).
        reward: the environment's own reward for this step.
        info: the environment's `info` dict returned *with* `observation` (so `anchor`,
            `admissible_actions` describe the state the decision was made in).
        next_info: the `info` returned by the step (so `won`, `valid`, `events` describe
            what this action did).
        next_observation: the observation the step returned (what an LLM judge reads).
        prompt: the full text prompt given to the policy.
        response: the policy's raw output text (may contain reasoning around the action).
        prompt_ids: token ids of `prompt`.
        response_ids: token ids of `response` (the tokens the policy gradient acts on).
        logprobs: behaviour-policy log-probabilities of `response_ids`, one per token.
        valid: whether the response parsed to an action the environment understood.
        teacher_forced: ``(context, target, target token log-probs)`` when the rollout asked
            the policy to score a text after this prompt from its KV cache (IGPO's answer).
        cost_to_go: the expert's remaining plan length from the state this decision was made
            in (`steps_to_go()` of the env), None where the env cannot compute it. An oracle
            for measuring credit; never shown to the agent.
        next_cost_to_go: the same after the step (0 once the task is done).
        credit_details: diagnostics that credit modules attach to the turn (a judge's verdict,
            an information gain, latent factors) for logs and the viewer; estimators never
            read it.
        mc_value: Monte-Carlo value V(s_t) of the state this decision was made in: the mean
            return of K continuations of the policy from it (``rollout.branch.mode=vine``);
            None where nobody measured it.
        next_mc_value: the same of the state after the step (0 where the episode ended there).
    """

    observation: str
    action: str
    reward: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    next_info: dict[str, Any] = field(default_factory=dict)
    next_observation: str = ""
    prompt: str = ""
    response: str = ""
    prompt_ids: list[int] = field(default_factory=list)
    response_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    valid: bool = True
    teacher_forced: tuple[str, str, list[float]] | None = None
    cost_to_go: int | None = None
    next_cost_to_go: int | None = None
    credit_details: dict[str, Any] = field(default_factory=dict)
    mc_value: float | None = None
    next_mc_value: float | None = None

    @property
    def progress(self) -> int | None:
        """Oracle progress label ``d(s_t) - d(s_t+1)``: +1 an optimal step, 0 a wasted one,
        negative a step away from the goal; None where the env gives no cost-to-go."""
        if self.cost_to_go is None or self.next_cost_to_go is None:
            return None
        return self.cost_to_go - self.next_cost_to_go

    @property
    def anchor(self) -> Hashable | None:
        """Canonical key of the true environment state this decision was made in."""
        return self.info.get(ANCHOR)


@dataclass
class Episode:
    """One agent's trajectory through one episode.

    Attributes:
        turns: the agent's turns in order.
        env_id: registered id of the environment.
        task_id: identifies the task (for example the reset seed and split).
        group_id: episodes with the same `group_id` began from the same start state;
            group-relative estimators (GRPO, GiGPO) compare within it.
        agent_id: the agent's name in multi-agent envs, `"agent"` otherwise.
        success: the environment's `won` flag at the end.
        terminated: the episode ended by the environment (not by a step budget).
        truncated: the episode was cut by a step budget.
        failed: the episode could not be completed (the env crashed, a worker died);
            failed episodes carry no learning signal and estimators skip them.
        task_type: the task family, for per-type evaluation tables.
        metadata: anything else (seed, split, error message, ...). A branch rollout's
            continuation has ``metadata["branch_prefix_turns"] = t``: its first t turns are
            copies of its parent's (`copied_turns`), neither new env steps nor trained again.
        credit_columns: per-turn credit details stored column-wise, ``{module: {name: array
            with one entry per turn}}``: what `Turn.credit_details` holds, for a module that
            fills every turn of a large batch (GiGPO's step groups) and should not pay for a
            dict per turn. Read both through `turn_credit_details`.
    """

    turns: list[Turn] = field(default_factory=list)
    env_id: str = ""
    task_id: str = ""
    group_id: Hashable = 0
    agent_id: str = "agent"
    success: bool = False
    terminated: bool = False
    truncated: bool = False
    failed: bool = False
    task_type: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    credit_columns: dict[str, dict[str, Any]] = field(default_factory=dict)

    def turn_credit_details(self, t: int) -> dict[str, Any]:
        """Turn t's credit details: its own `Turn.credit_details` and its row of every
        `credit_columns` module, as plain Python numbers."""
        details = dict(self.turns[t].credit_details)
        for module, columns in self.credit_columns.items():
            details[module] = {name: column[t].item() for name, column in columns.items()}
        return details

    @property
    def episode_return(self) -> float:
        """Undiscounted sum of the environment's rewards."""
        return float(sum(turn.reward for turn in self.turns))

    @property
    def copied_turns(self) -> int:
        """How many leading turns are copies of another episode's (a branch continuation's
        shared prefix); 0 for an episode the rollout sampled whole."""
        return int(self.metadata.get(BRANCH_PREFIX_TURNS, 0))

    def __len__(self) -> int:
        return len(self.turns)


@dataclass
class EpisodeGroup:
    """Episodes that began from the same start state (GRPO's "group")."""

    group_id: Hashable
    episodes: list[Episode]

    @property
    def returns(self) -> np.ndarray:  # (episodes,)
        return np.array([ep.episode_return for ep in self.episodes], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.episodes)


def group_episodes(episodes: Iterable[Episode]) -> list[EpisodeGroup]:
    """Group episodes by `group_id`, keeping first-seen order of groups and episodes."""
    by_id: dict[Hashable, list[Episode]] = {}
    for episode in episodes:
        by_id.setdefault(episode.group_id, []).append(episode)
    return [EpisodeGroup(group_id, members) for group_id, members in by_id.items()]


def turn_rewards(episode: Episode) -> np.ndarray:  # (turns,)
    """The environment's per-turn rewards of an episode as a float array."""
    return np.array([turn.reward for turn in episode.turns], dtype=np.float64)
