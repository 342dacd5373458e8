"""IGPO's estimator ``discounted_group``: discounted sums of group-normalised turn rewards.

Wang et al., "Information Gain-based Policy Optimization: A Simple and Effective Approach for
Multi-Turn LLM Agents", arXiv:2510.14967; its turn rewards come from ``shapers: [env,
info_gain]`` (`creditgym.credit.shapers.igpo`).

Turn rewards are z-normalised within the group (the episodes that began from the same start
state): ``"joint"`` pools the information gains and the outcomes of the group's turns;
``"separate"`` normalises the final turns' rewards (outcomes) among themselves and the other
turns' (gains) among themselves. Then

    A_t = r_hat_t + gamma * A_(t+1)      (gamma default 1.0)

the discounted sum of normalised rewards from turn t on. The std is the unbiased one plus
``epsilon`` as in our GRPO; a group with a single reward of a kind gives it 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from creditgym.credit.batch import (
    batch_discounted_returns,
    check_choice,
    flatten,
    group_normalize,
    split_by_episode,
)
from creditgym.credit.registry import register_estimator
from creditgym.trajectory import Episode

__all__ = ["discounted_group_advantages"]

DISCOUNTED_GROUP_NORMALIZATIONS = ("joint", "separate")


def discounted_group_advantages(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray],
    *,
    gamma: float = 1.0,
    normalization: str = "joint",
    epsilon: float = 1e-6,
) -> list[np.ndarray]:
    """IGPO's advantage: group z-normalised turn rewards, summed with discount from each turn on.

    Args:
        episodes: the batch; `group_id` groups episodes, `failed` ones get 0.
        turn_rewards: one array of turn rewards per episode (e.g. env outcome + info gain).
        gamma: discount of the cumulative sum (1.0 in the paper).
        normalization: ``"joint"`` (all of a group's turn rewards together) or ``"separate"``
            (final turns' outcomes and earlier turns' gains each among themselves).
        epsilon: added to the std.
    """
    check_choice(
        "normalization", normalization, DISCOUNTED_GROUP_NORMALIZATIONS, "discounted_group"
    )
    batch = flatten(episodes, turn_rewards)
    normalized = np.zeros(len(batch.rewards))
    ok = ~batch.turn_failed
    key = batch.group[batch.episode]
    if normalization == "separate":  # outcomes and gains form distinct pools of each group
        is_final = batch.step == batch.lengths[batch.episode] - 1
        key = 2 * key + is_final
    normalized[ok] = group_normalize(
        batch.rewards[ok], key[ok], 2 * batch.n_groups, "mean_std", epsilon
    )
    return split_by_episode(
        batch_discounted_returns(normalized, batch.lengths, gamma), batch.lengths
    )


register_estimator("discounted_group")(discounted_group_advantages)
