"""GiGPO (arXiv:2505.10978) on small batches worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import episode

from creditgym.credit import gigpo_advantages, gigpo_terms
from creditgym.credit.shapers.env import env_rewards


def gigpo(episodes, **options):
    return gigpo_advantages(episodes, env_rewards(episodes, None), **options)


def two_groups():
    """Group A revisits state s inside episode 2; group B reuses the name s for its own state.

    gamma = 0.5, so the discounted returns R_t are:
        ep1 (A): anchors s t g, rewards 0 0 1 -> R = 1, R_t = 0.25 0.5 1
        ep2 (A): anchors s s t, rewards 0 0 0 -> R = 0, R_t = 0    0   0
        ep3 (A): anchors s t,   rewards 0 1   -> R = 1, R_t = 0.5  1
        ep4 (B): anchors s u,   rewards 0 2   -> R = 2, R_t = 1    2
        ep5 (B): anchors s,     rewards 0     -> R = 0, R_t = 0
    """
    return [
        episode([0, 0, 1], anchors=["s", "t", "g"], group="A"),
        episode([0, 0, 0], anchors=["s", "s", "t"], group="A"),
        episode([0, 1], anchors=["s", "t"], group="A"),
        episode([0, 2], anchors=["s", "u"], group="B"),
        episode([0], anchors=["s"], group="B"),
    ]


def test_hand_worked_mean_normalization():
    # A^E: group A returns 1 0 1, mean 2/3 -> 1/3, -2/3, 1/3; group B returns 2 0, mean 1 -> 1, -1.
    # A^S: step group (A, s) = {0.25, 0, 0, 0.5}, mean 0.1875 -> 0.0625, -0.1875, -0.1875, 0.3125
    #      step group (A, t) = {0.5, 0, 1}, mean 0.5 -> 0, -0.5, 0.5
    #      step group (B, s) = {1, 0}, mean 0.5 -> 0.5, -0.5;  (A, g) and (B, u) are singletons -> 0
    # A = A^E + 1.0 * A^S.
    advantages = gigpo(two_groups(), gamma=0.5, normalization="mean", invalid_penalty=0.0)
    expected = [
        [1 / 3 + 0.0625, 1 / 3 + 0.0, 1 / 3 + 0.0],
        [-2 / 3 - 0.1875, -2 / 3 - 0.1875, -2 / 3 - 0.5],
        [1 / 3 + 0.3125, 1 / 3 + 0.5],
        [1 + 0.5, 1 + 0.0],
        [-1 - 0.5],
    ]
    for got, want in zip(advantages, expected):
        assert got == pytest.approx(want, abs=1e-12)


def test_hand_worked_mean_std_normalization():
    # Unbiased std (n - 1), epsilon 1e-6:
    # A^E group A: std of 1 0 1 = sqrt(1/3) = 0.577350 -> +0.577350, -1.154701, +0.577350
    # A^E group B: std of 2 0 = sqrt(2) = 1.414214 -> +0.707107, -0.707107
    # A^S (A, s): deviations 0.0625 -0.1875 -0.1875 0.3125, std sqrt(0.171875 / 3) = 0.239357
    #             -> 0.261115, -0.783346, -0.783346, 1.305577
    # A^S (A, t): deviations 0 -0.5 0.5, std 0.5 -> 0, -1, 1
    # A^S (B, s): deviations 0.5 -0.5, std 0.707107 -> 0.707107, -0.707107
    terms = gigpo_terms(
        two_groups(),
        env_rewards(two_groups(), None),
        gamma=0.5,
        normalization="mean_std",
        invalid_penalty=0.0,
    )
    assert terms.episode_advantage == pytest.approx(
        [0.577350] * 3 + [-1.154701] * 3 + [0.577350] * 2 + [0.707107] * 2 + [-0.707107], abs=1e-5
    )
    assert terms.step_advantage == pytest.approx(
        [0.261115, 0.0, 0.0, -0.783346, -0.783346, -1.0, 1.305577, 1.0, 0.707107, 0.0, -0.707107],
        abs=1e-5,
    )
    assert terms.advantage == pytest.approx(terms.episode_advantage + terms.step_advantage)


def test_step_weight_omega_scales_the_step_advantage():
    rewards = env_rewards(two_groups(), None)
    terms = gigpo_terms(two_groups(), rewards, gamma=0.5, step_weight=0.25)
    assert terms.advantage == pytest.approx(terms.episode_advantage + 0.25 * terms.step_advantage)


def test_state_revisited_within_one_episode_joins_the_step_group():
    terms = gigpo_terms(two_groups(), env_rewards(two_groups(), None))
    # Turns 0 and 1 of episode 2 (flat indices 3 and 4) are both in state s of group A,
    # with turn 0 of episodes 1 and 3; group B's s is another step group.
    step_group = terms.step_group
    assert step_group[0] == step_group[3] == step_group[4] == step_group[6]
    assert step_group[8] != step_group[0]


def penalty_pair(valid_first: list[bool]):
    """Two episodes through states s, t (gamma 1): ep1 reaches reward 1, ep2 gets 0."""
    return [
        episode([0, 1], anchors=["s", "t"], valid=valid_first),
        episode([0, 0], anchors=["s", "t"]),
    ]


def test_invalid_action_penalty_enters_both_levels_of_the_invalid_turn():
    # ep1's first action was invalid, penalty 0.1, mean normalization, gamma 1:
    # A^E: returns 1, 0 -> 0.5, -0.5; the invalid turn's score is 0.1 lower -> 0.4.
    # A^S (s): scores R_t - penalty = 1 - 0.1 = 0.9 and 0 -> mean 0.45 -> +0.45, -0.45.
    # A^S (t): 1 and 0 -> +0.5, -0.5.
    episodes = penalty_pair(valid_first=[False, True])
    advantages = gigpo(episodes, gamma=1.0, invalid_penalty=0.1)
    assert advantages[0] == pytest.approx([0.4 + 0.45, 0.5 + 0.5])
    assert advantages[1] == pytest.approx([-0.5 - 0.45, -0.5 - 0.5])
    no_penalty = gigpo(episodes, gamma=1.0, invalid_penalty=0.0)
    assert no_penalty[0] == pytest.approx([1.0, 1.0])


def test_invalid_action_penalty_is_not_discounted_into_earlier_turns():
    # As in verl-agent, the penalty is taken off the invalid turn's own R_t, not added to
    # the rewards before discounting: the valid first turn keeps A^S = 0.5 exactly.
    episodes = penalty_pair(valid_first=[True, False])
    terms = gigpo_terms(episodes, env_rewards(episodes, None), gamma=0.9, invalid_penalty=0.1)
    assert terms.step_advantage[0] == pytest.approx(0.45)  # (0.9 - 0) / 2, untouched by the penalty
    assert terms.step_advantage[1] == pytest.approx(0.45)  # (1 - 0.1 - 0) / 2
    assert terms.episode_advantage[:2] == pytest.approx([0.5, 0.4])


def test_penalty_is_not_blown_up_by_a_zero_std_group():
    # Both episodes return 0: the group std is 0. The penalty is subtracted after normalising
    # (see gigpo.py, difference 3), so it stays -0.1 rather than -0.1 / 1e-6.
    episodes = [episode([0, 0], valid=[True, False]), episode([0, 0])]
    terms = gigpo_terms(episodes, env_rewards(episodes, None), normalization="mean_std")
    assert terms.episode_advantage.tolist() == pytest.approx([0.0, -0.1, 0.0, 0.0])


def test_default_options_are_the_papers():
    # gamma 0.95, omega 1, F_norm = 1, penalty 0.1: ep1 turn 0 has R_t = 0.95, ep2 turn 0 has 0.
    episodes = [episode([0, 1], anchors=["s", "a"]), episode([0, 0], anchors=["s", "b"])]
    advantages = gigpo(episodes)
    assert advantages[0] == pytest.approx([0.5 + 0.475, 0.5])
    assert advantages[1] == pytest.approx([-0.5 - 0.475, -0.5])


def test_by_default_an_invalid_turn_loses_0_1_and_only_equal_anchors_share_a_step_group():
    # the hand-worked numbers of the penalty test above, with the penalty left to its default
    advantages = gigpo(penalty_pair(valid_first=[False, True]), gamma=1.0)
    assert advantages[0] == pytest.approx([0.4 + 0.45, 0.5 + 0.5])
    # anchors 0.975 alike (difflib), above the 0.95 threshold, stay two singleton step groups:
    # no step advantage, only the episodes' -0.5 / +0.5 (grouped, they would add -0.5 / +0.5)
    near = [episode([0], anchors=["a" * 40]), episode([1], anchors=["a" * 39 + "b"])]
    assert gigpo_terms(near, env_rewards(near, None)).step_advantage.tolist() == [0.0, 0.0]
    assert [a.tolist() for a in gigpo(near)] == [[-0.5], [0.5]]


def test_singleton_step_groups_give_zero_step_advantage():
    episodes = [episode([0, 1], group="g"), episode([1, 0], group="g")]  # no anchor repeats
    terms = gigpo_terms(episodes, env_rewards(episodes, None))
    assert (terms.step_advantage == 0.0).all()


def test_turns_without_an_anchor_are_never_grouped():
    episodes = [episode([0, 1], anchors=[None, None]), episode([0, 0], anchors=[None, None])]
    terms = gigpo_terms(episodes, env_rewards(episodes, None))
    assert len(set(terms.step_group.tolist())) == 4
    assert (terms.step_advantage == 0.0).all()


def test_unhashable_anchors_are_grouped_by_value():
    episodes = [
        episode([0, 1], anchors=[{"room": [1, 2]}, np.array([1, 2])]),
        episode([0, 0], anchors=[{"room": [1, 2]}, np.array([1, 3])]),
    ]
    terms = gigpo_terms(episodes, env_rewards(episodes, None))
    assert terms.step_group[0] == terms.step_group[2]
    assert terms.step_group[1] != terms.step_group[3]


def test_reference_code_variant_takes_episode_statistics_over_turns():
    # episode_stats="turns" (verl-agent's compute_mean_std_cross_all_data=True): the group
    # mean is over every turn's score: ep1 has 2 turns of return 1, ep2 one turn of return 0
    # -> mean 2/3 -> A^E = 1/3, 1/3, -2/3 (the paper's trajectory mean 0.5 gives 0.5, -0.5).
    # With ep1's second turn invalid the scores are 1, 0.9, 0 -> mean 0.63333.
    episodes = [episode([0, 1]), episode([0])]
    rewards = env_rewards(episodes, None)
    by_turns = gigpo_terms(episodes, rewards, episode_stats="turns", invalid_penalty=0.0)
    by_trajectories = gigpo_terms(
        episodes, rewards, episode_stats="trajectories", invalid_penalty=0.0
    )
    assert by_turns.episode_advantage == pytest.approx([1 / 3, 1 / 3, -2 / 3])
    assert by_trajectories.episode_advantage == pytest.approx([0.5, 0.5, -0.5])
    episodes[0].turns[1].valid = False
    penalised = gigpo_terms(episodes, rewards, episode_stats="turns", invalid_penalty=0.1)
    assert penalised.episode_advantage == pytest.approx([1 - 1.9 / 3, 0.9 - 1.9 / 3, -1.9 / 3])


def test_failed_episode_gets_zero_and_changes_nobody_else():
    clean = two_groups()
    crashed = episode([50, 50], anchors=["s", "t"], group="A", failed=True)
    with_crash = clean[:2] + [crashed] + clean[2:]
    before = gigpo(clean, gamma=0.5)
    after = gigpo(with_crash, gamma=0.5)
    assert after[2].tolist() == [0.0, 0.0]
    for got, want in zip(after[:2] + after[3:], before):
        assert got == pytest.approx(want, abs=1e-12)


def test_group_of_only_failed_episodes_gets_zero():
    episodes = [episode([1, 0], failed=True), episode([0, 1], failed=True)]
    assert [a.tolist() for a in gigpo(episodes)] == [[0.0, 0.0], [0.0, 0.0]]


def test_similarity_grouping_is_greedy_against_each_clusters_first_member():
    # With threshold 0.9: ratio(a, b) = 0.9 and ratio(b, c) = 0.9 but ratio(a, c) = 0.8, so
    # b joins a's cluster while c, compared with a only, starts its own.
    a, b, c = "a" * 20, "a" * 18 + "bb", "a" * 16 + "bbbb"
    episodes = [episode([0], anchors=[a]), episode([1], anchors=[b]), episode([2], anchors=[c])]
    rewards = env_rewards(episodes, None)
    exact = gigpo_terms(episodes, rewards)
    similar = gigpo_terms(episodes, rewards, similarity=True, similarity_threshold=0.9)
    assert len(set(exact.step_group.tolist())) == 3
    assert similar.step_group[0] == similar.step_group[1] != similar.step_group[2]
    # The step group {a, b} has R_t 0 and 1 (one turn each) -> A^S = -0.5, +0.5; c alone -> 0.
    assert similar.step_advantage == pytest.approx([-0.5, 0.5, 0.0])


def test_similarity_never_merges_across_episode_groups():
    episodes = [
        episode([0], anchors=["kitchen"], group=1),
        episode([1], anchors=["kitchen"], group=2),
    ]
    terms = gigpo_terms(episodes, env_rewards(episodes, None), similarity=True)
    assert terms.step_group[0] != terms.step_group[1]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"gamma": 1.5}, r"gamma=1.5 must be in \[0, 1\]"),
        ({"normalization": "std"}, r"normalization='std' is not one of 'mean', 'mean_std'"),
        (
            {"episode_stats": "steps"},
            r"episode_stats='steps' is not one of 'trajectories', 'turns'",
        ),
        ({"similarity_threshold": 0.0}, r"similarity_threshold=0.0 must be in \(0, 1\]"),
    ],
)
def test_bad_option_values_are_errors_saying_what_is_allowed(options, message):
    with pytest.raises(ValueError, match=message):
        gigpo([episode([1])], **options)


def test_the_bounds_of_gamma_and_the_similarity_threshold_are_allowed():
    for options in ({"gamma": 0.0}, {"gamma": 1.0}, {"similarity_threshold": 1.0}):
        gigpo([episode([1])], similarity=True, **options)
    with pytest.raises(ValueError, match=r"similarity_threshold=1.5 must be in \(0, 1\]"):
        gigpo([episode([1])], similarity_threshold=1.5)


def test_a_bad_choice_names_gigpo():
    for options in ({"normalization": "std"}, {"episode_stats": "steps"}):
        with pytest.raises(ValueError, match=r"^gigpo: "):
            gigpo([episode([1])], **options)


def test_every_turn_records_its_step_group_size_and_both_terms_for_the_viewer():
    episodes = two_groups()
    episodes.insert(2, episode([3, 3], anchors=["s", "t"], group="A", failed=True))
    gigpo(episodes, gamma=0.5)
    terms = gigpo_terms(episodes, env_rewards(episodes, None), gamma=0.5)
    flat = [(e, t) for e, ep in enumerate(episodes) for t in range(len(ep))]
    sizes = np.bincount(terms.step_group[terms.step_group >= 0])
    for i, (e, t) in enumerate(flat):
        details = episodes[e].turn_credit_details(t)["gigpo"]
        group = int(terms.step_group[i])
        assert details == {
            "step_group": group,
            "step_group_size": int(sizes[group]) if group >= 0 else 0,
            "episode_advantage": pytest.approx(float(terms.episode_advantage[i])),
            "step_advantage": pytest.approx(float(terms.step_advantage[i])),
        }
    # group A's state s: ep1 t0, ep2 t0 and t1, ep3 t0 (the failed episode is in no group)
    assert episodes[0].turn_credit_details(0)["gigpo"]["step_group_size"] == 4
    assert episodes[2].turn_credit_details(0)["gigpo"]["step_group"] == -1


def test_a_batch_of_failed_episodes_records_no_step_group_and_a_size_of_integer_0():
    episodes = [episode([1, 0], failed=True), episode([0], failed=True)]
    gigpo(episodes)
    details = [ep.turn_credit_details(t)["gigpo"] for ep in episodes for t in range(len(ep))]
    assert [(d["step_group"], d["step_group_size"]) for d in details] == [(-1, 0)] * 3
    assert all(type(d["step_group_size"]) is int for d in details)  # the log writes 0, not -0.0


def test_nested_and_set_anchors_group_by_value_at_every_depth():
    episodes = [
        episode([0, 1], anchors=[{"room": {"items": [1, 2]}}, frozenset({"a", "b"})]),
        episode([0, 0], anchors=[{"room": {"items": [1, 2]}}, {"a", "b"}]),
        episode([0, 0], anchors=[{"room": {"items": [1, 3]}}, [["a"], ["b"]]]),
        episode([0, 0], anchors=[np.array([[1, 2]]), np.array([1, 2])]),
    ]
    group = gigpo_terms(episodes, env_rewards(episodes, None)).step_group.tolist()
    assert group[0] == group[2]  # equal nested dicts
    assert group[1] == group[3]  # a frozenset and a set of the same members
    assert len({group[0], group[4], group[6]}) == 3  # [1, 2] vs [1, 3] deep inside
    assert group[5] != group[7]  # nested lists vs a set
    assert group[6] != group[7]  # arrays of other shapes are other states


def test_sets_of_other_members_are_other_states():
    episodes = [episode([0], anchors=[{"a"}]), episode([1], anchors=[{"b"}])]
    group = gigpo_terms(episodes, env_rewards(episodes, None)).step_group.tolist()
    assert group[0] != group[1]


@pytest.mark.parametrize(
    "anchor, spelled",
    [
        (np.array([1, 2]), ["ndarray", [2], [1, 2]]),  # the array's key as a list
        ({"room": "kitchen"}, [["room", "kitchen"]]),  # a dict as its pairs
        ({"a"}, [["a"]]),
    ],
)
def test_a_list_that_spells_another_kinds_key_is_another_state(anchor, spelled):
    episodes = [episode([0], anchors=[anchor]), episode([1], anchors=[spelled])]
    group = gigpo_terms(episodes, env_rewards(episodes, None)).step_group.tolist()
    assert group[0] != group[1]


def test_a_list_and_a_tuple_of_the_same_items_are_one_state():
    episodes = [episode([0], anchors=[[1, (2, 3)]]), episode([1], anchors=[(1, [2, 3])])]
    group = gigpo_terms(episodes, env_rewards(episodes, None)).step_group.tolist()
    assert group[0] == group[1]


def test_similarity_merges_anchors_exactly_at_the_threshold():
    # "the kitchen" vs "the kitchens": every ratio (real quick, quick, full) is 2 * 11 / 23
    episodes = [episode([0], anchors=["the kitchen"]), episode([1], anchors=["the kitchens"])]
    rewards = env_rewards(episodes, None)
    at = gigpo_terms(episodes, rewards, similarity=True, similarity_threshold=2 * 11 / 23)
    assert at.step_group[0] == at.step_group[1]
    above = gigpo_terms(episodes, rewards, similarity=True, similarity_threshold=0.96)
    assert above.step_group[0] != above.step_group[1]


def test_similarity_needs_the_full_ratio_not_just_the_same_letters():
    # the same letters (quick ratios 1.0) in another order: ratio 22/34 < 0.95
    anchors = ["the kitchen table", "table the kitchen"]
    episodes = [episode([float(i)], anchors=[a]) for i, a in enumerate(anchors)]
    terms = gigpo_terms(episodes, env_rewards(episodes, None), similarity=True)
    assert terms.step_group[0] != terms.step_group[1]


def test_similarity_clusters_count_every_distinct_anchor():
    # "the kitchen table" and its two one-character variants: ratio 34/35 = 0.97 >= 0.95
    anchors = [
        "the kitchen table",
        "the kitchen table!",
        "the garden shed",
        "the garage door",
        "the kitchen table?",
    ]
    episodes = [episode([float(i)], anchors=[a]) for i, a in enumerate(anchors)]
    terms = gigpo_terms(episodes, env_rewards(episodes, None), similarity=True)
    group = terms.step_group.tolist()
    assert group[0] == group[1] == group[4]
    assert len({group[0], group[2], group[3]}) == 3
    assert terms.n_step_groups == 3
