"""Per-iteration numbers that say whether credit assignment had anything to work with."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from creditgym.credit.batch import flatten, group_normalize
from creditgym.credit.estimators.gigpo import step_groups
from creditgym.credit.estimators.grpo import grpo_advantages
from creditgym.trajectory import Episode
from creditgym.trajectory import turn_rewards as env_turn_rewards

__all__ = ["credit_metrics", "agreement_with_grpo"]

#: A turn "differs beyond scale" from GRPO when the least-squares fit A ~ c * A_GRPO misses it by
#: more than this share of the advantages' std: the part of the credit a constant scale (which
#: Adam cancels) cannot explain.
BEYOND_SCALE = 0.1


def credit_metrics(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray] | None = None,
    advantages: Sequence[np.ndarray] | None = None,
    *,
    similarity: bool = False,
    similarity_threshold: float = 0.95,
) -> dict[str, float]:
    """Step-group coverage, degenerate groups and advantage spread of one batch.

    Args:
        episodes: the batch.
        turn_rewards: the shaped turn rewards; the environment's rewards if None.
        advantages: the estimator's output, for its summary statistics (optional).
        similarity, similarity_threshold: step grouping as configured for GiGPO.

    Returns (all over non-failed episodes):
        ``credit/step_grouped_turn_share``: fraction of turns in a step group of two or more.
        ``credit/step_group_size_mean``: turns per step group.
        ``credit/zero_episode_advantage_group_share``: fraction of episode groups whose
            episode-level advantages are all zero (every return equal, or one episode): GRPO
            learns nothing from them.
        ``credit/failed_episode_share``, ``credit/anchorless_turn_share``,
        ``credit/advantage_mean``, ``credit/advantage_std``, ``credit/advantage_abs_max``,
        ``credit/zero_advantage_turn_share`` (the last four only with `advantages`).
    """
    if turn_rewards is None:
        turn_rewards = [env_turn_rewards(episode) for episode in episodes]
    batch = flatten(episodes, turn_rewards)
    ok = ~batch.turn_failed
    n_turns = int(ok.sum())
    step_group, n_step_groups = step_groups(episodes, batch, similarity, similarity_threshold)
    sizes = np.bincount(step_group[ok], minlength=n_step_groups)
    anchorless = sum(
        turn.anchor is None for episode in episodes if not episode.failed for turn in episode.turns
    )

    kept = ~batch.failed
    deviation = group_normalize(batch.returns[kept], batch.group[kept], batch.n_groups, "mean", 0.0)
    nonzero_groups = np.unique(batch.group[kept][deviation != 0.0])
    n_groups = len(np.unique(batch.group[kept]))

    metrics = {
        "credit/step_grouped_turn_share": float(sizes[sizes > 1].sum() / n_turns)
        if n_turns
        else 0.0,
        "credit/step_group_size_mean": float(n_turns / np.count_nonzero(sizes)) if n_turns else 0.0,
        "credit/zero_episode_advantage_group_share": (
            float(1.0 - len(nonzero_groups) / n_groups) if n_groups else 0.0
        ),
        "credit/failed_episode_share": float(batch.failed.mean()) if len(episodes) else 0.0,
        "credit/anchorless_turn_share": float(anchorless / n_turns) if n_turns else 0.0,
    }
    if advantages is not None:
        flat = (
            np.concatenate([np.asarray(a, dtype=np.float64) for a in advantages])[ok]
            if n_turns
            else np.zeros(0)
        )
        metrics.update(
            {
                "credit/advantage_mean": float(flat.mean()) if len(flat) else 0.0,
                "credit/advantage_std": float(flat.std()) if len(flat) else 0.0,
                "credit/advantage_abs_max": float(np.abs(flat).max()) if len(flat) else 0.0,
                "credit/zero_advantage_turn_share": float(np.mean(flat == 0.0))
                if len(flat)
                else 0.0,
            }
        )
    return metrics


def agreement_with_grpo(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray],
    advantages: Sequence[np.ndarray],
) -> dict[str, float]:
    """How far an estimator's advantages are from GRPO's on the same batch and turn rewards.

    An estimator that agrees with GRPO at correlation 0.95 cannot make the policy learn
    differently: this is the first thing to check before comparing estimators' learning.

    Returns (over the turns of non-failed episodes; {} when there are none):
        ``credit/grpo_corr``: Pearson correlation of the per-turn advantages with GRPO's
            (left out when either is constant, where it is undefined).
        ``credit/grpo_sign_agreement``: share of turns whose advantage has GRPO's sign
            (zero counting as a sign of its own).
        ``credit/grpo_beyond_scale_share``: share of turns that the best non-negative multiple
            of GRPO's advantages misses by more than `BEYOND_SCALE` x the advantages' std.
    """
    batch = flatten(episodes, turn_rewards)
    ok = ~batch.turn_failed
    if not ok.any():
        return {}
    ours = np.concatenate([np.asarray(a, dtype=np.float64) for a in advantages])[ok]
    grpo = np.concatenate(grpo_advantages(episodes, turn_rewards))[ok]
    metrics = {"credit/grpo_sign_agreement": float(np.mean(np.sign(ours) == np.sign(grpo)))}
    if ours.std() > 0 and grpo.std() > 0:
        metrics["credit/grpo_corr"] = float(np.corrcoef(ours, grpo)[0, 1])
    scale = max(float(ours @ grpo / (grpo @ grpo)), 0.0) if grpo.any() else 0.0  # no flip
    residual = np.abs(ours - scale * grpo)
    metrics["credit/grpo_beyond_scale_share"] = float(np.mean(residual > BEYOND_SCALE * ours.std()))
    return metrics
