"""The in-training Monte-Carlo check of the credit (`credit.mc_every`, `train/mc_check.py`)."""

from __future__ import annotations

import numpy as np
import pytest
from _oracle_envs import DetourCorridor
from _oracle_envs import register as register_corridor
from conftest import episode, household_config, training_rows
from safetensors.torch import load_file

import creditgym
from creditgym.config import ConfigError
from creditgym.envs.registry import list_envs
from creditgym.measure.monte_carlo import sample_turns
from creditgym.train.mc_check import mc_agreement, mc_check_due
from creditgym.train.trainer import train
from creditgym.trajectory import BRANCH_PREFIX_TURNS


def test_the_check_runs_every_n_iterations(tmp_path):
    config = household_config(tmp_path, "run", "credit.mc_every=3")
    assert [i for i in range(1, 10) if mc_check_due(config, i)] == [3, 6, 9]
    off = household_config(tmp_path, "run")
    assert not any(mc_check_due(off, i) for i in range(1, 10))


def test_agreement_is_spearman_and_sign_beside_grpo():
    # one group of two episodes: the success's turns have GRPO +0.5, the failure's -0.5
    episodes = [episode([0.0, 1.0], group=0), episode([0.0, 0.0], group=0)]
    rewards = [np.array([0.0, 1.0]), np.array([0.0, 0.0])]
    turns = [(0, 0), (0, 1), (1, 0), (1, 1)]
    mc = np.array([0.1, 0.6, -0.2, -0.5])
    ranked_like_mc = [np.array([1.0, 3.0]), np.array([0.5, -2.0])]
    metrics = mc_agreement(episodes, rewards, ranked_like_mc, turns, mc)
    assert metrics["credit/mc_spearman"] == pytest.approx(1.0)
    assert metrics["credit/mc_sign_agreement"] == pytest.approx(0.75)  # 0.5 has the wrong sign
    # GRPO: +0.5, +0.5, -0.5, -0.5: average ranks (3.5, 3.5, 1.5, 1.5) vs mc ranks (3, 4, 2, 1)
    assert metrics["credit/mc_grpo_spearman"] == pytest.approx(0.8944, abs=1e-4)
    assert metrics["credit/mc_grpo_sign_agreement"] == 1.0


def test_a_constant_side_has_no_correlation_but_keeps_its_sign_agreement():
    episodes = [episode([1.0], group=0), episode([1.0], group=0)]  # GRPO: all zero
    rewards = [np.array([1.0]), np.array([1.0])]
    metrics = mc_agreement(
        episodes, rewards, [np.array([0.3]), np.array([-0.3])], [(0, 0), (1, 0)], np.ones(2)
    )
    assert "credit/mc_grpo_spearman" not in metrics
    assert metrics["credit/mc_grpo_sign_agreement"] == 0.5  # a zero advantage counts 1/2
    assert "credit/mc_spearman" not in metrics  # a constant Monte-Carlo side too


def test_copied_prefixes_and_failed_episodes_are_never_sampled():
    parent, child = episode([0, 0, 1]), episode([0, 0, 1])
    failed = episode([0, 1], failed=True)
    child.metadata[BRANCH_PREFIX_TURNS] = 2  # a branch continuation of `parent`
    pool = sample_turns([parent, child, failed], 100, np.random.default_rng(0))
    assert pool == [(0, 0), (0, 1), (0, 2), (1, 2)]
    drawn = sample_turns([parent, child, failed], 2, np.random.default_rng(0))
    assert len(drawn) == 2 and set(drawn) <= set(pool) and drawn == sorted(drawn)


