"""Credit-fidelity metrics on hand-made episodes with known answers, GRPO's structural zero,
GiGPO's edge on an env whose detours revisit states, and Monte-Carlo advantages on an env whose
values are worked out by hand."""

import math

import numpy as np
import pytest
from _oracle_envs import DetourCorridor
from _oracle_envs import register as register_corridor

import creditgym
from creditgym.agents.factory import load_policy
from creditgym.credit import compute_advantages
from creditgym.credit.fidelity import (
    DEAD_END,
    average_ranks,
    batch_auc,
    progress_labels,
    score_fidelity,
    score_turn_sample,
    sign_agreement,
    spearman,
    within_episode_agreement,
)
from creditgym.envs.registry import list_envs
from creditgym.measure.monte_carlo import monte_carlo_advantages, sample_turns
from creditgym.rollout.collect import collect_episodes, group_tasks, make_envs
from creditgym.trajectory import Episode, Turn


def labelled(costs, group=0):
    """An episode whose turn t goes from cost-to-go costs[t] to costs[t+1]."""
    turns = [
        Turn(observation=f"obs {t}", action="a", cost_to_go=before, next_cost_to_go=after)
        for t, (before, after) in enumerate(zip(costs, costs[1:]))
    ]
    return Episode(turns=turns, group_id=group)


def test_ties_share_the_mean_of_their_ranks():
    assert average_ranks([3, 1, 3, 2]).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_spearman_with_ties_matches_the_hand_computation():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4]; centred: [-1.5, 0, 0, 1.5], [-1.5, -.5, .5, 1.5]
    # rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(math.sqrt(0.9))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


def test_spearman_of_a_constant_is_zero_by_convention():
    assert spearman([0.7, 0.7, 0.7], [1, 0, -1]) == 0.0


def test_within_episode_agreement_averages_episodes_with_two_distinct_labels():
    episodes = [
        labelled([3, 2, 2, 1, 0]),  # labels [1, 0, 1, 1]
        labelled([2, 1, 0]),  # labels [1, 1]: one distinct label, left out
        labelled([1, 0, 1]),  # labels [1, -1]
    ]
    advantages = [np.array([0.5, -0.5, 0.2, 0.3]), np.array([1.0, 2.0]), np.array([-1.0, 1.0])]
    # episode 1: ranks A [4, 1, 2, 3], labels [3, 1, 3, 3]; centred [1.5, -1.5, -.5, .5] and
    # [.5, -1.5, .5, .5]: rho = 3 / sqrt(5 * 3); episode 3: rho = -1
    mean, count = within_episode_agreement(episodes, advantages)
    assert count == 2
    assert mean == pytest.approx((3 / math.sqrt(15) - 1) / 2)


def test_batch_auc_counts_ties_as_one_half():
    # progress turns get 2 and 1, the others 1 and 0: pairs 1 + 1 + 1/2 + 1 of 4
    labels = np.array([1, 1, 0, -1, np.nan])
    assert batch_auc(np.array([2.0, 1.0, 1.0, 0.0, 99.0]), labels) == pytest.approx(0.875)
    assert batch_auc(np.zeros(4), labels[:4]) == pytest.approx(0.5)


def test_sign_agreement_skips_zero_references_and_half_counts_zero_advantages():
    # kept: (1 vs .5) agrees, (-1 vs .5) disagrees, (0 vs -1) counts 1/2
    assert sign_agreement(np.array([1.0, -1.0, 0.0, 2.0]), np.array([0.5, 0.5, -1.0, 0.0])) == 0.5


def test_sign_agreement_counts_agreeing_turns_not_disagreeing_ones():
    # two of three advantages have the reference's sign
    assert sign_agreement(np.array([1.0, 2.0, -1.0]), np.array([0.5, 0.5, 0.5])) == 2 / 3


def test_sign_agreement_against_all_zero_references_is_undefined():
    assert np.isnan(sign_agreement(np.array([1.0, -1.0]), np.zeros(2)))


