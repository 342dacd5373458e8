"""Every estimator's bad option is one error that names the estimator, the option and the
choices, whichever estimator it is (the message a user reads to fix a config)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import episode

from creditgym.credit import compute_advantages
from creditgym.trajectory import Episode, Turn

CHOICES = [
    ("grpo", "normalization", "'mean', 'mean_std'"),
    ("gigpo", "normalization", "'mean', 'mean_std'"),
    ("gigpo", "episode_stats", "'trajectories', 'turns'"),
    ("turn_level", "normalization", "'mean', 'mean_std'"),
    ("discounted_group", "normalization", "'joint', 'separate'"),
    ("empg", "normalization", "'mean', 'mean_std'"),
    ("empg", "final_normalization", ""),
    ("reinforce_pp", "baseline", "'group_mean', 'none'"),
    ("tree", "normalization", "'none', 'mean_std'"),
    ("vine", "normalization", "'none', 'mean_std'"),
    ("ppo", "truncated", "'zero', 'last_value'"),
    ("ppo", "critic", "'model', 'head'"),
    ("ppo", "level", "'turn', 'bilevel'"),
]


@pytest.mark.parametrize("name, option, choices", CHOICES)
def test_a_bad_choice_names_the_estimator_the_option_and_the_choices(name, option, choices):
    with pytest.raises(ValueError) as error:
        compute_advantages([episode([1.0])], estimator={"name": name, option: "nonsense"})
    message = str(error.value)
    assert message.startswith(f"{name}: {option}='nonsense' is not one of"), message
    assert choices in message


@pytest.mark.parametrize("gamma", [0.0, 1.0])
def test_turn_level_takes_gamma_at_both_ends_of_its_range(gamma):
    compute_advantages([episode([1.0])], estimator={"name": "turn_level", "gamma": gamma})


@pytest.mark.parametrize("gamma", [-0.1, 1.5])
def test_turn_level_refuses_gamma_outside_zero_one(gamma):
    with pytest.raises(ValueError, match=rf"^turn_level: gamma={gamma} must be in \[0, 1\]"):
        compute_advantages([episode([1.0])], estimator={"name": "turn_level", "gamma": gamma})


def _vine_episode(values, next_values, gamma=None):
    turns = [
        Turn(observation="o", action="a", reward=0.0, mc_value=v, next_mc_value=n)
        for v, n in zip(values, next_values)
    ]
    metadata = {"vine": {"k": 2, "gamma": gamma}} if gamma is not None else {"vine": {"k": 2}}
    return Episode(turns=turns, metadata=metadata)


def test_vine_discounts_with_gamma_one_when_the_rollout_recorded_none():
    advantages = compute_advantages([_vine_episode([0.5], [0.75])], estimator="vine")
    np.testing.assert_allclose(advantages[0], [0.25])  # 0 + 1.0 * 0.75 - 0.5


def test_vine_needs_both_values_of_every_turn():
    for values, next_values in (([0.5], [None]), ([None], [0.5])):
        with pytest.raises(ValueError, match="rollout.branch.mode=vine .*another credit.estimator"):
            compute_advantages([_vine_episode(values, next_values)], estimator="vine")


GAMMA_MESSAGES = {
    "turn_level": "must be in [0, 1] (default 1.0).",
    "reinforce_pp": "must be in [0, 1] (the paper's is 1.0).",
    "rloo": "must be in [0, 1] (the paper's is 1.0).",
    "gigpo": "must be in [0, 1] (the paper uses 0.95).",
}


@pytest.mark.parametrize("name", sorted(GAMMA_MESSAGES))
def test_gamma_is_taken_at_both_ends_and_refused_outside_with_the_papers_value(name):
    for gamma in (0.0, 1.0):
        compute_advantages([episode([1.0])], estimator={"name": name, "gamma": gamma})
    for gamma in (-0.1, 1.5):
        with pytest.raises(ValueError) as error:
            compute_advantages([episode([1.0])], estimator={"name": name, "gamma": gamma})
        assert str(error.value) == f"{name}: gamma={gamma} {GAMMA_MESSAGES[name]}"


def test_reinforce_pp_baseline_of_a_group_of_one_is_its_own_return():
    batch = [
        episode([1.0], group="alone"),
        episode([1.0], group="pair"),
        episode([0.0], group="pair"),
    ]
    advantages = compute_advantages(batch, estimator="reinforce_pp")
    # outcomes minus group means: 0, 0.5, -0.5; whitened (population variance 1/6)
    expected = np.array([0.0, 0.5, -0.5]) / np.sqrt(1 / 6)
    np.testing.assert_allclose(np.concatenate(advantages), expected, rtol=1e-6)


@pytest.mark.parametrize("name", ["rloo", "grpo", "reinforce_pp", "gigpo", "turn_level"])
def test_an_episode_without_turns_at_the_end_of_the_batch_gets_an_empty_advantage(name):
    batch = [episode([1.0]), episode([0.0]), episode([])]
    advantages = compute_advantages(batch, estimator=name)
    assert [len(a) for a in advantages] == [1, 1, 0]


SHAPER_ERRORS = [
    (
        {"name": "info_gain", "gain": "nonsense"},
        "info_gain: gain='nonsense' is not one of 'prob_diff', 'log_prob_diff'.",
    ),
    (
        "info_gain",
        "the info_gain shaper (IGPO) needs `scorer` from the credit context, but none "
        "was given; pass context=CreditContext(scorer=...) to compute_advantages.",
    ),
    (
        "calm",
        "the calm shaper (CALM) needs `judge` from the credit context, but none was given; "
        "pass context=CreditContext(judge=...) to compute_advantages.",
    ),
    (
        "lare",
        "the lare shaper (LaRe) needs `lare` from the credit context, but none was given; "
        "pass context=CreditContext(extras={'lare': ...}) to compute_advantages.",
    ),
]


@pytest.mark.parametrize("spec, message", SHAPER_ERRORS)
def test_a_shaper_without_its_context_or_with_a_bad_choice_says_what_to_pass(spec, message):
    with pytest.raises(ValueError) as error:
        compute_advantages([episode([1.0, 0.0])], [spec], "grpo")
    assert str(error.value) == message


def test_turn_level_pools_each_groups_turn_index_apart_from_every_other():
    """Three groups of two 2-turn episodes: every (group, t) pool normalises on its own, even
    where a key built as group + t or group / length + t would merge two of them."""
    rewards = {
        "a": ([1.0, 0.0], [0.0, 0.0]),
        "b": ([0.0, 2.0], [0.0, 0.0]),
        "c": ([0.0, 5.0], [0.0, 1.0]),
    }
    batch = [episode(r, group=g) for g, pair in rewards.items() for r in pair]
    advantages = compute_advantages(
        batch, estimator={"name": "turn_level", "normalization": "mean"}
    )
    returns = [np.cumsum(r[::-1])[::-1] for pair in rewards.values() for r in pair]
    expected = []
    for i, R in enumerate(returns):
        partner = returns[i ^ 1]  # the other episode of the same group
        expected.append(R - (R + partner) / 2)
    np.testing.assert_allclose(np.concatenate(advantages), np.concatenate(expected))


@pytest.mark.parametrize("name", ["turn_level", "gigpo", "grpo", "rloo", "reinforce_pp"])
def test_an_empty_or_all_failed_batch_gets_no_advantages(name):
    assert compute_advantages([], estimator=name) == []
    failed = [episode([1.0, 0.0], failed=True), episode([0.0], failed=True)]
    assert [a.tolist() for a in compute_advantages(failed, estimator=name)] == [[0.0, 0.0], [0.0]]
