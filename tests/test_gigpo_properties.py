"""Properties GiGPO (and GRPO) must have on any batch, checked on generated batches."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import episode
from hypothesis import given, settings
from hypothesis import strategies as st

from creditgym.credit import gigpo_advantages, gigpo_terms, grpo_advantages
from creditgym.credit.shapers.env import env_rewards

SETTINGS = settings(max_examples=60, deadline=None)
options_strategy = st.fixed_dictionaries(
    {
        "gamma": st.sampled_from([0.5, 0.95, 1.0]),
        "normalization": st.sampled_from(["mean", "mean_std"]),
        "episode_stats": st.sampled_from(["trajectories", "turns"]),
        "invalid_penalty": st.sampled_from([0.0, 0.1]),
        "step_weight": st.sampled_from([0.5, 1.0]),
    }
)


@st.composite
def batches(
    draw,
    equal_lengths_in_group: bool = False,
    anchors_with_time: bool = False,
    max_episodes: int = 4,
):
    """1-3 groups of 1-max_episodes episodes; rewards in halves; anchors from 3 states."""
    episodes = []
    for group in range(draw(st.integers(1, 3))):
        group_length = draw(st.integers(1, 4))
        for _ in range(draw(st.integers(1, max_episodes))):
            length = group_length if equal_lengths_in_group else draw(st.integers(1, 4))
            rewards = draw(
                st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=length, max_size=length)
            )
            states = draw(st.lists(st.sampled_from("abc"), min_size=length, max_size=length))
            anchors = [(t, s) for t, s in enumerate(states)] if anchors_with_time else states
            valid = draw(st.lists(st.booleans(), min_size=length, max_size=length))
            episodes.append(episode(rewards, anchors=anchors, group=group, valid=valid))
    return episodes


def gigpo(episodes, rewards=None, **options):
    return gigpo_advantages(
        episodes, rewards if rewards is not None else env_rewards(episodes, None), **options
    )


def assert_same(left, right, atol=1e-9):
    assert len(left) == len(right)
    for a, b in zip(left, right):
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)


@SETTINGS
@given(batches(), options_strategy, st.randoms(use_true_random=False))
def test_permuting_episodes_permutes_advantages(episodes, options, random):
    order = list(range(len(episodes)))
    random.shuffle(order)
    advantages = gigpo(episodes, **options)
    permuted = gigpo([episodes[i] for i in order], **options)
    assert_same(permuted, [advantages[i] for i in order])
    grpo = grpo_advantages(episodes, env_rewards(episodes, None))
    grpo_permuted = grpo_advantages(
        [episodes[i] for i in order], env_rewards([episodes[i] for i in order], None)
    )
    assert_same(grpo_permuted, [grpo[i] for i in order])


@SETTINGS
@given(
    batches(equal_lengths_in_group=True, anchors_with_time=True),
    options_strategy,
    st.sampled_from([-1.0, 0.5, 3.0]),
)
def test_constant_added_to_every_reward_changes_nothing_when_compared_turns_are_equally_far_from_the_end(  # noqa: E501 (a test's name cannot be wrapped)
    episodes, options, constant
):
    # Adding c to every reward adds c * T to R(tau) and c * sum_{k < T - t} gamma^k to R_t.
    # Both cancel in the group-relative terms exactly when the episodes of a group have the
    # same length T and same-anchor turns have the same t (here the anchor includes t).
    # The invalid penalty does not depend on the rewards, so it cancels too.
    rewards = env_rewards(episodes, None)
    shifted = [r + constant for r in rewards]
    assert_same(gigpo(episodes, shifted, **options), gigpo(episodes, rewards, **options), atol=1e-6)


def test_constant_added_to_every_reward_does_change_advantages_of_unequal_lengths():
    # Not a bug, a fact worth pinning: returns 1 (two turns) and 1 (one turn) are equal, but
    # +1 per turn makes them 3 and 2, so A^E goes from 0, 0 to +0.5, -0.5 (mean normalization).
    episodes = [episode([0, 1]), episode([1])]
    rewards = env_rewards(episodes, None)
    plain = gigpo(episodes, rewards, invalid_penalty=0.0)
    shifted = gigpo(episodes, [r + 1.0 for r in rewards], invalid_penalty=0.0)
    assert [a.tolist() for a in plain] == [[0.0, 0.0], [0.0]]
    assert [a.tolist() for a in shifted] == [[0.5, 0.5], [-0.5]]


@SETTINGS
@given(batches(), options_strategy, st.sampled_from([0.5, 2.0, 10.0]))
def test_scaling_rewards_changes_nothing_under_mean_std_without_penalty(episodes, options, scale):
    options = {**options, "normalization": "mean_std", "invalid_penalty": 0.0}
    rewards = env_rewards(episodes, None)
    scaled = [scale * r for r in rewards]
    # epsilon = 1e-6 is not scaled; the smallest non-zero std here is about 0.04.
    assert_same(gigpo(episodes, scaled, **options), gigpo(episodes, rewards, **options), atol=1e-3)


@SETTINGS
@given(batches(max_episodes=1), options_strategy)
def test_single_episode_groups_get_zero_except_the_invalid_penalty(episodes, options):
    for e in episodes:  # no state is revisited, so every step group is a singleton too
        for t, turn in enumerate(e.turns):
            turn.info["anchor"] = (id(e), t)
    advantages = gigpo(episodes, **options)
    for e, a in zip(episodes, advantages):
        expected = [0.0 if turn.valid else -options["invalid_penalty"] for turn in e.turns]
        if options["episode_stats"] == "turns":  # the penalty then sits inside the group mean
            expected = np.array(expected) - np.mean(expected)
            if options["normalization"] == "mean_std" and np.ptp(expected) > 0:
                expected = expected / (np.std(expected, ddof=1) + 1e-6)
        np.testing.assert_allclose(a, expected, atol=1e-9)


@SETTINGS
@given(batches(), options_strategy)
def test_without_repeated_anchors_or_penalty_gigpo_equals_grpo(episodes, options):
    for e in episodes:
        for t, turn in enumerate(e.turns):
            turn.info["anchor"] = (id(e), t)
    options = {**options, "invalid_penalty": 0.0, "episode_stats": "trajectories"}
    rewards = env_rewards(episodes, None)
    expected = grpo_advantages(episodes, rewards, normalization=options["normalization"])
    assert_same(gigpo(episodes, rewards, **options), expected)


@pytest.mark.parametrize("normalization", ["mean", "mean_std"])
def test_advantages_of_each_episode_group_sum_to_zero_without_penalty(normalization):
    # A^E sums to zero over a group's episodes, A^S over each step group's turns.
    episodes = [
        episode([0, 1], anchors=["s", "t"]),
        episode([0, 0, 0], anchors=["s", "s", "t"]),
        episode([2], anchors=["s"]),
    ]
    terms = gigpo_terms(
        episodes, env_rewards(episodes, None), normalization=normalization, invalid_penalty=0.0
    )
    per_episode = [terms.episode_advantage[i] for i in (0, 2, 5)]
    assert sum(per_episode) == pytest.approx(0.0, abs=1e-12)
    for group in set(terms.step_group.tolist()):
        assert terms.step_advantage[terms.step_group == group].sum() == pytest.approx(
            0.0, abs=1e-12
        )