def test_batch_auc_needs_both_progress_and_other_turns():
    assert np.isnan(batch_auc(np.array([1.0, 2.0]), np.array([1.0, 1.0])))  # only progress
    assert np.isnan(batch_auc(np.array([1.0, 2.0]), np.array([0.0, -1.0])))  # none
    assert np.isnan(batch_auc(np.array([1.0, 2.0]), np.array([np.nan, 1.0])))  # one after NaN


def test_spearman_of_fewer_than_two_values_is_zero_and_lengths_must_match():
    assert spearman([1.0], [2.0]) == 0.0
    with pytest.raises(ValueError, match="one length; got 2 and 3"):
        spearman([1, 2], [1, 2, 3])


def test_ranks_of_a_run_of_ties_at_the_end_stay_with_that_run():
    assert average_ranks([5, 1, 5, 5]).tolist() == [3.0, 1.0, 3.0, 3.0]


def test_a_turn_into_a_dead_end_ranks_below_every_step_and_counts_as_no_progress():
    # a wrong final answer: cost-to-go 1 before, none after (the expert cannot win from there)
    episode = labelled([2, 1, 2])
    episode.turns.append(Turn(observation="o", action="answer", cost_to_go=2, next_cost_to_go=None))
    unknown = Turn(observation="o", action="a", cost_to_go=None, next_cost_to_go=None)
    episode.turns.append(unknown)
    assert progress_labels(episode)[:3].tolist() == [1.0, -1.0, DEAD_END]
    assert np.isnan(progress_labels(episode)[3])
    # advantages ordered like the labels (+1 > -1 > dead end): perfect agreement
    scores = score_fidelity([episode], [np.array([1.0, 0.0, -1.0, 5.0])])
    assert scores.within_episode_spearman == pytest.approx(1.0)
    assert scores.batch_auc == 1.0


def test_zero_share_and_std_are_over_the_non_failed_turns():
    episodes = [labelled([2, 1, 0]), labelled([2, 2, 1]), labelled([5, 9])]
    episodes[2].failed = True
    advantages = [np.array([1.0, 1.0]), np.array([0.0, -1.0]), np.array([42.0])]
    scores = score_fidelity(episodes, advantages)
    assert scores.zero_share == pytest.approx(0.25)
    assert scores.advantage_std == pytest.approx(np.std([1.0, 1.0, 0.0, -1.0]))
    # progress turns (label 1): 1, 1, -1; the wasted one (label 0): 0 -> (1 + 1 + 0) / 3
    assert scores.batch_auc == pytest.approx(2 / 3)
    assert not scores.constant_within_episodes


@pytest.fixture(scope="module")
def corridor_batch():
    """16 tasks x 8 random episodes of a 3-square corridor with a 20-step budget."""
    env_id = register_corridor()
    envs = make_envs(env_id, 16, length=3, max_steps=20)
    return collect_episodes(
        envs, load_policy("random", seed=0), group_tasks(range(16), 8), env_id=env_id
    )


def test_rollouts_record_the_progress_labels_of_the_corridor(corridor_batch):
    labels = {turn.progress for episode in corridor_batch for turn in episode.turns}
    assert labels == {-1, 0, 1}


def test_grpo_within_episode_agreement_is_exactly_zero(corridor_batch):
    advantages = compute_advantages(corridor_batch, ["env"], "grpo")
    scores = score_fidelity(corridor_batch, advantages)
    assert scores.constant_within_episodes
    assert scores.within_episode_spearman == 0.0
    assert scores.episodes_ranked > 100  # zero although most episodes have labels to rank


