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
