"""The rows a training run logs: rollout statistics, held-out evaluations, and evaluations
read back from a row (a resumed run's results come from its metrics, not a re-run)."""

from __future__ import annotations

from typing import Any

import numpy as np

from creditgym.measure.evaluate import SplitResult
from creditgym.rollout.branching import rollout_counts, sampled_episodes
from creditgym.rollout.failures import ERROR, FAILURE_REASONS
from creditgym.train.checkpoint import TrainerState
from creditgym.trajectory import Episode

__all__ = ["eval_row", "policy_tokens", "results_from_row", "rollout_metrics"]


def policy_tokens(episodes: list[Episode]) -> int:
    """What generating `episodes` cost the policy: prompt + response tokens of each turn played
    (a branch continuation's copied prefix is not played again; vine's continuations are)."""
    return rollout_counts(episodes).policy_tokens


def rollout_metrics(episodes: list[Episode], *, every_reason: bool = False) -> dict[str, float]:
    """Success, return, turns and invalid rate of the episodes the rollout sampled (tree
    continuations start where branching chose: `branch_metrics`); tokens of all of them.

    Failed episodes are counted, and counted per reason (``rollout/failed/<reason>``, see
    `creditgym.rollout.failures`): every reason with `every_reason` (isolated env workers,
    so each has a curve), else only the reasons that occurred.
    """
    sampled = sampled_episodes(episodes)
    usable = [ep for ep in sampled if not ep.failed]
    turns = [t for ep in usable for t in ep.turns]
    return {
        "rollout/success": float(np.mean([ep.success for ep in usable])) if usable else 0.0,
        "rollout/return": float(np.mean([ep.episode_return for ep in usable])) if usable else 0.0,
        "rollout/turns": float(np.mean([len(ep) for ep in usable])) if usable else 0.0,
        "rollout/invalid_rate": float(np.mean([not t.valid for t in turns])) if turns else 0.0,
        "rollout/failed_episodes": float(len(sampled) - len(usable)),
        **_failure_counts(sampled, every_reason),
        "rollout/response_tokens": float(sum(len(t.response_ids) for t in turns)),
        "rollout/policy_tokens": float(policy_tokens(episodes)),
    }


def _failure_counts(episodes: list[Episode], every_reason: bool) -> dict[str, float]:
    reasons = [ep.metadata.get("failure", ERROR) for ep in episodes if ep.failed]
    names = list(FAILURE_REASONS) if every_reason else []
    names += sorted(set(reasons) - set(names))
    return {f"rollout/failed/{name}": float(reasons.count(name)) for name in names}


def eval_row(results: list[SplitResult], state: TrainerState) -> dict[str, Any]:
    """The metrics row of one held-out evaluation, stamped with the run's progress."""
    row: dict[str, Any] = {
        "iteration": state.iteration,
        "env_steps": state.env_steps,
        "policy_tokens": state.policy_tokens,
    }
    for result in results:
        row[f"eval/{result.split}/success"] = result.success
        row[f"eval/{result.split}/return"] = result.mean_return
        row[f"eval/{result.split}/steps"] = result.mean_steps
    return row


def results_from_row(row: dict[str, Any], splits: list[str], episodes: int) -> list[SplitResult]:
    """The held-out results an `eval_row` recorded, one per split."""
    return [
        SplitResult(
            agent=f"policy @ iteration {row['iteration']}",
            split=split,
            episodes=episodes,
            success=row.get(f"eval/{split}/success", 0.0),
            mean_return=row.get(f"eval/{split}/return", 0.0),
            mean_steps=row.get(f"eval/{split}/steps", 0.0),
        )
        for split in splits
    ]