def test_gigpo_credits_progress_better_than_grpo_where_detours_revisit_states(corridor_batch):
    grpo = score_fidelity(corridor_batch, compute_advantages(corridor_batch, ["env"], "grpo"))
    gigpo = score_fidelity(corridor_batch, compute_advantages(corridor_batch, ["env"], "gigpo"))
    # measured: GiGPO 0.66, GRPO 0.60 (GRPO is above 0.5 only because won episodes hold more
    # progress turns); within episodes GiGPO ranks progress at rho ~0.4, GRPO cannot rank
    assert gigpo.batch_auc > 0.62
    assert gigpo.batch_auc > grpo.batch_auc + 0.03
    assert gigpo.within_episode_spearman > 0.25


def one_step_corridor_episode():
    """At square 0 of a 1-square corridor with a 2-step budget: go west (stay), then go east."""
    turns = [
        Turn(observation="You are at square 0.", action="go west", reward=0.0),
        Turn(observation="You are at square 0.", action="go east", reward=1.0),
    ]
    return Episode(turns=turns, env_id="tests/DetourCorridor-v0", metadata={"seed": 0})


def test_monte_carlo_advantages_match_the_hand_computed_values():
    # Random play over {east, west, look}, one square to the door. With 1 step left:
    # V = 1/3. With 2 steps left: V = 1/3 + 2/3 * 1/3 = 5/9.
    # Turn 0 (west, 2 steps left): Q = 0 + V(1 step left) = 1/3, A = 1/3 - 5/9 = -2/9.
    # Turn 1 (east, 1 step left): Q = 1 (the door; nothing follows), A = 1 - 1/3 = 2/3.
    env_id = register_corridor()
    episodes = [one_step_corridor_episode()]
    mc = monte_carlo_advantages(
        env_id,
        episodes,
        [(0, 0), (0, 1)],
        load_policy("random", seed=1),
        continuations=3000,
        env_kwargs={"length": 1, "max_steps": 2},
    )
    expected_q, expected_v = np.array([1 / 3, 1.0]), np.array([5 / 9, 1 / 3])
    assert np.all(mc.stderr < 0.02)
    assert np.all(np.abs(mc.v - expected_v) < 4 * mc.stderr + 1e-9)
    assert np.all(np.abs(mc.q - expected_q) < 4 * mc.stderr + 1e-9)
    assert np.all(np.abs(mc.advantage - np.array([-2 / 9, 2 / 3])) < 4 * mc.stderr)


def test_monte_carlo_estimates_and_their_standard_error_from_known_returns(monkeypatch):
    """The continuations' returns given: V, Q, A and their standard error by hand."""
    from creditgym.measure import monte_carlo

    env_id = register_corridor()
    draws = {"v": [0.0, 1.0, 1.0, 0.0], "q": [1.0, 1.0, 0.5, 0.5]}
    seen = {}

    def scripted(jobs, policy, prompt_format, envs, gamma):
        seen["history"] = {(job.kind, job.sample): len(job.history) for job in jobs}
        seen["envs"] = len(envs)
        counts = {}
        for job in jobs:  # the k-th continuation of each start state returns draws[kind][k]
            k = counts[job.kind, job.sample] = counts.get((job.kind, job.sample), -1) + 1
            job.value = draws[job.kind][k]
        return 17  # env steps

    monkeypatch.setattr(monte_carlo, "run_continuations", scripted)
    mc = monte_carlo_advantages(
        env_id,
        [one_step_corridor_episode()],
        [(0, 0)],  # "go west" with reward 0, the episode goes on
        load_policy("random", seed=1),
        continuations=4,
        gamma=0.5,
        env_kwargs={"length": 1, "max_steps": 2},
    )
    # V = mean(0, 1, 1, 0) = 0.5; Q = 0 + 0.5 * mean(1, 1, .5, .5) = 0.375; A = -0.125
    assert mc.v.tolist() == [0.5] and mc.q.tolist() == [0.375]
    assert mc.advantage.tolist() == [-0.125]
    # Var_v = 1/3, Var_q = 1/12 (ddof 1): stderr = sqrt((1/3 + 0.25 / 12) / 4)
    assert mc.stderr[0] == pytest.approx(math.sqrt((1 / 3 + 0.25 / 12) / 4))
    assert (mc.turns, mc.continuations, mc.gamma, mc.env_steps) == ([(0, 0)], 4, 0.5, 17)
    assert 0 < mc.seconds < 60  # this call's wall time
    # V continues from s_0 (no turns before it), Q from s_1 (the turn taken before it)
    assert seen["history"] == {("v", 0): 0, ("q", 0): 1}
    assert seen["envs"] == 8  # all 8 continuations at once (batch_size 256)


