"""REINFORCE++: discounted returns-to-go, normalised over the whole batch instead of per group.

Hu, "REINFORCE++: An Efficient RLHF Algorithm with Robustness to Both Prompt and Reward
Models", arXiv:2501.03262; reference code: OpenRLHF, ``--advantage_estimator reinforce`` and
``reinforce_baseline`` (``experience_maker.py``). Per turn t of episode i, with r the turn
rewards and the group the episodes that began from the same start state:

    baseline "group_mean" (REINFORCE++-baseline):
        r_tilde_{i,T_i} = r_{i,T_i} - mean_{j in group(i)} R_j      (the outcome, shifted)
    baseline "none" (REINFORCE++):
        r_tilde = r
    return-to-go                  G_{i,t} = sum_{k>=t} gamma^(k-t) r_tilde_{i,k}
    global advantage normalisation A_{i,t} = (G_{i,t} - mean_batch G) / std_batch G

with R_j = sum_t r_{j,t} the episode return and mean_batch, std_batch over every turn of every
(non-failed) episode of the batch. Only the group mean is subtracted per group; the scale is
the batch's, which the paper argues is more robust than GRPO's per-group std (a group whose
returns barely differ is not blown up) and asymptotically unbiased.

Defaults: ``baseline="group_mean"``, the variant the paper recommends when several samples
share a prompt (its reasoning and agentic experiments), which is always the case here: every
batch is groups of episodes from the same start state. ``gamma=1`` as in the paper and
OpenRLHF. The paper's KL-to-reference penalty folded into the reward is the trainer's
``train.kl_coef`` here (a loss term), not part of this estimator.
"""

# Where we differ from the paper and from OpenRLHF:
# 1. Our unit is the turn, not the token: the batch mean and std are over turns (each turn's
#    advantage is then broadcast to its action tokens), where OpenRLHF takes them over every
#    action token, weighting long responses more.
# 2. The group mean is of episode returns (sum of turn rewards), subtracted from the episode's
#    final turn reward before discounting: with outcome-only rewards this is OpenRLHF's
#    `rewards - rewards.mean(-1)` on the scalar outcome placed at the last token; with dense
#    turn rewards it keeps G_{i,0} - mean_j R_j as the first turn's centred return at gamma=1.
# 3. A group of one (non-failed) episode is its own group mean, as in OpenRLHF with one sample:
#    its outcome is centred to R = 0 before the batch normalisation (which can still move it).
# 4. Failed episodes get A = 0 and are left out of the group means and the batch statistics.
# 5. Normalisation is as OpenRLHF: population variance, floored at `epsilon` (1e-8) before the
#    square root. A batch whose returns are all equal gets exactly 0.

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from creditgym.credit.batch import (
    batch_discounted_returns,
    check_choice,
    flatten,
    split_by_episode,
)
from creditgym.credit.registry import register_estimator
from creditgym.trajectory import Episode

__all__ = ["reinforce_pp_advantages", "BASELINES", "batch_whiten"]

BASELINES: tuple[str, ...] = ("group_mean", "none")


def batch_whiten(values: np.ndarray, epsilon: float) -> np.ndarray:
    """(x - mean) / sqrt(max(var, epsilon)) over all values; population variance.  # (values,)

    Deviations are taken from the first value before averaging, so equal values give exactly 0.
    """
    if len(values) == 0:
        return values.copy()
    shifted = values - values[0]
    deviation = shifted - shifted.mean()
    return deviation / np.sqrt(max(float(np.mean(deviation**2)), epsilon))


def reinforce_pp_advantages(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray],
    *,
    baseline: str = "group_mean",
    gamma: float = 1.0,
    epsilon: float = 1e-8,
) -> list[np.ndarray]:
    """REINFORCE++ advantage of every turn: returns-to-go, batch-normalised.

    Args:
        episodes: the batch; `group_id` groups episodes for the baseline, `failed` ones get 0.
        turn_rewards: one array of turn rewards per episode (the summed shaper outputs).
        baseline: ``"group_mean"`` (REINFORCE++-baseline, the default: subtract the group's
            mean episode return from each episode's outcome) or ``"none"`` (plain REINFORCE++).
        gamma: discount of the return-to-go (paper: 1.0).
        epsilon: floor of the batch variance before its square root (OpenRLHF: 1e-8).
    """
    check_choice("baseline", baseline, BASELINES, "reinforce_pp")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"reinforce_pp: gamma={gamma} must be in [0, 1] (the paper's is 1.0).")
    batch = flatten(episodes, turn_rewards)
    ok_episode = ~batch.failed
    ok = ~batch.turn_failed
    rewards = batch.rewards.copy()
    if baseline == "group_mean":
        returns = batch.returns
        counts = np.bincount(batch.group[ok_episode], minlength=batch.n_groups)
        sums = np.bincount(
            batch.group[ok_episode], weights=returns[ok_episode], minlength=batch.n_groups
        )
        group_mean = sums / np.maximum(counts, 1)  # (groups,)
        last_turn = np.cumsum(batch.lengths)[(batch.lengths > 0) & ok_episode] - 1
        owner = batch.episode[last_turn]
        rewards[last_turn] -= group_mean[batch.group[owner]]
    returns_to_go = batch_discounted_returns(rewards, batch.lengths, gamma)
    advantage = np.zeros(len(rewards))
    advantage[ok] = batch_whiten(returns_to_go[ok], epsilon)
    return split_by_episode(advantage, batch.lengths)


register_estimator("reinforce_pp")(reinforce_pp_advantages)
