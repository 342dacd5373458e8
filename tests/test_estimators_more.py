"""RLOO, REINFORCE++, turn-level group normalisation and EMPG on hand-worked batches.

Every expected value is worked out here, by hand or with a direct loop over plain numbers,
never with the estimators' own helpers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import TINY, episode, training_rows

from creditgym.config import load_config
from creditgym.credit import (
    CreditConfigError,
    compute_advantages,
    empg_advantages,
    grpo_advantages,
    reinforce_pp_advantages,
    rloo_advantages,
    turn_level_advantages,
)
from creditgym.credit.estimators.reinforce_pp import batch_whiten
from creditgym.credit.shapers.env import env_rewards
from creditgym.train.trainer import train

NEW_ESTIMATORS = ("rloo", "reinforce_pp", "turn_level", "empg")


def run(estimator, episodes, **options):
    return [a.tolist() for a in estimator(episodes, env_rewards(episodes, None), **options)]


def with_logprobs(ep, logprobs):
    """Give each turn of `ep` these sampled-token log-probs (what a model policy records)."""
    for turn, lp in zip(ep.turns, logprobs, strict=True):
        turn.logprobs = list(lp)
    return ep


def approx(rows, abs=1e-6):
    return [pytest.approx(row, abs=abs) for row in rows]


# --- RLOO -----------------------------------------------------------------------------------


def test_rloo_is_the_return_minus_the_mean_of_the_other_episodes_broadcast_to_turns():
    # Returns 1, 0, 0, 1. Episode 0: 1 - (0 + 0 + 1) / 3 = 2/3; episode 1: 0 - (1 + 0 + 1) / 3.
    episodes = [episode([0, 1]), episode([0]), episode([0, 0, 0]), episode([1])]
    assert run(rloo_advantages, episodes) == approx(
        [[2 / 3, 2 / 3], [-2 / 3], [-2 / 3] * 3, [2 / 3]]
    )


def test_rloo_equals_g_over_g_minus_one_times_the_centred_return():
    # Returns 3, 1, 2, 6: mean 3, so A = 4/3 * (0, -2, -1, 3).
    episodes = [episode([3]), episode([1]), episode([2]), episode([6])]
    assert run(rloo_advantages, episodes) == approx([[0.0], [-8 / 3], [-4 / 3], [4.0]])


def test_rloo_baseline_excludes_the_episode_itself():
    # Raising episode 0's return by delta moves its own advantage by exactly delta (its baseline
    # does not contain it) and every other episode's by -delta / (G - 1) (it is in theirs).
    delta, G = 2.0, 4
    before = run(rloo_advantages, [episode([3]), episode([1]), episode([2]), episode([6])])
    after = run(rloo_advantages, [episode([3 + delta]), episode([1]), episode([2]), episode([6])])
    moves = [a[0] - b[0] for a, b in zip(after, before)]
    assert moves == pytest.approx([delta] + [-delta / (G - 1)] * (G - 1))


def test_rloo_compares_only_within_a_group_and_a_group_of_one_gets_zero():
    episodes = [
        episode([1], group="a"),
        episode([5, 5], group="alone"),
        episode([0], group="a"),
        episode([3], group="a"),
    ]
    # group a: returns 1, 0, 3 -> 1 - 1.5, 0 - 2, 3 - 0.5
    assert run(rloo_advantages, episodes) == approx([[-0.5], [0.0, 0.0], [-2.0], [2.5]])


def test_rloo_failed_episode_gets_zero_and_is_not_in_the_others_baseline():
    episodes = [episode([1]), episode([100.0, 100.0], failed=True), episode([0])]
    assert run(rloo_advantages, episodes) == [[1.0], [0.0, 0.0], [-1.0]]


def test_rloo_gamma_discounts_the_episode_return_from_the_start():
    # gamma 0.5: R = 0 + 0.5 * 1 = 0.5 for [0, 1], R = 1 for [1]; A = -0.5 and +0.5.
    episodes = [episode([0, 1]), episode([1])]
    assert run(rloo_advantages, episodes, gamma=0.5) == approx([[-0.5, -0.5], [0.5]])


def test_rloo_group_of_equal_returns_gets_exactly_zero():
    # Every return is 0.7 in floating point sums that differ in the last bit.
    episodes = [episode([0.25, 0.25, 0.2]), episode([0.7]), episode([0.5, 0.2])]
    assert all(a == [0.0] * len(a) for a in run(rloo_advantages, episodes))


# --- REINFORCE++ ----------------------------------------------------------------------------


def _whiten(values):
    """Direct batch normalisation: population std, as OpenRLHF."""
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return [(v - mean) / std for v in values]


def test_reinforce_pp_without_baseline_normalises_returns_to_go_over_the_whole_batch():
    # Returns-to-go: [1, 1] and [2]; batch mean 4/3, population variance 2/9.
    episodes = [episode([0, 1], group="a"), episode([2], group="b")]
    s = math.sqrt(2 / 9)
    expected = [[(-1 / 3) / s, (-1 / 3) / s], [(2 / 3) / s]]
    assert run(reinforce_pp_advantages, episodes, baseline="none") == approx(expected)


def test_reinforce_pp_baseline_subtracts_the_group_mean_return_from_the_outcome():
    # group a: returns 1, 0 (mean 0.5); group b: returns 3, 1 (mean 2).
    # Shifted last rewards: [0, 1 - 0.5], [0 - 0.5], [3 - 2], [1, 0 - 2]; returns-to-go
    # (gamma 1): [0.5, 0.5], [-0.5], [1], [-1, -2]; then normalised over all six turns.
    episodes = [
        episode([0, 1], group="a"),
        episode([0], group="a"),
        episode([3], group="b"),
        episode([1, 0], group="b"),
    ]
    z = _whiten([0.5, 0.5, -0.5, 1.0, -1.0, -2.0])
    expected = [z[0:2], z[2:3], z[3:4], z[4:6]]
    assert run(reinforce_pp_advantages, episodes) == approx(expected)  # group_mean is default


def test_reinforce_pp_keeps_a_near_tie_small_where_grpo_blows_it_up():
    # Group a barely differs (1.0 vs 1.001), group b clearly (0 vs 1). GRPO's per-group std
    # makes group a's advantages as large as group b's; the batch std keeps them small.
    episodes = [
        episode([1.0], group="a"),
        episode([1.001], group="a"),
        episode([0.0], group="b"),
        episode([1.0], group="b"),
    ]
    grpo = run(grpo_advantages, episodes)
    rpp = run(reinforce_pp_advantages, episodes)
    assert abs(grpo[0][0]) == pytest.approx(abs(grpo[2][0]), rel=1e-2)
    z = _whiten([-0.0005, 0.0005, -0.5, 0.5])
    assert rpp == approx([[v] for v in z])
    assert abs(rpp[0][0]) < 0.01 < 0.9 < abs(rpp[2][0])


def test_reinforce_pp_discounts_the_return_to_go():
    # gamma 0.5, no baseline: [0, 0, 1] -> [0.25, 0.5, 1]; [0] -> [0].
    episodes = [episode([0, 0, 1]), episode([0])]
    z = _whiten([0.25, 0.5, 1.0, 0.0])
    assert run(reinforce_pp_advantages, episodes, baseline="none", gamma=0.5) == approx(
        [z[0:3], z[3:4]]
    )


def test_reinforce_pp_failed_episode_gets_zero_and_stays_out_of_the_batch_statistics():
    healthy = [episode([0, 1]), episode([0])]
    crashed = episode([1000.0], failed=True)
    with_failed = run(reinforce_pp_advantages, [healthy[0], crashed, healthy[1]])
    without = run(reinforce_pp_advantages, healthy)
    assert with_failed[1] == [0.0]
    assert [with_failed[0], with_failed[2]] == approx(without)


def test_reinforce_pp_group_of_equal_outcomes_gets_exactly_zero():
    # Every episode's outcome equals its group's mean: nothing to learn, not 0 / 0 noise.
    advantages = run(reinforce_pp_advantages, [episode([0, 1]), episode([1]), episode([0, 0, 1])])
    assert all(a == [0.0] * len(a) for a in advantages)


# --- turn-level group normalisation ---------------------------------------------------------


def test_turn_level_normalises_returns_to_go_within_the_group_at_each_turn_index():
    # Returns-to-go (gamma 1): e1 [1, 1, 1], e2 [1, 1], e3 [0, 0, 0, 0].
    # Pools: t0 {1, 1, 0}, t1 {1, 1, 0}, t2 {1 (e1), 0 (e3)}, t3 {0 (e3 alone)} -> 0.
    episodes = [episode([0, 0, 1]), episode([0, 1]), episode([0, 0, 0, 0])]
    assert run(turn_level_advantages, episodes, normalization="mean") == approx(
        [[1 / 3, 1 / 3, 0.5], [1 / 3, 1 / 3], [-2 / 3, -2 / 3, -0.5, 0.0]]
    )
    # mean_std: pool {1, 1, 0} has unbiased std sqrt(1/3); pool {1, 0} has sqrt(1/2).
    s3, s2 = math.sqrt(1 / 3), math.sqrt(1 / 2)
    assert run(turn_level_advantages, episodes) == approx(
        [
            [(1 / 3) / s3, (1 / 3) / s3, 0.5 / s2],
            [(1 / 3) / s3, (1 / 3) / s3],
            [(-2 / 3) / s3, (-2 / 3) / s3, -0.5 / s2, 0.0],
        ],
        abs=1e-5,
    )


def test_turn_level_a_dense_reward_moves_only_the_turns_up_to_it():
    # e1 earns 1 at turn 1; after it both episodes are alike, so turn 2 gets 0.
    episodes = [episode([0, 1, 0]), episode([0, 0, 0])]
    assert run(turn_level_advantages, episodes, normalization="mean") == approx(
        [[0.5, 0.5, 0.0], [-0.5, -0.5, 0.0]]
    )


def test_turn_level_discounts_the_return_to_go():
    # gamma 0.5: e1 [0, 1] -> R [0.5, 1]; e2 [0, 0] -> R [0, 0].
    episodes = [episode([0, 1]), episode([0, 0])]
    assert run(turn_level_advantages, episodes, gamma=0.5, normalization="mean") == approx(
        [[0.25, 0.5], [-0.25, -0.5]]
    )


def test_turn_level_pools_are_per_group_and_failed_episodes_are_left_out():
    episodes = [
        episode([1], group="a"),
        episode([0], group="b"),
        episode([0], group="a"),
        episode([9, 9], group="a", failed=True),
        episode([2], group="b"),
    ]
    assert run(turn_level_advantages, episodes, normalization="mean") == [
        [0.5],
        [-1.0],
        [-0.5],
        [0.0, 0.0],
        [1.0],
    ]


# --- EMPG -----------------------------------------------------------------------------------


def _empg_batch():
    # One group: a success [0, 1] and a failure [0, 0]. Step entropies (mean surprisal):
    # success 0.3, 1.0; failure 0.1, 0.6.
    success = with_logprobs(episode([0, 1]), [[-0.2, -0.4], [-1.0]])
    failure = with_logprobs(episode([0, 0]), [[-0.1, -0.1, -0.1], [-0.5, -0.7]])
    return [success, failure]


def test_empg_scales_by_step_confidence_adds_the_next_steps_clarity_and_centres():
    # Base advantage (GRPO mean_std, returns 1 and 0): +-0.5 / (sqrt(0.5) + 1e-6).
    a = 0.5 / (math.sqrt(0.5) + 1e-6)
    base = [a, a, -a, -a]
    H = [0.3, 1.0, 0.1, 0.6]
    lo, hi = min(H), max(H)
    H_norm = [(h - lo) / (hi - lo + 1e-8) for h in H]
    g_raw = [math.exp(-1.0 * h) for h in H_norm]
    g = [x / (sum(g_raw) / 4 + 1e-8) for x in g_raw]
    f = [math.exp(-1.0 * h) for h in H_norm]
    bonus = [0.1 * f[1], 0.0, 0.1 * f[3], 0.0]  # the next step's clarity; none after the last
    modulated = [g[i] * base[i] + bonus[i] for i in range(4)]
    mean = sum(modulated) / 4
    final = [m - mean for m in modulated]
    assert run(empg_advantages, _empg_batch()) == approx([final[0:2], final[2:4]])


def test_empg_without_modulation_is_grpo():
    episodes = _empg_batch()
    plain = run(empg_advantages, episodes, k=0.0, zeta=0.0, final_normalization="none")
    assert plain == approx(run(grpo_advantages, episodes))


def test_empg_penalises_a_confident_step_of_a_failed_episode_hardest():
    episodes = _empg_batch()
    advantages = run(empg_advantages, episodes, zeta=0.0, final_normalization="none")
    confident, uncertain = advantages[1]  # failure: entropy 0.1 then 0.6
    assert confident < uncertain < 0
    assert advantages[0][0] > advantages[0][1] > 0  # success: entropy 0.3 then 1.0


def test_empg_turn_without_logprobs_names_the_turn_and_asks_for_a_model_policy():
    episodes = _empg_batch()
    episodes[1].turns[1].logprobs = []
    with pytest.raises(ValueError, match=r"turn 1 of episode 1 .*model policy"):
        run(empg_advantages, episodes)


def test_empg_failed_episode_needs_no_logprobs_gets_zero_and_stays_out_of_the_statistics():
    crashed = episode([0, 0, 0], failed=True)  # a dead worker's episode: nothing recorded
    with_failed = run(empg_advantages, [*_empg_batch(), crashed])
    assert with_failed[2] == [0.0, 0.0, 0.0]
    assert with_failed[:2] == approx(run(empg_advantages, _empg_batch()))


def test_empg_records_each_steps_entropy_scale_and_bonus_for_the_viewer():
    episodes = _empg_batch()
    run(empg_advantages, episodes)
    details = episodes[1].turns[0].credit_details["empg"]
    assert details["step_entropy"] == pytest.approx(0.1)
    assert details["clarity_bonus"] == pytest.approx(0.1 * math.exp(-(0.5 / 0.9)))
    assert episodes[1].turns[1].credit_details["empg"]["clarity_bonus"] == 0.0


def test_empg_mean_std_final_normalization_divides_the_centred_advantages_by_their_std():
    centred = np.concatenate(
        [np.array(a) for a in run(empg_advantages, _empg_batch(), final_normalization="mean")]
    )
    scaled = np.concatenate(
        [np.array(a) for a in run(empg_advantages, _empg_batch(), final_normalization="mean_std")]
    )
    np.testing.assert_allclose(scaled, centred / (centred.std() + 1e-8), rtol=1e-12)


def test_empg_records_the_scale_and_base_advantage_of_each_step():
    episodes = _empg_batch()
    run(empg_advantages, episodes)
    details = episodes[0].turns[0].credit_details["empg"]
    assert details["episode_advantage"] == pytest.approx(0.5 / (math.sqrt(0.5) + 1e-6))
    # g(H) = exp(-k H_norm) / mean over the batch's steps of exp(-k H_norm), H_norm of 0.3
    h_norm = [(h - 0.1) / (0.9 + 1e-8) for h in (0.3, 1.0, 0.1, 0.6)]
    weights = [math.exp(-h) for h in h_norm]
    assert details["scale"] == pytest.approx(weights[0] / np.mean(weights))


def test_empg_names_the_fix_when_a_turn_has_no_logprobs():
    episodes = _empg_batch()
    episodes[0].turns[0].logprobs = []
    message = (
        "empg: turn 0 of episode 0 has no log-probabilities (turn.logprobs is empty), so its "
        "step entropy is unknown. EMPG needs a model policy that records them (hf, vllm, openai "
        "with logprobs), not a scripted one (expert, random); pick another estimator for "
        "scripted rollouts."
    )
    with pytest.raises(ValueError) as error:
        run(empg_advantages, episodes)
    assert str(error.value) == message


def test_empg_refuses_each_negative_parameter_alone_and_takes_zero():
    for k, k_f, zeta in ((-1.0, 1.0, 0.1), (1.0, -1.0, 0.1), (1.0, 1.0, -0.1)):
        with pytest.raises(ValueError) as error:
            run(empg_advantages, _empg_batch(), k=k, k_f=k_f, zeta=zeta)
        assert str(error.value) == (
            f"empg: k={k}, k_f={k_f} and zeta={zeta} must be >= 0 "
            "(pseudocode defaults 1.0, 1.0, 0.1)."
        )
    for k, k_f, zeta in ((0.0, 1.0, 0.1), (1.0, 0.0, 0.1), (1.0, 1.0, 0.0), (1.0, 0.5, 0.1)):
        assert len(run(empg_advantages, _empg_batch(), k=k, k_f=k_f, zeta=zeta)) == 2


def test_empg_base_advantage_is_grpos_with_the_normalization_asked_for():
    episodes = _empg_batch()  # returns 1 and 0 in one group
    run(empg_advantages, episodes, normalization="mean")
    assert episodes[0].turns[0].credit_details["empg"]["episode_advantage"] == 0.5
    assert episodes[1].turns[0].credit_details["empg"]["episode_advantage"] == -0.5


def test_empg_scale_divides_by_the_batch_mean_plus_epsilon():
    # k = 0: every exp(-k H_norm) is 1, their mean 1, so g = 1 / (1 + 1e-8) exactly (Eq. 10)
    episodes = _empg_batch()
    run(empg_advantages, episodes, k=0.0)
    scales = [t.credit_details["empg"]["scale"] for ep in episodes for t in ep.turns]
    assert scales == [1.0 / (1.0 + 1e-8)] * 4


def test_empg_entropy_range_is_padded_by_epsilon_so_steps_a_hair_apart_stay_comparable():
    # H = 0 and 1e-8: H_norm = 1e-8 / (1e-8 + 1e-8) = 0.5 for the second step (Eq. 12)
    episodes = [with_logprobs(episode([0, 1]), [[0.0], [-1e-8]])]
    run(empg_advantages, episodes)
    weights = [1.0, math.exp(-0.5)]
    scales = [t.credit_details["empg"]["scale"] for t in episodes[0].turns]
    assert scales == pytest.approx([w / (np.mean(weights) + 1e-8) for w in weights], rel=1e-12)


def test_empg_step_entropy_of_a_failed_episode_is_zero_even_with_logprobs():
    crashed = with_logprobs(episode([0, 0], failed=True), [[-2.0], [-3.0]])
    episodes = [*_empg_batch(), crashed]
    run(empg_advantages, episodes)
    assert [t.credit_details["empg"]["step_entropy"] for t in crashed.turns] == [0.0, 0.0]


@pytest.mark.filterwarnings("error")
def test_empg_all_failed_batch_gets_zeros_without_a_numpy_warning():
    # nothing to normalise: no mean of an empty slice
    failed = [episode([1.0, 0.0], failed=True), episode([0.0], failed=True)]
    assert run(empg_advantages, failed) == [[0.0, 0.0], [0.0]]


def test_batch_whitening_of_no_values_or_one_value():
    assert batch_whiten(np.zeros(0), 1e-8).tolist() == []
    assert batch_whiten(np.array([3.0]), 1e-8).tolist() == [0.0]


# --- all four: config language, options, the trainer ----------------------------------------


def _logged(episodes):
    for ep in episodes:
        with_logprobs(ep, [[-0.5]] * len(ep.turns))
    return episodes


@pytest.mark.parametrize("name", NEW_ESTIMATORS)
def test_every_new_estimator_is_reachable_by_name_from_a_config(name):
    episodes = _logged([episode([0, 1]), episode([0, 0]), episode([1])])
    advantages = compute_advantages(episodes, estimator={"name": name})
    assert [len(a) for a in advantages] == [2, 2, 1]
    assert advantages[0][-1] > advantages[1][-1]  # the winner's last turn beats the loser's


@pytest.mark.parametrize("name", NEW_ESTIMATORS)
def test_an_unknown_option_is_a_credit_config_error_naming_the_valid_ones(name):
    with pytest.raises(CreditConfigError, match=r"unknown option 'gama'.*valid options"):
        compute_advantages(_logged([episode([1])]), estimator={"name": name, "gama": 0.9})


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "rloo", "gamma": 1.5}, "gamma=1.5 must be in"),
        ({"name": "reinforce_pp", "baseline": "critic"}, "baseline='critic' is not one of"),
        ({"name": "turn_level", "normalization": "std"}, "normalization='std' is not one of"),
        ({"name": "empg", "final_normalization": "x"}, "final_normalization='x' is not one of"),
        ({"name": "empg", "zeta": -1.0}, "must be >= 0"),
    ],
)
def test_a_bad_option_value_is_a_clear_error(spec, message):
    with pytest.raises(ValueError, match=message):
        compute_advantages(_logged([episode([1]), episode([0])]), estimator=spec)


@pytest.mark.parametrize("name", NEW_ESTIMATORS)
def test_one_training_iteration_runs_with_each_new_estimator(tmp_path, name):
    config = load_config(
        None,
        [
            *TINY,
            "env.kwargs={max_steps: 4}",
            "rollout.groups=2",
            "rollout.group_size=2",
            "eval.episodes=1",
            "eval.every=0",
            "run.threads=1",
            "train.iterations=1",
            f"credit.estimator={{name: {name}}}",
            f"run.output_dir={tmp_path / name}",
        ],
    )
    result = train(config)
    assert result.iterations == 1
    (row,) = training_rows(tmp_path / name)
    assert np.isfinite(row["update/pg_loss"]) and np.isfinite(row["credit/advantage_std"])
    # the update stepped exactly when the estimator gave some turn a nonzero advantage
    trained = row["credit/zero_advantage_turn_share"] < 1.0
    assert row["update/steps"] == (1 if trained else 0)