def test_monte_carlo_replays_on_the_episodes_split(monkeypatch):
    from creditgym.measure import monte_carlo

    splits = []
    real = monte_carlo.make_envs
    monkeypatch.setattr(
        monte_carlo, "make_envs", lambda *a, **kw: splits.append(kw.get("split")) or real(*a, **kw)
    )
    monte_carlo_advantages(
        register_corridor(),
        [one_step_corridor_episode()],
        [(0, 1)],
        load_policy("random", seed=1),
        continuations=2,
        split="train",
        env_kwargs={"length": 1, "max_steps": 2},
    )
    assert splits == ["train", "train"]  # the replay env and the continuations' envs


def test_a_multi_agent_teams_envs_are_made_on_the_rollouts_split(monkeypatch):
    from creditgym.measure import monte_carlo

    splits = []
    real = monte_carlo.make_envs
    monkeypatch.setattr(
        monte_carlo, "make_envs", lambda *a, **kw: splits.append(kw.get("split")) or real(*a, **kw)
    )

    def team(make_env, episodes, turns, policy, **_):
        make_env()  # one env for the team's continuations
        return np.zeros(1), np.zeros(1), np.zeros(1), 0

    monkeypatch.setattr(monte_carlo, "team_monte_carlo", team)
    monte_carlo_advantages(
        "creditgym/CoopHousehold-v0", [], [(0, 0)], None, continuations=2, split="test"
    )
    assert splits == ["test", "test"]  # the replay env (to see it is multi-agent) and the team's


def test_monte_carlo_steps_at_most_256_envs_at_once_unless_told(monkeypatch):
    from creditgym.measure import monte_carlo

    seen = []

    def scripted(jobs, policy, prompt_format, envs, gamma):
        seen.append(len(envs))
        for job in jobs:
            job.value = 0.0
        return 0

    monkeypatch.setattr(monte_carlo, "run_continuations", scripted)
    options = {"continuations": 129, "env_kwargs": {"length": 1, "max_steps": 2}}
    episodes = [one_step_corridor_episode()]
    # turn 0 does not end the episode: 129 V and 129 Q continuations, 258 in all
    monte_carlo_advantages(register_corridor(), episodes, [(0, 0)], None, **options)
    monte_carlo_advantages(register_corridor(), episodes, [(0, 0)], None, batch_size=300, **options)
    assert seen == [256, 258]


def test_monte_carlo_needs_two_continuations_and_samples_all_turns_when_asked_for_more():
    with pytest.raises(ValueError, match="--mc 1: Monte-Carlo needs at least 2 continuations"):
        monte_carlo_advantages("x", [], [], None, continuations=1)
    episodes = [one_step_corridor_episode()]
    assert sample_turns(episodes, 2) == [(0, 0), (0, 1)]  # exactly all of them
    assert sample_turns(episodes, 5) == [(0, 0), (0, 1)]


def test_monte_carlo_refuses_a_replay_that_does_not_reproduce_the_episode():
    env_id = register_corridor()
    episode = one_step_corridor_episode()
    episode.turns[1].observation = "You are at square 7."
    message = "turn 1; Monte-Carlo advantages need an env that is deterministic under its reset"
    with pytest.raises(ValueError, match=message):
        monte_carlo_advantages(
            env_id,
            [episode],
            [(0, 1)],
            load_policy("random"),
            continuations=2,
            env_kwargs={"length": 1, "max_steps": 2},
        )


