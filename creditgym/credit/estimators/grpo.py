"""GRPO: each episode's return against the other episodes of its group, broadcast to its turns.

Shao et al., "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language
Models", arXiv:2402.03300, Sec. 4.1.2 (outcome supervision):

    A_i = (R_i - mean({R_1..R_G})) / std({R_1..R_G})

with R_i the episode return (sum of the episode's turn rewards) and the group the episodes that
began from the same start state (`Episode.group_id`).

`normalization="mean"` drops the division (Dr. GRPO, arXiv:2503.20783, Sec. 3.2).

Differences from verl's `compute_grpo_outcome_advantage` (the reference GiGPO builds on):
the std is the same unbiased `torch.std` (n - 1) plus epsilon 1e-6, but a group of one episode
gets advantage 0 where verl uses mean 0 and std 1 (so A = R); failed episodes get 0 and are
left out of their group's mean and std.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from creditgym.credit.batch import (
    GROUP_NORMALIZATIONS,
    check_choice,
    flatten,
    group_normalize,
    split_by_episode,
)
from creditgym.credit.registry import register_estimator
from creditgym.trajectory import Episode

__all__ = ["grpo_advantages", "episode_advantages"]


def episode_advantages(
    returns: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    failed: np.ndarray,
    normalization: str,
    epsilon: float,
) -> np.ndarray:  # (episodes,)
    """A^E per episode: its return against its group's non-failed episodes; 0 if failed."""
    advantage = np.zeros(len(returns))
    ok = ~failed
    advantage[ok] = group_normalize(returns[ok], group[ok], n_groups, normalization, epsilon)
    return advantage


def grpo_advantages(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray],
    *,
    normalization: str = "mean_std",
    epsilon: float = 1e-6,
) -> list[np.ndarray]:
    """Episode-level group-relative advantage, the same for every turn of an episode.

    Args:
        episodes: the batch; `group_id` says which episodes are compared, `failed` ones get 0.
        turn_rewards: one array of turn rewards per episode (the summed shaper outputs).
        normalization: ``"mean_std"`` (A = (R - mean) / (std + epsilon), GRPO) or ``"mean"``
            (A = R - mean, Dr. GRPO).
        epsilon: added to the std.
    """
    check_choice("normalization", normalization, GROUP_NORMALIZATIONS, "grpo")
    batch = flatten(episodes, turn_rewards)
    per_episode = episode_advantages(
        batch.returns, batch.group, batch.n_groups, batch.failed, normalization, epsilon
    )
    return split_by_episode(per_episode[batch.episode], batch.lengths)


register_estimator("grpo")(grpo_advantages)
