"""The tree and vine estimators on hand-made batches, values worked out here.

A tree node is the action sequence from a group's start; its value is the mean return of the
episodes (leaves) through it; a turn's advantage is V(child after its action) - V(node before).
Vine's advantage is r_t + gamma * V(s_t+1) - V(s_t) from recorded Monte-Carlo values.
"""

from __future__ import annotations

import numpy as np
import pytest

from creditgym.credit import compute_advantages
from creditgym.credit.estimators.tree import normalize_trained_turns
from creditgym.trajectory import Episode, Turn


def _episode(actions, rewards, group="g", failed=False, copied=0):
    turns = [
        Turn(observation=f"o{t}", action=a, reward=r)
        for t, (a, r) in enumerate(zip(actions, rewards))
    ]
    metadata = {"branch_prefix_turns": copied} if copied else {}
    return Episode(turns=turns, group_id=group, failed=failed, metadata=metadata, task_id="t")


def _tree_batch():
    """Group g (4 leaves and a failed episode) and group h (one leaf):

    g: root (R: 1, 1, 1, 0 -> V 0.75)
       a (V 1) -- x: E1 R=1       b (V 0.5) -- z (V 0.5): E3 R=1
               -- y: E2 R=1                            -- w: E4 R=0
    """
    return [
        _episode(["a", "x"], [0, 1]),  # E1
        _episode(["a", "y"], [0.5, 0.5]),  # E2
        _episode(["b", "z"], [0, 1]),  # E3
        _episode(["b", "z", "w"], [0, 0, 0]),  # E4
        _episode(["a", "x"], [5, 5], failed=True),  # no leaf
        _episode(["a", "x"], [0, 0], group="h"),  # alone in its tree
    ]


def test_tree_advantage_is_the_child_value_minus_the_node_value():
    advantages = compute_advantages(_tree_batch(), estimator="tree")
    expected = [
        [1 - 0.75, 1 - 1],  # E1: root -> a, a -> ax
        [1 - 0.75, 1 - 1],  # E2
        [0.5 - 0.75, 0.5 - 0.5],  # E3: root -> b, b -> bz
        [0.5 - 0.75, 0.5 - 0.5, 0 - 0.5],  # E4: ..., bz -> bzw
        [0, 0],  # failed
        [0, 0],  # a tree of one path compares nothing
    ]
    for got, want in zip(advantages, expected):
        assert got.tolist() == pytest.approx(want)


def test_tree_node_values_use_the_turn_rewards_given_not_the_env_rewards():
    episodes = _tree_batch()[:2]  # E1, E2 share node a, then split
    advantages = compute_advantages(episodes, estimator="tree", shapers=["env"])
    assert advantages[0].tolist() == pytest.approx([0.0, 0.0])  # both return 1
    from creditgym.credit.estimators.tree import tree_advantages

    shaped = tree_advantages(episodes, [np.array([0.0, 3.0]), np.array([0.0, 1.0])])
    assert shaped[0].tolist() == pytest.approx([0.0, 3 - 2])  # V(a) = (3 + 1) / 2
    assert shaped[1].tolist() == pytest.approx([0.0, 1 - 2])


def test_tree_global_term_and_leaf_scaling_follow_treerl():
    advantages = compute_advantages(
        _tree_batch(), estimator={"name": "tree", "global_weight": 1.0, "leaf_scaling": True}
    )
    # E1 turn 0: (LA + GA) / sqrt(|L(a)|) = ((1 - 0.75) + (1 - 0.75)) / sqrt(2)
    assert advantages[0][0] == pytest.approx(0.5 / np.sqrt(2))
    # E4 turn 2: ((0 - 0.5) + (0 - 0.75)) / sqrt(1)
    assert advantages[3][2] == pytest.approx(-1.25)


def test_tree_details_name_the_node_and_child_values_for_the_viewer():
    episodes = _tree_batch()
    compute_advantages(episodes, estimator="tree")
    assert episodes[3].turns[2].credit_details["tree"] == {
        "value": 0.5,
        "child_value": 0.0,
        "child_leaves": 1,
    }


def test_tree_mean_std_normalisation_leaves_copied_prefixes_out_of_the_statistics():
    parent = _episode(["a", "x"], [0, 1])
    child = _episode(["a", "y"], [0, 0], copied=1)  # its turn "a" is the parent's copy
    raw = [[0.0, 0.5], [0.0, -0.5]]  # root = a (V 0.5), then 1 - 0.5 and 0 - 0.5
    assert [a.tolist() for a in compute_advantages([parent, child], estimator="tree")] == raw
    normalised = compute_advantages(
        [parent, child], estimator={"name": "tree", "normalization": "mean_std"}
    )
    trained = np.array([0.0, 0.5, -0.5])  # the child's copied turn is not in the statistics
    mean, std = trained.mean(), trained.std()
    assert normalised[0].tolist() == pytest.approx((np.array(raw[0]) - mean) / (std + 1e-6))
    assert normalised[1][1] == pytest.approx((-0.5 - mean) / (std + 1e-6))


