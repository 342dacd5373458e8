"""Credit modules that need more than the batch: a user registers a stateful shaper and a
requirement of a new kind from their own code, and the trainer serves, checkpoints and resumes
them without any change to creditgym."""

import numpy as np
import pytest
import torch
from conftest import TINY, episode, training_rows
from safetensors.torch import load_file

from creditgym.config import load_config
from creditgym.credit import Requirement, RunContext, compute_advantages, register_shaper
from creditgym.credit_setup.build import check_multiprocess, register_builder, setup_credit
from creditgym.train.trainer import train


@register_shaper("test_novelty")
class NoveltyBonus:
    """`bonus / sqrt(1 + n)` for a turn taking an action taken n times before in the run."""

    multiprocess = False  # counts over the whole batch

    def setup(self, run: RunContext) -> None:
        self.counts: dict[str, int] = {}
        self.seed = run.seed

    def __call__(self, episodes, context, *, bonus: float = 0.5) -> list[np.ndarray]:
        rewards = []
        for ep in episodes:
            turn_rewards = np.zeros(len(ep.turns))
            for t, turn in enumerate(ep.turns):
                key = turn.action
                turn_rewards[t] = bonus / np.sqrt(1 + self.counts.get(key, 0))
                self.counts[key] = self.counts.get(key, 0) + 1
            rewards.append(turn_rewards)
        return rewards

    def state_dict(self) -> dict:
        return {"counts": dict(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        self.counts = dict(state["counts"])


@register_builder("test_table")
def _table(value, run, where):
    return {"scale": float(value), "seed": run.seed}


@register_shaper("test_scaled", requires=(Requirement("test_table", option="scale"),))
def scaled_env_reward(episodes, context, *, scale: float = 2.0) -> list[np.ndarray]:
    table = context.require("test_table", "the test_scaled shaper")
    return [table["scale"] * np.array([t.reward for t in ep.turns]) for ep in episodes]


def _config(tmp_path, name, *overrides):
    return load_config(
        None,
        [
            *TINY,
            "env.kwargs={max_steps: 6}",
            "rollout.groups=2",
            "rollout.group_size=3",
            "eval.episodes=2",
            "eval.every=0",
            "run.save_every=1",
            "run.threads=1",
            "credit.shapers=[env, {name: test_novelty, bonus: 0.3}]",
            f"run.output_dir={tmp_path / name}",
            *overrides,
        ],
    )


_learning = training_rows


def _weights(result):
    return load_file(result.checkpoint / "model" / "model.safetensors")


def test_a_user_stateful_shaper_is_checkpointed_and_resumes_exactly(tmp_path):
    straight = train(_config(tmp_path, "straight", "train.iterations=2"))
    train(_config(tmp_path, "resumed", "train.iterations=1"))
    resumed = train(_config(tmp_path, "resumed", "train.iterations=2"))

    saved = torch.load(straight.checkpoint / "credit.pt", weights_only=False)
    assert sum(saved["test_novelty"]["counts"].values()) > 0  # the state the module learned
    assert torch.load(resumed.checkpoint / "credit.pt", weights_only=False) == saved
    assert _learning(tmp_path / "resumed") == _learning(tmp_path / "straight")
    for name, tensor in _weights(straight).items():
        torch.testing.assert_close(_weights(resumed)[name], tensor, rtol=0, atol=0)


def test_resuming_without_the_modules_state_would_change_the_run(tmp_path, monkeypatch):
    # the control for the test above: the novelty counts really steer the update
    straight = train(_config(tmp_path, "straight", "train.iterations=2"))
    train(_config(tmp_path, "forgetful", "train.iterations=1"))
    monkeypatch.setattr(NoveltyBonus, "load_state_dict", lambda self, state: None)
    forgetful = train(_config(tmp_path, "forgetful", "train.iterations=2"))
    a, b = _weights(straight), _weights(forgetful)
    assert any(not torch.equal(a[name], b[name]) for name in a)


def test_setup_builds_a_new_kind_of_requirement_from_the_modules_option(tmp_path):
    config = _config(tmp_path, "table", "credit.shapers=[{name: test_scaled, scale: 3.0}]")
    runtime = setup_credit(config, tmp_path)
    assert runtime.built["test_table"] == {"scale": 3.0, "seed": 0}
    episodes = [episode([0.0, 1.0], group=0), episode([0.0, 0.0], group=0)]
    context = runtime.context(scorer=None, iteration=0)
    advantages = compute_advantages(episodes, ["test_scaled"], "grpo", context=context)
    assert advantages[0][0] > 0 > advantages[1][0]


def test_setup_gives_the_module_the_run_and_a_fresh_instance_per_run(tmp_path):
    first = setup_credit(_config(tmp_path, "a", "run.seed=7"), tmp_path)
    second = setup_credit(_config(tmp_path, "b", "run.seed=7"), tmp_path)
    assert first.modules["test_novelty"].seed == 7
    assert first.modules["test_novelty"] is not second.modules["test_novelty"]


def test_a_single_process_module_refuses_several_processes(tmp_path):
    config = _config(tmp_path, "ddp")
    check_multiprocess(config, 1)
    with pytest.raises(ValueError, match="'test_novelty' says it does not run under several"):
        check_multiprocess(config, 2)


def test_a_requirement_nobody_builds_is_a_clear_error(tmp_path):
    register_shaper("test_orphan", requires=(Requirement("test_nobody_builds_this"),))(
        lambda episodes, context: [np.zeros(len(ep.turns)) for ep in episodes]
    )
    config = _config(tmp_path, "orphan", "credit.shapers=[test_orphan]")
    with pytest.raises(ValueError, match="no builder is registered.*register_builder"):
        setup_credit(config, tmp_path)
