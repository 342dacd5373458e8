"""VinePPO's advantage: a one-step TD error on Monte-Carlo values of the true env states.

Kazemnejad, Aghajohari, Portelance, Sordoni, Reddy, Courville, Le Roux, "VinePPO: Refining Credit
Assignment in RL Training of LLMs", arXiv:2410.01679 (ICML 2025), Sec. 4; reference code:
github.com/McGill-NLP/VinePPO. PPO's value network is replaced by Monte-Carlo estimates: from a
state s_t, K auxiliary rollouts eta_k ~ pi(.|s_t) give

    V_hat(s_t) = (1/K) sum_k R(eta_k)                       (the mean return of K continuations)
    A(s_t, a_t) = r_t + gamma * V_hat(s_t+1) - V_hat(s_t)    (V_hat(terminal) = 0)

The auxiliary rollouts are used for values only, never trained on. Here a state is a turn's
true env state (the env is cloned, not re-prompted), and the values come from branch rollouts
(``rollout.branch.mode=vine``, `creditgym.rollout.branching`), which store V_hat(s_t) in
`Turn.mc_value`, V_hat(s_t+1) in `Turn.next_mc_value` and their discount in
``episode.metadata["vine"]["gamma"]`` (``rollout.branch.gamma``, VinePPO: 1).
"""

# Where we differ from the paper (all in one place):
# 1. A step is a turn (one env action), not a reasoning step of one response.
# 2. r_t is the turn reward the configured shapers give; V_hat is the mean of the
#    continuations' env returns (invalid-response penalty included, as in the rollout). With
#    shapers [env] (the default) the two are the same reward.
# 3. `normalization="mean_std"` (off by default) standardises the advantages over the batch, as
#    in PPO implementations' advantage whitening; the default leaves them as they are.
# 4. Failed episodes get 0.

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from creditgym.credit.batch import check_choice
from creditgym.credit.estimators.tree import TREE_NORMALIZATIONS, normalize_trained_turns
from creditgym.credit.registry import register_estimator
from creditgym.trajectory import Episode

__all__ = ["vine_advantages"]


def vine_advantages(
    episodes: Sequence[Episode],
    turn_rewards: Sequence[np.ndarray],
    *,
    normalization: str = "none",
    epsilon: float = 1e-6,
) -> list[np.ndarray]:
    """A_t = r_t + gamma * V(s_t+1) - V(s_t) of every turn, from the values a vine rollout
    recorded (see the module docstring).

    Args:
        episodes: the batch, after ``rollout.branch.mode=vine`` filled `Turn.mc_value`.
        turn_rewards: one array of turn rewards r_t per episode.
        normalization: ``"none"`` (default) or ``"mean_std"`` over the batch.
        epsilon: added to the std.

    Raises:
        ValueError: a turn of a non-failed episode has no Monte-Carlo value.
    """
    check_choice("normalization", normalization, TREE_NORMALIZATIONS, "vine")
    advantages = []
    for episode, rewards in zip(episodes, turn_rewards):
        advantage = np.zeros(len(episode.turns))
        if not episode.failed:
            gamma = float(episode.metadata.get("vine", {}).get("gamma", 1.0))
            for t, (turn, reward) in enumerate(zip(episode.turns, rewards)):
                if turn.mc_value is None or turn.next_mc_value is None:
                    raise ValueError(
                        f"the vine estimator needs Monte-Carlo values of every turn's state, and "
                        f"turn {t} of episode {episode.task_id} has none; set "
                        "rollout.branch.mode=vine (branch rollouts record them), or choose "
                        "another credit.estimator"
                    )
                advantage[t] = float(reward) + gamma * turn.next_mc_value - turn.mc_value
                turn.credit_details["vine"] = {
                    "value": turn.mc_value,
                    "next_value": turn.next_mc_value,
                }
        advantages.append(advantage)
    if normalization == "mean_std":
        advantages = normalize_trained_turns(episodes, advantages, epsilon)
    return advantages


# The trainer checks this before training: the values come from rollout.branch.mode=vine.


register_estimator("vine")(vine_advantages)


vine_advantages.rollout_branch_mode = "vine"  # type: ignore[attr-defined]