def test_training_logs_the_check_and_learns_exactly_as_without_it(tmp_path, one_thread):
    # the corridor: an untrained policy reaches its door on some continuations, not all
    common = (
        f"env.id={register_corridor()}",
        "env.kwargs={}",
        "train.iterations=2",
        "credit.estimator={name: gigpo}",
    )
    with_check = household_config(
        tmp_path, "check", *common, "credit.mc_every=1", "credit.mc_turns=6"
    )
    checked_run = train(with_check)
    plain_run = train(household_config(tmp_path, "plain", *common))

    checked, plain = training_rows(tmp_path / "check"), training_rows(tmp_path / "plain")
    for row in checked:
        assert row["credit/mc_turns"] == 6
        assert row["credit/mc_env_steps"] > 0 and row["credit/mc_stderr"] >= 0
        assert -1 <= row["credit/mc_sign_agreement"] <= 1
    assert all(not any(k.startswith("credit/mc") for k in row) for row in plain)
    # the policy's sampler is restored after each check: the same batches, the same weights
    for a, b in zip(checked, plain):
        assert {k: v for k, v in a.items() if not k.startswith("credit/mc")} == b
    weights = [
        load_file(run.checkpoint / "model" / "model.safetensors")
        for run in (checked_run, plain_run)
    ]
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[1])


class _Uncloneable(DetourCorridor):
    supports_state_cloning = False


def test_a_check_that_cannot_run_is_refused_before_training(tmp_path):
    env_id = "tests/UncloneableCorridorMC-v0"
    if env_id not in list_envs():
        creditgym.register(env_id, _Uncloneable, description="no clone_state (tests)")
    config = household_config(tmp_path, "run", f"env.id={env_id}", "env.kwargs={}")
    config.credit.mc_every = 1
    with pytest.raises(ConfigError, match="UncloneableCorridorMC-v0 cannot clone.*mc_every=0"):
        train(config)
    conversation = household_config(
        tmp_path, "run", "credit.mc_every=2", "policy.context=conversation"
    )
    with pytest.raises(ConfigError, match="mc_every needs policy.context=window"):
        train(conversation)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def _expert_walk(env_id, steps):
    """The expert's first `steps` turns in the corridor, recorded as an episode."""
    from creditgym.trajectory import Episode, Turn

    env = creditgym.make(env_id)
    observation, info = env.reset(seed=0)
    turns = []
    for _ in range(steps):
        turns.append(Turn(observation, "go east", info=info))
        observation, reward, *_ = env.step("go east")
        turns[-1].reward = float(reward)
    return Episode(turns=turns, env_id=env_id, metadata={"seed": 0})


def test_monte_carlo_averages_8_continuations_unless_told():
    from creditgym.agents.prompts import PromptFormat
    from creditgym.agents.scripted import ExpertPolicy
    from creditgym.measure.monte_carlo import monte_carlo_advantages

    env_id = register_corridor()
    result = monte_carlo_advantages(
        env_id,
        [_expert_walk(env_id, 3)],
        [(0, 2)],
        ExpertPolicy(),
        prompt_format=PromptFormat(require_tags=False),
    )
    assert result.continuations == 8
    # from square 2: 8 V continuations of 2 steps, 8 Q continuations of 1 step from square 3
    assert result.env_steps == 8 * 2 + 8 * 1
    assert result.q.tolist() == result.v.tolist() == [1.0]


def test_monte_carlo_refuses_an_env_that_cannot_clone_with_the_way_out():
    from creditgym.agents.scripted import ExpertPolicy
    from creditgym.measure.monte_carlo import monte_carlo_advantages

    env_id = "tests/UncloneableCorridorMC-v0"
    if env_id not in list_envs():
        creditgym.register(env_id, _Uncloneable, description="no clone_state (tests)")
    with pytest.raises(ValueError) as error:
        monte_carlo_advantages(env_id, [], [], ExpertPolicy())
    assert str(error.value) == (
        f"{env_id} cannot clone its state (no clone_state()/restore_state()), so Monte-Carlo "
        "advantages cannot continue rollouts from a turn; run without --mc"
    )


def test_a_multi_agent_estimate_keeps_the_teams_q_and_v(monkeypatch):
    from creditgym.measure import monte_carlo

    def team(make_env, episodes, turns, policy, **_):
        return np.array([1.0, 0.5]), np.array([0.25, 0.5]), np.array([0.4, 0.1]), 23

    monkeypatch.setattr(monte_carlo, "team_monte_carlo", team)
    mc = monte_carlo.monte_carlo_advantages(
        "creditgym/CoopHousehold-v0", [], [(0, 0), (1, 2)], None, continuations=4
    )
    assert (mc.q.tolist(), mc.v.tolist()) == ([1.0, 0.5], [0.25, 0.5])
