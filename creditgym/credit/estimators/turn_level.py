"""Turn-level group normalisation: each turn's return-to-go against the group at the same turn.

After MT-GRPO: Zeng et al., "Reinforcing Multi-Turn Reasoning in LLM Agents via Turn-Level
Credit Assignment", arXiv:2505.11821 (its turn-level advantage estimation, MT-GRPO). For the
episodes of one group (same start state) and a turn index t:

    return-to-go          R_t^(i) = sum_{k>=t} gamma^(k-t) r_k^(i)
    turn-level pool       P_t = {R_t^(j) : episode j of the group has a turn t}
    turn-level advantage  A_t^(i) = (R_t^(i) - mean(P_t)) / F_norm

with F_norm = std(P_t) + epsilon (``normalization="mean_std"``, GRPO's, the default) or 1
(``"mean"``, Dr. GRPO's). ``std`` is unbiased, as in our GRPO. A pool of one turn gets 0.
Defaults: gamma = 1, mean_std.

Unlike GRPO, which broadcasts one episode-level advantage to every turn, the turn's own future
rewards are compared with what the other episodes of the group earned from the same turn
index on, so a dense turn reward (an env's subgoal reward, CALM's, IGPO's) moves only the
turns before it.
"""

# Where we differ from the paper:
# 1. MT-GRPO is written for two-turn episodes (a tool call, then the answer) with a turn reward
#    r^T and an outcome reward r^O: A_1 = A_hat^T + lambda * A_hat^O on the first turn and
#    A_2 = A_hat^O on the second, each term group-normalised on its own (lambda = 1). We
#    generalise to any number of turns by normalising the returns-to-go R_t within (group, t):
#    at gamma = 1 and two turns, turn 2 is the paper's A_hat^O, and turn 1 normalises
#    r^T + r^O jointly where the paper sums two separately normalised terms.
# 2. Turn index t is the position in the episode: episodes of different lengths are compared
#    at the same index even when they reached different states there (GiGPO's anchor-state
#    step groups compare the same *state* instead). A later version of the paper (retitled
#    "... via Turn-Level Reward Design") samples each turn's group from a shared prefix, a
#    rollout tree that grows with the number of turns; our groups are independent episodes
#    sharing only the start state, so no extra rollouts. Same-prefix comparisons are what
#    branch rollouts and the `tree` estimator give.
# 3. Failed episodes (`episode.failed`) get 0 and are left out of every pool.

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from creditgym.credit.batch import (
    GROUP_NORMALIZATIONS,
    batch_discounted_returns,
    check_choice,
    flatten,
    group_normalize,
    split_by_episode,
)
from creditgym.credit.registry import register_estimator
from creditgym.trajectory import Episode

__all__ = ["turn_level_advantages"]


def turn_level_advantages(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray],
    *,
    gamma: float = 1.0,
    normalization: str = "mean_std",
    epsilon: float = 1e-6,
) -> list[np.ndarray]:
    """Each turn's return-to-go, normalised among the group's turns at the same index.

    Args:
        episodes: the batch; `group_id` groups episodes, `failed` ones get 0.
        turn_rewards: one array of turn rewards r_t per episode (the summed shaper outputs).
        gamma: discount of the return-to-go R_t (default 1.0).
        normalization: ``"mean_std"`` (A = (R_t - mean) / (std + epsilon), the default) or
            ``"mean"`` (A = R_t - mean).
        epsilon: added to the std.
    """
    check_choice("normalization", normalization, GROUP_NORMALIZATIONS, "turn_level")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"turn_level: gamma={gamma} must be in [0, 1] (default 1.0).")
    batch = flatten(episodes, turn_rewards)
    ok = ~batch.turn_failed
    R_t = batch_discounted_returns(batch.rewards, batch.lengths, gamma)
    longest = int(batch.lengths.max()) if len(batch.lengths) else 0
    pool_key = batch.group[batch.episode] * max(longest, 1) + batch.step  # (group, t) pairs
    _, pool = np.unique(pool_key[ok], return_inverse=True)
    A = np.zeros(len(R_t))
    A[ok] = group_normalize(
        R_t[ok], pool, int(pool.max()) + 1 if len(pool) else 0, normalization, epsilon
    )
    return split_by_episode(A, batch.lengths)


register_estimator("turn_level")(turn_level_advantages)
