"""The GPU recipe (GiGPO's ALFWorld settings) validates on any machine, its model placeholder
fails clearly, and the GPU smoke benchmark says what it cannot do on a CPU."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from creditgym.config import ConfigError, check_runnable, load_config

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "configs" / "gigpo_household_1.5b.yaml"


def test_the_recipe_validates_with_the_papers_alfworld_settings():
    config = load_config(RECIPE)
    assert config.env.id == "creditgym/Household-v0"
    assert (config.rollout.groups, config.rollout.group_size) == (16, 8)
    assert config.credit.estimator == {"name": "gigpo", "gamma": 0.95, "step_weight": 1.0}
    assert config.policy.history_length == 2 and config.policy.template == "verl-agent"
    assert (config.train.lr, config.train.kl_coef, config.train.iterations) == (1e-6, 0.01, 50)
    assert config.train.precision == "bf16-mixed"


def test_the_model_placeholder_fails_before_anything_loads(tmp_path):
    config = load_config(RECIPE, [f"run.output_dir={tmp_path / 'run'}"])
    with pytest.raises(ConfigError, match="policy.model.*not a directory.*huggingface-cli"):
        check_runnable(config)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a CPU machine prints")
def test_gpu_smoke_says_it_needs_cuda_and_exits_0():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_smoke.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0 and "needs a CUDA GPU" in done.stdout


def test_gpu_smoke_counts_the_weights_an_update_moved(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_smoke import moved_fraction

    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    before = torch.zeros(4, dtype=torch.bfloat16)
    save_file({"w": before}, tmp_path / "before" / "model.safetensors")
    save_file(
        {"w": torch.tensor([0.0, 1e-6, 0.0, -1e-6])}, tmp_path / "after" / "model.safetensors"
    )
    assert moved_fraction(tmp_path / "before", tmp_path / "after") == 0.5
    assert moved_fraction(None, tmp_path / "after") is None
