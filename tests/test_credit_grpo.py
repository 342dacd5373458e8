"""GRPO: episode return against its group, broadcast to every turn."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import episode

from creditgym.credit import compute_advantages, discounted_returns, grpo_advantages
from creditgym.credit.shapers.env import env_rewards


def grpo(episodes, **options):
    return grpo_advantages(episodes, env_rewards(episodes, None), **options)


def test_mean_std_uses_the_unbiased_std_like_torch_std_in_verl():
    # Returns 1, 0, 0, 1: mean 0.5; unbiased std = sqrt(4 * 0.25 / 3) = 0.57735.
    # A = +-0.5 / 0.57735 = +-0.866025 (the population std, 0.5, would give +-1).
    episodes = [episode([0, 1]), episode([0]), episode([0, 0, 0]), episode([1])]
    advantages = grpo(episodes, normalization="mean_std")
    assert advantages[0] == pytest.approx([0.866025, 0.866025], abs=1e-5)
    assert advantages[1] == pytest.approx([-0.866025], abs=1e-5)
    assert advantages[2] == pytest.approx([-0.866025] * 3, abs=1e-5)
    assert advantages[3] == pytest.approx([0.866025], abs=1e-5)


def test_mean_normalization_subtracts_the_group_mean_only():
    # Group a: returns 3, 1 -> mean 2 -> +1, -1. Group b: returns 0, 0, 6 -> mean 2 -> -2, -2, 4.
    episodes = [
        episode([1, 2], group="a"),
        episode([0, 0, 6], group="b"),
        episode([1], group="a"),
        episode([0], group="b"),
        episode([0], group="b"),
    ]
    advantages = grpo(episodes, normalization="mean")
    assert [a.tolist() for a in advantages] == [[1.0, 1.0], [4.0, 4.0, 4.0], [-1.0], [-2.0], [-2.0]]


def test_single_episode_group_gets_zero():
    advantages = grpo(
        [episode([5.0, 1.0], group="alone"), episode([1], group="x"), episode([0], group="x")]
    )
    assert advantages[0].tolist() == [0.0, 0.0]


def test_group_of_equal_returns_gets_exactly_zero_not_rounding_noise():
    # Every return is exactly 0.7, but the mean of three 0.7s is 0.6999999999999998 in
    # floating point: a plain x - mean would give 2e-16, divided by std + 1e-6 about 2e-10.
    advantages = grpo([episode([0.25, 0.25, 0.2]), episode([0.7]), episode([0.5, 0.2])])
    assert all((a == 0.0).all() for a in advantages)


def test_failed_episode_gets_zero_and_is_left_out_of_the_group_statistics():
    healthy = [episode([1]), episode([0])]
    crashed = episode([100.0, 100.0], failed=True)
    with_failed = grpo([healthy[0], crashed, healthy[1]], normalization="mean")
    assert with_failed[1].tolist() == [0.0, 0.0]
    assert with_failed[0].tolist() == [0.5] and with_failed[2].tolist() == [-0.5]


def test_unknown_normalization_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match=r"normalization='std'.*'mean', 'mean_std'"):
        grpo([episode([1])], normalization="std")


def test_grpo_is_the_default_estimator_of_compute_advantages():
    episodes = [episode([1]), episode([0])]
    assert np.allclose(np.concatenate(compute_advantages(episodes)), np.concatenate(grpo(episodes)))


def test_discounted_returns_by_hand():
    # gamma 0.5: R_2 = 4, R_1 = 0 + 0.5 * 4 = 2, R_0 = 1 + 0.5 * 2 = 2.
    assert discounted_returns([1.0, 0.0, 4.0], gamma=0.5).tolist() == [2.0, 2.0, 4.0]
    assert discounted_returns([], gamma=0.9).tolist() == []
    with pytest.raises(ValueError, match="1-D"):
        discounted_returns([[1.0]], gamma=0.9)
