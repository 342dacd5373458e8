"""RLOO: each episode's return against the mean return of the *other* episodes of its group.

REINFORCE Leave-One-Out: Kool, van Hoof, Welling, "Buy 4 REINFORCE Samples, Get a Baseline for
Free!", ICLR 2019 DeepRLStructPred workshop; Ahmadian et al., "Back to Basics: Revisiting
REINFORCE Style Optimization for Learning from Human Feedback in LLMs", arXiv:2402.14740
(the RLOO estimator). For the G episodes tau_1..tau_G of one group (same start state):

    A_i = R_i - 1/(G-1) * sum_{j != i} R_j  =  G/(G-1) * (R_i - mean_j R_j)

with R_i the episode's return, the same advantage for every turn of the episode. Each
episode's baseline excludes the episode itself, so it is independent of the episode's own
sample and the gradient estimate stays unbiased (unlike GRPO's group mean, which includes it).

Defaults are the paper's: outcome level, no discount (gamma = 1), no division by a std.
"""

# Where we differ from the paper and the reference code (TRL's `RLOOTrainer`, OpenRLHF's
# `rloo` estimator):
# 1. A group with one (non-failed) episode gets A = 0: it has no other episode to compare with
#    (the formula divides by G - 1 = 0). The reference code assumes G >= 2.
# 2. Failed episodes (`episode.failed`) get A = 0 and are left out of every group's sum and G.
# 3. `gamma` < 1 makes R_i the discounted return from the start state, sum_t gamma^t r_t; the
#    paper's R_i is one outcome reward per sample. The advantage stays one number per episode:
#    per-turn returns-to-go against per-turn group statistics are the `turn_level` estimator.
# 4. The KL-to-reference penalty the paper puts in the reward is the trainer's `train.kl_coef`
#    here (a loss term), not a change of R_i.

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from creditgym.credit.batch import flatten, split_by_episode
from creditgym.credit.registry import register_estimator
from creditgym.trajectory import Episode

__all__ = ["rloo_advantages", "leave_one_out"]


def leave_one_out(returns: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """R_i minus the mean of the other members of its group; 0 in a group of one.  # (values,)

    Deviations are taken from one member of each group first, so a group of equal returns gets
    exactly 0 rather than rounding noise.
    """
    counts = np.bincount(group, minlength=n_groups)
    member = np.zeros(n_groups)
    member[group] = returns  # any member of each group will do as a shift
    shifted = returns - member[group]
    others = np.bincount(group, weights=shifted, minlength=n_groups)[group] - shifted
    n_others = counts[group] - 1
    return np.where(n_others > 0, shifted - others / np.maximum(n_others, 1), 0.0)


def rloo_advantages(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray],
    *,
    gamma: float = 1.0,
) -> list[np.ndarray]:
    """Leave-one-out advantage of each episode, the same for every one of its turns.

    Args:
        episodes: the batch; `group_id` says which episodes are compared, `failed` ones get 0.
        turn_rewards: one array of turn rewards per episode (the summed shaper outputs).
        gamma: discount of the episode return R_i = sum_t gamma^t r_t (paper: 1, undiscounted).
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"rloo: gamma={gamma} must be in [0, 1] (the paper's is 1.0).")
    batch = flatten(episodes, turn_rewards)
    discount = gamma**batch.step  # (turns,)
    returns = np.bincount(
        batch.episode, weights=batch.rewards * discount, minlength=len(batch.lengths)
    )
    ok = ~batch.failed
    advantage = np.zeros(len(returns))  # (episodes,)
    advantage[ok] = leave_one_out(returns[ok], batch.group[ok], batch.n_groups)
    return split_by_episode(advantage[batch.episode], batch.lengths)


register_estimator("rloo")(rloo_advantages)