class NoCloneCorridor(DetourCorridor):
    clone_state = None


def test_monte_carlo_needs_an_env_that_clones_its_state():
    if "tests/NoCloneCorridor-v0" not in list_envs():
        creditgym.register("tests/NoCloneCorridor-v0", NoCloneCorridor)
    with pytest.raises(ValueError, match="cannot clone its state"):
        monte_carlo_advantages(
            "tests/NoCloneCorridor-v0",
            [one_step_corridor_episode()],
            [(0, 0)],
            load_policy("random"),
        )


def test_turn_sample_is_seeded_distinct_and_skips_failed_episodes(corridor_batch):
    episodes = list(corridor_batch[:4])
    episodes[1] = Episode(turns=episodes[1].turns, failed=True)
    sample = sample_turns(episodes, 10, seed=3)
    assert sample == sample_turns(episodes, 10, seed=3)
    assert len(set(sample)) == 10 and all(e != 1 for e, _ in sample)


def test_monte_carlo_of_the_deterministic_expert_on_household_is_zero_advantage():
    # the expert's own action is what it would do anyway: Q = V exactly, with no variance; with
    # gamma 0.9 both are 0.9^(steps left - 1), so the replayed, cloned and restored states are
    # the ones the expert actually met
    env_id = "creditgym/HouseholdEasy-v0"
    episodes = collect_episodes(
        make_envs(env_id, 2, split="train"),
        load_policy("expert"),
        group_tasks([0, 1], 1, split="train"),
        env_id=env_id,
    )
    turns = sample_turns(episodes, 100)
    mc = monte_carlo_advantages(
        env_id, episodes, turns, load_policy("expert"), continuations=2, split="train", gamma=0.9
    )
    assert np.all(np.abs(mc.advantage) < 1e-12) and np.all(mc.stderr < 1e-12)
    steps_left = np.array([len(episodes[e].turns) - t for e, t in turns])
    assert mc.v == pytest.approx(0.9 ** (steps_left - 1))


def test_team_monte_carlo_of_the_expert_team_is_zero_advantage_on_every_agents_turn():
    # multi-agent: the team's advantage of each joint step; the expert team's own joint step is
    # what it would do anyway, so A = 0 and V = 0.9^(steps left - 1) on both agents' turns
    env_id = "creditgym/CoopHousehold-v0"
    kwargs = {"receptacles": 3, "distractors": 0}
    episodes = collect_episodes(
        make_envs(env_id, 1, **kwargs), load_policy("expert"), group_tasks([0], 1), env_id=env_id
    )
    assert {episode.agent_id for episode in episodes} == {"agent_0", "agent_1"}
    turns = sample_turns(episodes, 100)
    mc = monte_carlo_advantages(
        env_id,
        episodes,
        turns,
        load_policy("expert"),
        continuations=2,
        env_kwargs=kwargs,
        gamma=0.9,
    )
    assert np.all(np.abs(mc.advantage) < 1e-12) and np.all(mc.stderr < 1e-12)
    steps_left = np.array([len(episodes[e].turns) - t for e, t in turns])
    assert mc.v == pytest.approx(0.9 ** (steps_left - 1))


def test_score_fidelity_against_monte_carlo_advantages_of_sampled_turns():
    episodes = [labelled([2, 1, 0]), labelled([2, 3, 2])]
    advantages = [np.array([0.5, 0.25]), np.array([-1.0, 0.0])]
    # sampled turns (0, 1), (1, 0), (0, 0) with MC advantages 0.1, -0.2, 0.3: the method's
    # values 0.25, -1.0, 0.5 rank them the same way (rho 1) and agree in sign on all three
    scores = score_fidelity(episodes, advantages, [(0, 1), (1, 0), (0, 0)], [0.1, -0.2, 0.3])
    assert scores.mc_spearman == pytest.approx(1.0)
    assert scores.mc_sign_agreement == 1.0
    flipped = score_fidelity(episodes, advantages, [(0, 1), (1, 0)], [-0.1, 0.2])
    assert flipped.mc_spearman == pytest.approx(-1.0) and flipped.mc_sign_agreement == 0.0


