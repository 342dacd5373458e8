"""Trainer features: LR schedules (resumed exactly), gradient checkpointing, metric trackers,
`creditgym export`, and the vLLM + LoRA check."""

import math
import sys
import types

import numpy as np
import pytest
import torch
from conftest import TINY, training_rows
from safetensors.torch import load_file

from creditgym.config import ConfigError, load_config
from creditgym.train.schedules import lr_factor
from creditgym.train.tracking import MetricsWriter
from creditgym.train.trainer import train


def _config(tmp_path, name, *overrides):
    return load_config(
        None,
        [
            *TINY,
            "env.kwargs={max_steps: 5}",
            "rollout.groups=2",
            "rollout.group_size=3",
            "eval.episodes=2",
            "eval.every=0",
            "run.save_every=1",
            "run.threads=1",
            f"run.output_dir={tmp_path / name}",
            *overrides,
        ],
    )


_rows = training_rows


# ---- learning-rate schedules -----------------------------------------------------------------


def test_warmup_ramps_linearly_to_the_base_rate():
    assert [lr_factor("constant", i, 10, warmup=4) for i in (1, 2, 3, 4, 5, 10)] == [
        0.25,
        0.5,
        0.75,
        1.0,
        1.0,
        1.0,
    ]


def test_linear_and_cosine_decay_after_warmup_never_reach_zero():
    # 2 warm-up iterations, then 4 decaying ones: progress 0, 1/4, 2/4, 3/4
    assert [lr_factor("linear", i, 6, warmup=2) for i in (3, 4, 5, 6)] == [1.0, 0.75, 0.5, 0.25]
    cosine = [lr_factor("cosine", i, 6, warmup=2) for i in (3, 4, 5, 6)]
    expected = [(1 + math.cos(math.pi * p)) / 2 for p in (0, 0.25, 0.5, 0.75)]
    np.testing.assert_allclose(cosine, expected)
    assert cosine[-1] > 0


def test_a_scheduled_run_logs_its_rate_and_resumes_exactly(tmp_path):
    schedule = ["train.iterations=3", "train.lr_schedule=linear", "train.lr=0.003"]
    straight = train(_config(tmp_path, "straight", *schedule))
    train(_config(tmp_path, "resumed", *schedule[1:], "train.iterations=1"))
    resumed = train(_config(tmp_path, "resumed", *schedule))

    rows = _rows(tmp_path / "straight")
    np.testing.assert_allclose([r["update/lr"] for r in rows], [0.003, 0.002, 0.001])
    assert _rows(tmp_path / "resumed") == rows
    a = load_file(straight.checkpoint / "model" / "model.safetensors")
    b = load_file(resumed.checkpoint / "model" / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)


# ---- gradient checkpointing ------------------------------------------------------------------


def _gradients_and_layer_calls(tmp_path, checkpointing: bool):
    from creditgym.train.models import build_policy, gradient_checkpointing

    config = _config(tmp_path, "gc", f"train.gradient_checkpointing={str(checkpointing).lower()}")
    policy = build_policy(config)
    layer = policy.model.model.layers[0]
    calls, mlp_forward = [], layer.mlp.forward  # (module hooks do not rerun in the recompute)

    def counted_forward(*args, **kwargs):
        calls.append(1)
        return mlp_forward(*args, **kwargs)

    layer.mlp.forward = counted_forward
    prompts, responses = [[5, 6, 7, 8, 9]] * 2, [[10, 11, 2], [12, 13, 2]]
    with gradient_checkpointing(policy.model):
        logprobs, _ = policy.score(prompts, responses, None)
        torch.stack([lp.sum() for lp in logprobs]).sum().backward()
    grads = {n: p.grad.clone() for n, p in policy.model.named_parameters() if p.grad is not None}
    return grads, len(calls), policy.model.training


def test_gradient_checkpointing_recomputes_layers_and_keeps_the_gradient(tmp_path):
    plain, plain_calls, _ = _gradients_and_layer_calls(tmp_path, False)
    checkpointed, checkpointed_calls, training = _gradients_and_layer_calls(tmp_path, True)
    assert plain_calls == 1 and checkpointed_calls == 2  # the backward pass ran the layer again
    assert not training  # the policy itself stays in eval mode (no dropout in the update)
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7)


