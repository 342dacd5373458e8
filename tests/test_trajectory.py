"""The trajectory model: returns, grouping by start state."""

import numpy as np

from creditgym.trajectory import Episode, Turn, group_episodes, turn_rewards


def _episode(group, rewards, anchor_prefix="s"):
    turns = [
        Turn(observation="o", action="a", reward=r, info={"anchor": f"{anchor_prefix}{i}"})
        for i, r in enumerate(rewards)
    ]
    return Episode(turns=turns, group_id=group)


def test_episode_return_sums_the_env_rewards():
    episode = _episode(0, [0.0, 0.5, 1.0])
    assert episode.episode_return == 1.5
    assert turn_rewards(episode).tolist() == [0.0, 0.5, 1.0]
    assert len(episode) == 3
    assert episode.turns[1].anchor == "s1"


def test_group_episodes_keeps_first_seen_order_of_groups_and_members():
    a1, b1, a2 = _episode("a", [1.0]), _episode("b", [0.0]), _episode("a", [0.0])
    groups = group_episodes([a1, b1, a2])
    assert [g.group_id for g in groups] == ["a", "b"]
    assert groups[0].episodes == [a1, a2]
    assert groups[0].returns.tolist() == [1.0, 0.0]


def test_turn_credit_details_merge_the_turns_own_with_its_row_of_each_column():
    episode = Episode(turns=[Turn("o", "a"), Turn("o", "b")])
    episode.turns[1].credit_details["calm"] = {"verdict": True}
    episode.credit_columns["gigpo"] = {
        "step_group": np.array([4, 7]),
        "step_advantage": np.array([0.25, -0.5]),
    }
    assert episode.turn_credit_details(0) == {"gigpo": {"step_group": 4, "step_advantage": 0.25}}
    details = episode.turn_credit_details(1)
    assert details == {
        "calm": {"verdict": True},
        "gigpo": {"step_group": 7, "step_advantage": -0.5},
    }
    assert type(details["gigpo"]["step_group"]) is int  # plain numbers, ready for JSON
