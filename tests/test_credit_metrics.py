"""Per-iteration credit metrics, on a batch counted by hand."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import episode

from creditgym.credit import compute_advantages, credit_metrics


def batch():
    """Group A: anchors s t g | s s t | s t (step groups of 4, 3 and 1 turns); returns 1, 0, 1.
    Group B: one episode (its episode advantage is necessarily 0), anchors u None.
    Group C: two episodes with equal returns 1 and 1, anchors v | v.
    Plus one failed episode in group A, which every metric ignores except the failed share.
    """
    return [
        episode([0, 0, 1], anchors=["s", "t", "g"], group="A"),
        episode([0, 0, 0], anchors=["s", "s", "t"], group="A"),
        episode([0, 1], anchors=["s", "t"], group="A"),
        episode([5, 5], anchors=["s", "t"], group="A", failed=True),
        episode([0, 3], anchors=["u", None], group="B"),
        episode([1], anchors=["v"], group="C"),
        episode([1], anchors=["v"], group="C"),
    ]


def test_metrics_counted_by_hand():
    metrics = credit_metrics(batch())
    # 12 healthy turns; step groups: (A,s) 4, (A,t) 3, (A,g) 1, (B,u) 1, (B,None) 1, (C,v) 2.
    assert metrics["credit/step_grouped_turn_share"] == pytest.approx((4 + 3 + 2) / 12)
    assert metrics["credit/step_group_size_mean"] == pytest.approx(12 / 6)
    # Groups B (one episode) and C (equal returns) have all-zero episode advantages; A does not.
    assert metrics["credit/zero_episode_advantage_group_share"] == pytest.approx(2 / 3)
    assert metrics["credit/failed_episode_share"] == pytest.approx(1 / 7)
    assert metrics["credit/anchorless_turn_share"] == pytest.approx(1 / 12)
    assert "credit/advantage_mean" not in metrics


def test_advantage_summaries_skip_failed_episodes():
    episodes = batch()
    advantages = compute_advantages(episodes, estimator={"name": "gigpo", "invalid_penalty": 0.0})
    metrics = credit_metrics(episodes, advantages=advantages)
    assert metrics["credit/advantage_abs_max"] > 0
    # Zero-advantage turns: B's two turns and C's two turns (A^E 0, and C's v group has equal R_t).
    assert metrics["credit/zero_advantage_turn_share"] == pytest.approx(4 / 12)


def test_shaped_rewards_decide_which_groups_are_degenerate():
    episodes = [episode([1]), episode([1])]
    assert credit_metrics(episodes)["credit/zero_episode_advantage_group_share"] == 1.0
    metrics = credit_metrics(episodes, turn_rewards=[np.array([2.0]), np.array([1.0])])
    assert metrics["credit/zero_episode_advantage_group_share"] == 0.0


def test_empty_batch_gives_zeros_not_errors():
    assert set(credit_metrics([]).values()) == {0.0}


# ---- agreement with GRPO ----------------------------------------------------------------------


def _won_and_lost():
    """One group: a win [0, 1] and a loss [0, 0]; GRPO gives g = 1/sqrt(2) to each turn of
    the win and -g to each of the loss."""
    return [episode([0.0, 1.0], group=0), episode([0.0, 0.0], group=0)]


def _agreement(ours):
    from creditgym.credit import agreement_with_grpo

    episodes = _won_and_lost()
    rewards = [np.array([0.0, 1.0]), np.array([0.0, 0.0])]
    return agreement_with_grpo(episodes, rewards, [np.array(a) for a in ours])


def test_a_scaled_copy_of_grpo_agrees_fully_and_differs_nowhere_beyond_scale():
    metrics = _agreement([[0.35, 0.35], [-0.35, -0.35]])
    assert metrics["credit/grpo_corr"] == pytest.approx(1.0)
    assert metrics["credit/grpo_sign_agreement"] == 1.0
    assert metrics["credit/grpo_beyond_scale_share"] == 0.0


def test_flipped_grpo_disagrees_on_every_turn():
    g = 2**-0.5
    metrics = _agreement([[-g, -g], [g, g]])
    assert metrics["credit/grpo_corr"] == pytest.approx(-1.0)
    assert metrics["credit/grpo_sign_agreement"] == 0.0
    assert metrics["credit/grpo_beyond_scale_share"] == 1.0  # no negative scale explains it


def test_step_credit_differs_from_grpo_on_the_turns_it_moves():
    metrics = _agreement([[0.0, 1.0], [-0.5, -0.5]])
    # best fit 0.5 * [1, 1, -1, -1] misses turns 0 and 1 by 0.5 (> 0.1 x std 0.61)
    assert metrics["credit/grpo_beyond_scale_share"] == 0.5
    assert metrics["credit/grpo_sign_agreement"] == 0.75  # turn 0: zero against positive
    assert metrics["credit/grpo_corr"] == pytest.approx(1 / 1.5**0.5)


def test_agreement_leaves_failed_episodes_out_and_omits_an_undefined_correlation():
    from creditgym.credit import agreement_with_grpo

    episodes = [episode([0.0, 1.0], group=0), episode([5.0], group=0, failed=True)]
    rewards = [np.array([0.0, 1.0]), np.array([5.0])]
    metrics = agreement_with_grpo(episodes, rewards, [np.array([0.0, 0.0]), np.array([9.0])])
    # one kept episode in its group: GRPO gives 0, as do we; no variance, no correlation
    assert metrics == {"credit/grpo_sign_agreement": 1.0, "credit/grpo_beyond_scale_share": 0.0}