# ---- trackers --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["wandb", "trackio"])
def test_report_to_sends_every_numeric_metric_at_its_iteration(tmp_path, monkeypatch, name):
    calls = []
    stand_in = types.ModuleType(name)
    stand_in.init = lambda **kwargs: calls.append(("init", kwargs))
    stand_in.log = lambda row, step: calls.append(("log", row, step))
    stand_in.finish = lambda: calls.append(("finish",))
    monkeypatch.setitem(sys.modules, name, stand_in)

    writer = MetricsWriter(
        tmp_path / "run", tensorboard=False, report_to=[name], config={"train": {"lr": 1e-3}}
    )
    writer.write({"iteration": 3, "rollout/success": 0.5, "note": "text", "ok": True}, 3)
    writer.close()
    assert calls[0] == (
        "init",
        {"project": "creditgym", "name": "run", "config": {"train": {"lr": 1e-3}}},
    )
    assert calls[1] == ("log", {"iteration": 3.0, "rollout/success": 0.5}, 3)
    assert calls[2] == ("finish",)


def test_a_tracker_that_is_not_installed_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import fails
    with pytest.raises(ImportError, match="pip install wandb"):
        MetricsWriter(tmp_path, report_to=["wandb"])


def test_an_unknown_tracker_is_a_config_error():
    with pytest.raises(ConfigError, match="run.report_to.*mlflow"):
        load_config(None, ["run.report_to=[mlflow]"])


def test_wandb_offline_run_is_written_to_disk(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is an optional tracker (pip install wandb)")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    writer = MetricsWriter(tmp_path / "run", tensorboard=False, report_to=["wandb"])
    writer.write({"iteration": 1, "rollout/success": 0.25}, 1)
    writer.close()
    assert list(tmp_path.rglob("*.wandb"))


def test_trackio_run_is_written_locally(tmp_path, monkeypatch):
    pytest.importorskip("trackio", reason="trackio is an optional tracker (pip install trackio)")
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path))
    writer = MetricsWriter(tmp_path / "run", tensorboard=False, report_to=["trackio"])
    writer.write({"iteration": 1, "rollout/success": 0.25}, 1)
    writer.close()
    assert any(tmp_path.rglob("*"))


# ---- export ----------------------------------------------------------------------------------


def test_export_writes_a_plain_hugging_face_model_with_a_model_card(tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from creditgym.cli import main

    result = train(_config(tmp_path, "run", "train.iterations=1"))
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "out")]) == 0

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    AutoTokenizer.from_pretrained(tmp_path / "out")
    trained = load_file(result.checkpoint / "model" / "model.safetensors")
    for name, tensor in model.state_dict().items():
        if name in trained:
            torch.testing.assert_close(tensor, trained[name], rtol=0, atol=0)
    card = (tmp_path / "out" / "README.md").read_text()
    for section in ("## Prompt format", "## Chat template", "## Held-out evaluation"):
        assert section in card
    assert "prompt template: `compact`" in card and "| valid_seen |" in card
    assert "lr_schedule: constant" in card  # the training config, in full
    # a second export does not overwrite the first
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "out")]) != 0
    assert "exists and is not empty" in capsys.readouterr().err


def test_export_merges_lora_adapters_into_plain_weights(tmp_path):
    pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    from creditgym.train.export import export_run
    from creditgym.train.models import build_policy

    lora = ["policy.lora.enabled=true", "policy.lora.r=4", "policy.lora.target_modules=[q_proj]"]
    # an entropy bonus gives every turn a gradient, so the adapters surely move
    config = _config(
        tmp_path, "lora", "train.iterations=1", "train.lr=0.05", "train.entropy_coef=0.5", *lora
    )
    result = train(config)
    export_run(tmp_path / "lora", tmp_path / "out")

    assert not (tmp_path / "out" / "adapter_config.json").exists()
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    adapted = build_policy(config, init_from=result.checkpoint / "model")
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        expected = adapted.model(input_ids=ids).logits
        torch.testing.assert_close(exported(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-5)
        base = build_policy(_config(tmp_path, "base")).model(input_ids=ids).logits
    assert not torch.allclose(base, expected)  # the adapters did change the model


# ---- vLLM + LoRA -----------------------------------------------------------------------------


def test_vllm_with_lora_fails_when_the_config_loads():
    with pytest.raises(ConfigError, match="vllm.*lora.*base model"):
        load_config(None, ["rollout.engine=vllm", "policy.lora.enabled=true"])