def test_score_fidelity_without_monte_carlo_or_without_kept_turns_says_nan_not_zero():
    episodes = [labelled([2, 1, 0])]
    scores = score_fidelity(episodes, [np.array([1.0, 0.0])])
    assert np.isnan(scores.mc_spearman) and np.isnan(scores.mc_sign_agreement)
    assert scores.as_dict()["mc_spearman"] is None  # JSON-ready
    assert scores.zero_share == 0.5 and scores.advantage_std == 0.5
    episodes[0].failed = True
    empty = score_fidelity(episodes, [np.array([1.0, 0.0])])
    assert np.isnan(empty.zero_share) and np.isnan(empty.advantage_std)


def test_within_episode_agreement_skips_failed_episodes_and_is_zero_with_nothing_to_rank():
    failed = labelled([2, 1, 0])
    failed.failed = True
    episodes = [failed, labelled([1, 0, 1])]  # the second: labels [1, -1]
    mean, count = within_episode_agreement(episodes, [np.zeros(2), np.array([1.0, -1.0])])
    assert (mean, count) == (pytest.approx(1.0), 1)
    assert within_episode_agreement([labelled([2, 1, 0])], [np.array([1.0, 0.0])]) == (0.0, 0)


def _labelled(costs: list[tuple[int | None, int | None]]) -> Episode:
    turns = [Turn(observation="o", action="a", cost_to_go=d, next_cost_to_go=n) for d, n in costs]
    return Episode(turns=turns)


def test_a_sample_of_turns_is_scored_per_episode_over_labelled_turns_only():
    episodes = [
        _labelled([(3, 2), (2, 2), (2, 3)]),  # labels +1, 0, -1
        _labelled([(2, 1), (1, 1), (None, None)]),  # +1, 0, unknown
        _labelled([(2, 2), (2, 2)]),  # one distinct label: not ranked
    ]
    turns = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1)]
    values = [0.9, 0.1, 0.5, 0.2, 0.4, 7.0, 0.3, 0.3]
    within, ranked, auc = score_turn_sample(episodes, turns, values)
    # episode 0: ranks (3, 1, 2) vs (3, 2, 1): rho 0.5; episode 1 without its unknown: -1
    assert within == pytest.approx(-0.25) and ranked == 2
    labels = np.array([1.0, 0.0, -1.0, 1.0, 0.0, np.nan, 0.0, 0.0])
    assert auc == batch_auc(np.array(values), labels)


def test_a_sample_without_two_distinct_labels_in_any_episode_ranks_none():
    episodes = [_labelled([(2, 2), (2, 2)])]
    assert score_turn_sample(episodes, [(0, 0), (0, 1)], [0.1, 0.2])[:2] == (0.0, 0)


def test_q_continues_with_the_history_up_to_and_including_the_sampled_turn(monkeypatch):
    from creditgym.measure import monte_carlo

    seen = {}

    def scripted(jobs, policy, prompt_format, envs, gamma):
        seen.update({(job.kind, job.sample): len(job.history) for job in jobs})
        return 0

    monkeypatch.setattr(monte_carlo, "run_continuations", scripted)
    turns = [
        Turn(observation="You are at square 0.", action="go west", reward=0.0),
        Turn(observation="You are at square 0.", action="go east", reward=0.0),
        Turn(observation="You are at square 1.", action="go east", reward=1.0),
    ]
    episode = Episode(turns=turns, env_id=register_corridor(), metadata={"seed": 0})
    monte_carlo_advantages(
        register_corridor(),
        [episode],
        [(0, 1)],
        load_policy("random", seed=1),
        continuations=2,
        env_kwargs={"length": 2, "max_steps": 5},
    )
    assert seen == {("v", 0): 1, ("q", 0): 2}


