"""Evaluation: run any policy on a split's tasks and summarise success, return and length.

Task `i` of a split is `reset(seed=i)` on that split, so every agent (a checkpoint, a model
name, an endpoint, the expert, random) is scored on exactly the same tasks. Given an
`EpisodeWriter`, every episode is also written in the episode-log format
(`creditgym.episode_log`, ``source: "eval"``) for `creditgym view`.

A trained model is scored in the format it was trained in: `creditgym.train.runs` finds the
training run a run directory or checkpoint path belongs to, so `creditgym eval` can take the
prompt format (``policy.context``, ``think``, template, history, constrained decoding) from its
config.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from creditgym.agents.base import Policy
from creditgym.episode_log import EpisodeWriter, episode_record
from creditgym.rollout.collect import PromptFormat, RolloutTask, collect_episodes, make_envs
from creditgym.trajectory import Episode

__all__ = [
    "SplitResult",
    "summarise",
    "evaluate",
    "results_table",
    "results_json",
]


@dataclass
class SplitResult:
    """Summary of one agent on one split."""

    agent: str
    split: str
    episodes: int
    success: float
    mean_return: float
    mean_steps: float
    score: float | None = None  # mean graded score where the env reports one (WebShop: 0-100)
    failed: int = 0
    invalid_action_rate: float = 0.0
    per_task_type: dict[str, dict[str, float]] = field(default_factory=dict)


def summarise(episodes: Sequence[Episode], agent: str = "", split: str = "") -> SplitResult:
    """Success rate, mean return, mean steps (and per task type) of finished episodes."""
    usable = [ep for ep in episodes if not ep.failed]
    turns = [turn for ep in usable for turn in ep.turns]
    scores = [ep.metadata["score"] for ep in usable if "score" in ep.metadata]
    by_type: dict[str, list[Episode]] = defaultdict(list)
    for ep in usable:
        by_type[ep.task_type or "all"].append(ep)
    return SplitResult(
        agent=agent,
        split=split,
        episodes=len(usable),
        success=float(np.mean([ep.success for ep in usable])) if usable else 0.0,
        mean_return=float(np.mean([ep.episode_return for ep in usable])) if usable else 0.0,
        mean_steps=float(np.mean([len(ep) for ep in usable])) if usable else 0.0,
        score=float(np.mean(scores)) if scores else None,
        failed=len(episodes) - len(usable),
        invalid_action_rate=float(np.mean([not t.valid for t in turns])) if turns else 0.0,
        per_task_type={
            task_type: {
                "episodes": len(eps),
                "success": float(np.mean([ep.success for ep in eps])),
                "mean_steps": float(np.mean([len(ep) for ep in eps])),
            }
            for task_type, eps in sorted(by_type.items())
        },
    )


def evaluate(
    policy: Policy,
    env_id: str,
    splits: Sequence[str],
    episodes: int,
    *,
    agent: str = "",
    env_kwargs: dict[str, Any] | None = None,
    batch_size: int = 64,
    prompt_format: PromptFormat = PromptFormat(),
    max_turns: int = 0,
    save_episodes: EpisodeWriter | None = None,
) -> list[SplitResult]:
    """Run `episodes` tasks of each split (seeds 0..episodes-1) and summarise each split.

    With `save_episodes`, each episode is also appended there as an episode-log record
    (``source: "eval"``, ``policy: agent``; the env's rewards, no advantages).
    """
    results = []
    for split in splits:
        envs = make_envs(env_id, min(batch_size, episodes), split=split, **(env_kwargs or {}))
        tasks = [RolloutTask(seed, group_id=(split, seed), split=split) for seed in range(episodes)]
        finished = collect_episodes(
            envs, policy, tasks, env_id=env_id, prompt_format=prompt_format, max_turns=max_turns
        )
        for env in envs:
            env.close()
        if save_episodes is not None:
            save_episodes.write(
                episode_record(episode, source="eval", policy=agent or "policy")
                for episode in finished
            )
        results.append(summarise(finished, agent=agent, split=split))
    return results


def results_table(results: Sequence[SplitResult], title: str = "") -> Any:
    """A `rich.table.Table` of results, one row per (agent, split), then per-type success."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title) if title else None)
    for column in ["agent", "split", "episodes", "success", "return", "steps", "invalid"]:
        table.add_column(column, justify="left" if column in ("agent", "split") else "right")
    has_score = any(r.score is not None for r in results)
    if has_score:
        table.add_column("score", justify="right")
    task_types = sorted({t for r in results for t in r.per_task_type} - {"all"})
    for task_type in task_types:
        table.add_column(task_type, justify="right")
    for r in results:
        row = [
            escape(r.agent),
            r.split,
            str(r.episodes) + (f" ({r.failed} failed)" if r.failed else ""),
            f"{r.success:.1%}",
            f"{r.mean_return:.3f}",
            f"{r.mean_steps:.1f}",
            f"{r.invalid_action_rate:.1%}",
        ]
        if has_score:
            row.append("-" if r.score is None else f"{r.score:.1f}")
        row += [
            f"{r.per_task_type[t]['success']:.0%}" if t in r.per_task_type else "-"
            for t in task_types
        ]
        table.add_row(*row)
    return table


def results_json(results: Sequence[SplitResult]) -> str:
    return json.dumps([asdict(r) for r in results], indent=2)
