"""The trajectory model: returns, grouping by start state."""

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