def test_a_multi_agent_env_gets_the_teams_estimates_with_their_standard_error(monkeypatch):
    from creditgym.measure import monte_carlo

    def team(make_env, episodes, turns, policy, *, continuations, **_):
        assert make_env().possible_agents  # one env like the rollout's
        return np.array([1.0, 0.5]), np.array([0.25, 0.5]), np.array([0.4, 0.1]), 23

    monkeypatch.setattr(monte_carlo, "team_monte_carlo", team)
    mc = monte_carlo_advantages(
        "creditgym/CoopHousehold-v0", [], [(0, 0), (1, 2)], None, continuations=4, gamma=0.9
    )
    assert mc.turns == [(0, 0), (1, 2)]
    np.testing.assert_allclose(mc.advantage, [0.75, 0.0])
    np.testing.assert_allclose(mc.stderr, np.sqrt(np.array([0.4, 0.1]) / 4))
    assert (mc.continuations, mc.gamma, mc.env_steps) == (4, 0.9, 23)
    assert 0 < mc.seconds < 60


def test_sampled_turns_are_drawn_with_seed_zero_unless_told():
    episodes = [_labelled([(2, 1)] * 10), _labelled([(2, 1)] * 10)]
    assert sample_turns(episodes, 3) == sample_turns(episodes, 3, seed=0)
    assert sample_turns(episodes, 3) != sample_turns(episodes, 3, seed=1)


def test_without_informed_labels_no_episode_counts_as_ranked():
    scores = score_fidelity([labelled([3, 2, 2, 1])], [np.array([1.0, 0.0, 0.5])])
    assert scores.informed_episodes_ranked == 0
    assert np.isnan(scores.informed_within_episode_spearman)
    assert np.isnan(scores.informed_batch_auc)


@pytest.mark.filterwarnings("error")
def test_batch_auc_of_one_kind_of_label_is_nan_without_a_numpy_warning():
    # answered before any division: no "invalid value encountered" warning from 0 / 0
    assert np.isnan(batch_auc(np.array([1.0, 2.0]), np.array([1.0, 1.0])))
    assert np.isnan(batch_auc(np.array([1.0, 2.0]), np.array([0.0, -1.0])))


@pytest.mark.filterwarnings("error")
def test_a_batch_without_kept_turns_scores_nan_without_a_numpy_warning():
    failed = labelled([2, 1, 0])
    failed.failed = True
    scores = score_fidelity([failed], [np.array([1.0, 0.0])])
    assert np.isnan(scores.zero_share) and np.isnan(scores.advantage_std)
    assert np.isnan(scores.batch_auc)


def test_float32_advantages_are_scored_in_float64():
    advantages = [np.array([0.1, 0.2, 0.7], np.float32), np.array([0.3], np.float32)]
    scores = score_fidelity([labelled([3, 2, 1, 0]), labelled([1, 0])], advantages)
    as_float64 = np.concatenate(advantages).astype(np.float64)
    assert scores.advantage_std == float(np.std(as_float64))
    assert scores.advantage_std != float(np.std(np.concatenate(advantages)))  # float32's own


def test_a_sample_is_scored_against_the_labels_given_not_the_planners():
    episodes = [_labelled([(3, 2), (2, 2), (2, 3)])]  # the planner's labels: +1, 0, -1
    turns = [(0, 0), (0, 1), (0, 2)]
    values = [0.9, 0.1, 0.5]
    given = [np.array([-1.0, 0.0, 1.0])]  # the reverse order
    within, ranked, auc = score_turn_sample(episodes, turns, values, given)
    # values rank (3, 1, 2) against the given labels' (1, 2, 3): rho = -0.5
    assert (within, ranked) == (pytest.approx(-0.5), 1)
    assert auc == 0.5  # the progress turn (label 1, value 0.5): above 0.1, below 0.9