def _valued(rewards, values, gamma=None, failed=False):
    turns = [Turn(observation=f"o{t}", action="a", reward=r) for t, r in enumerate(rewards)]
    for t, turn in enumerate(turns):
        if values is not None:
            turn.mc_value = values[t]
            turn.next_mc_value = values[t + 1] if t + 1 < len(values) else 0.0
    metadata = {"vine": {"k": 4, "gamma": gamma}} if gamma is not None else {}
    return Episode(turns=turns, failed=failed, metadata=metadata)


def test_vine_advantage_is_the_td_error_on_monte_carlo_values():
    episode = _valued([0, 0, 1], [0.5, 0.25, 1.0], gamma=1.0)
    [advantage] = compute_advantages([episode], estimator="vine")
    # r + V(next) - V: 0 + 0.25 - 0.5, 0 + 1 - 0.25, 1 + 0 (terminal) - 1
    assert advantage.tolist() == pytest.approx([-0.25, 0.75, 0.0])
    assert episode.turns[1].credit_details["vine"] == {"value": 0.25, "next_value": 1.0}


def test_vine_discounts_the_next_value_with_the_rollouts_gamma():
    episode = _valued([0, 0, 1], [0.5, 0.25, 1.0], gamma=0.5)
    [advantage] = compute_advantages([episode], estimator="vine")
    assert advantage.tolist() == pytest.approx([0.125 - 0.5, 0.5 - 0.25, 1 - 1.0])


def test_vine_gives_failed_episodes_zero_without_values():
    episodes = [_valued([1.0], [0.25], gamma=1.0), _valued([0.0, 0.0], None, failed=True)]
    advantages = compute_advantages(episodes, estimator="vine")
    assert advantages[0].tolist() == [0.75] and advantages[1].tolist() == [0.0, 0.0]


def test_vine_without_values_says_to_turn_on_vine_rollouts():
    with pytest.raises(ValueError, match="rollout.branch.mode=vine"):
        compute_advantages([_valued([0.0, 1.0], None)], estimator="vine")


def test_vine_without_values_names_the_turn_and_both_fixes():
    episode = _valued([0.0, 1.0], None)
    episode.task_id = "task-7"
    with pytest.raises(ValueError) as error:
        compute_advantages([episode], estimator="vine")
    assert str(error.value) == (
        "the vine estimator needs Monte-Carlo values of every turn's state, and turn 0 of "
        "episode task-7 has none; set rollout.branch.mode=vine (branch rollouts record them), "
        "or choose another credit.estimator"
    )


def test_vine_normalisation_of_a_single_trained_turn_gives_zero():
    episodes = [_valued([1.0], [0.25], gamma=1.0)]  # raw advantage 0.75, the batch's only turn
    normalised = compute_advantages(
        episodes, estimator={"name": "vine", "normalization": "mean_std"}
    )
    assert normalised[0].tolist() == [0.0]  # (0.75 - 0.75) / (0 + 1e-6)


def test_vine_mean_std_normalisation_standardises_over_the_batch():
    episodes = [_valued([0, 1], [0.5, 1.0], gamma=1.0), _valued([0], [0.25], gamma=1.0)]
    raw = np.array([0.5, 0.0, -0.25])  # 0 + 1 - 0.5, 1 + 0 - 1, 0 + 0 - 0.25
    normalised = compute_advantages(
        episodes, estimator={"name": "vine", "normalization": "mean_std"}
    )
    flat = np.concatenate(normalised)
    assert flat.tolist() == pytest.approx(((raw - raw.mean()) / (raw.std() + 1e-6)).tolist())


def test_normalised_tree_advantages_leave_failed_episodes_at_zero_and_use_the_others_stats():
    episodes = _tree_batch()
    plain = compute_advantages(episodes, estimator="tree")
    normalised = compute_advantages(
        episodes, estimator={"name": "tree", "normalization": "mean_std", "epsilon": 0.0}
    )
    trained = np.concatenate([a for a, e in zip(plain, episodes) if not e.failed])
    mean, std = trained.mean(), trained.std()
    assert normalised[4].tolist() == [0.0, 0.0]  # the failed episode
    for a, b, e in zip(plain, normalised, episodes):
        if not e.failed:
            np.testing.assert_allclose(b, (a - mean) / std)


def test_normalising_a_batch_of_only_failed_episodes_changes_nothing():
    episodes = [_episode(["a"], [1.0], failed=True), _episode(["b"], [0.0], failed=True)]
    advantages = compute_advantages(
        episodes, estimator={"name": "tree", "normalization": "mean_std"}
    )
    assert [a.tolist() for a in advantages] == [[0.0], [0.0]]


def test_normalising_without_a_trained_turn_hands_the_advantages_back_untouched():
    episodes = [_episode(["a"], [1.0], failed=True), _episode(["b"], [0.0], failed=True)]
    given = [np.array([2.0]), np.array([-1.0])]
    normalised = normalize_trained_turns(episodes, given, 1e-6)  # no statistics to take
    assert [a.tolist() for a in normalised] == [[2.0], [-1.0]]
