"""The trust-region options in a training run: the warm start's AdamW state handed to RL,
and the update's diagnostics logged every iteration."""

import pytest
import torch
from conftest import household_config, training_rows

from creditgym.agents.prompts import PromptFormat
from creditgym.train.models import build_policy
from creditgym.train.sft import sft_warmup
from creditgym.train.trainer import train

pytestmark = pytest.mark.usefixtures("one_thread")

WARM_START = ["train.sft_warmup.episodes=4", "train.sft_warmup.epochs=1"]


def test_the_warm_start_hands_its_adam_moments_to_rls_optimizer(tmp_path):
    config = household_config(tmp_path, "sft", "run.device=cpu", *WARM_START)
    torch.manual_seed(0)
    policy = build_policy(config)
    rl_optimizer = torch.optim.AdamW(policy.model.parameters(), lr=1e-3, weight_decay=0.1)
    sft_warmup(policy, config, PromptFormat(), hand_over_to=rl_optimizer)
    states = [rl_optimizer.state[p] for p in policy.model.parameters() if p in rl_optimizer.state]
    assert states, "no parameter got the warm start's state"
    assert all(float(state["step"]) >= 1 for state in states)
    assert any(state["exp_avg_sq"].abs().sum() > 0 for state in states)
    # RL's own hyper-parameters stay its own
    assert rl_optimizer.param_groups[0]["lr"] == 1e-3
    assert rl_optimizer.param_groups[0]["weight_decay"] == 0.1


def test_a_run_logs_how_far_each_update_moved_and_where_it_stopped(tmp_path):
    config = household_config(
        tmp_path,
        "run",
        "env.kwargs={max_steps: 15}",  # long enough for some successes: nonzero advantages
        "rollout.group_size=4",
        "train.iterations=2",
        "train.ppo_epochs=3",
        "train.mini_batches=2",
        "train.target_kl=0.002",
        "train.loss_agg=episode_mean",
        "train.count_forced_tokens=false",
        "train.carry_sft_optimizer=true",
        *WARM_START,
    )
    train(config)
    rows = training_rows(tmp_path / "run")
    assert len(rows) == 2
    assert any(row["update/steps"] > 0 for row in rows)
    for row in rows:
        assert row["update/steps"] <= 6  # 3 epochs x 2 mini-batches at most
        if row["update/stopped_step"]:  # stopped before a step: fewer than all six
            assert row["update/steps"] < 6
        elif row["update/steps"] == 0:  # no turn with an advantage: nothing trained, nothing to
            assert "update/kl_after" not in row  # measure (the diagnostics score trained turns)
            continue
        for name in ("kl_after", "ratio_std", "ratio_p05", "ratio_p95", "logprob_change_corr"):
            assert isinstance(row[f"update/{name}"], float)
        assert (row["update/kl_after"] > 1e-6) == (row["update/steps"] > 0)
        assert 0.0 < row["update/forced_token_share"] < 1.0  # the constraint forces some
