"""The shared episode builder (`conftest.episode`) behaves as the credit tests assume."""

from __future__ import annotations

from conftest import episode


def test_default_anchors_never_repeat():
    a, b = episode([0, 0]), episode([0, 0])
    anchors = [turn.anchor for ep in (a, b) for turn in ep.turns]
    assert len(set(anchors)) == 4


def test_discounted_returns_of_integer_rewards_are_not_truncated():
    from creditgym.credit.batch import discounted_returns

    assert discounted_returns([0, 0, 1], 0.5).tolist() == [0.25, 0.5, 1.0]


def test_an_empty_batch_splits_into_no_episodes():
    import numpy as np

    from creditgym.credit.batch import split_by_episode

    assert split_by_episode(np.zeros(0), np.array([], dtype=np.int64)) == []
