"""Mixed precision: fp32 master weights under bf16 autocast take the small updates that pure
bf16 weights round away, and checkpoints stay plain Hugging Face directories."""

import warnings

import numpy as np
import pytest
import torch

from creditgym.config import load_config
from creditgym.credit import register_shaper
from creditgym.train.models import build_policy, training_precision
from creditgym.train.precision import resolve_precision
from creditgym.train.update import TrainTurn, ppo_update

TINY = [
    "policy.tiny.hidden_size=32",
    "policy.tiny.num_layers=1",
    "policy.tiny.num_heads=2",
    "policy.tiny.vocab_size=512",
    "run.device=cpu",
]


def _turns(vocab: int, count: int = 24, seed: int = 0) -> list[TrainTurn]:
    rng = np.random.default_rng(seed)
    turns = []
    for i in range(count):
        response = rng.integers(3, vocab, size=4).tolist()
        turns.append(
            TrainTurn(
                prompt_ids=rng.integers(3, vocab, size=12).tolist(),
                response_ids=response,
                old_logprobs=[-6.0] * len(response),  # far from the policy: ratios off 1
                advantage=1.0 if i % 2 else -1.0,
                admissible_actions=None,
            )
        )
    return turns


def _fraction_moved_by_one_update(precision: str, lr: float = 1e-6) -> tuple[float, torch.dtype]:
    """One real PPO step (AdamW at `lr`) in `precision`; the share of weights it changed,
    among those that receive a gradient."""
    config = load_config(None, [*TINY, f"train.precision={precision}", "policy.constrained=false"])
    policy = build_policy(config)
    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in parameters]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    with training_precision(config).autocast():
        ppo_update(policy, optimizer, _turns(policy.model.config.vocab_size), clip_eps=10.0)
    trained = moved = 0
    for parameter, old in zip(parameters, before):
        has_gradient = parameter.grad is not None and parameter.grad != 0
        trained += int(has_gradient.sum())
        moved += int(((parameter.detach() != old) & has_gradient).sum())
    return moved / trained, parameters[0].dtype


def test_bf16_mixed_keeps_fp32_masters_and_moves_almost_every_weight_at_lr_1e_6():
    fraction, dtype = _fraction_moved_by_one_update("bf16-mixed")
    assert dtype == torch.float32
    assert fraction > 0.99, f"bf16-mixed moved only {fraction:.1%} of the trained weights"


def test_pure_bf16_weights_lose_most_updates_at_lr_1e_6():
    with pytest.warns(UserWarning, match="round away"):
        fraction, dtype = _fraction_moved_by_one_update("bf16")
    assert dtype == torch.bfloat16
    # measured on a bf16 nn.Linear(256, 256): 0.85% of the weights changed
    assert fraction < 0.05, f"pure bf16 moved {fraction:.1%} of the weights; expected few"


def test_fp32_moves_every_trained_weight():
    fraction, dtype = _fraction_moved_by_one_update("fp32")
    assert dtype == torch.float32 and fraction > 0.99


def test_auto_is_bf16_mixed_on_cuda_and_fp32_on_cpu():
    assert resolve_precision("auto", "cuda").name == "bf16-mixed"
    assert resolve_precision("auto", "cpu").name == "fp32"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only pure bf16 warns
        assert resolve_precision("bf16-mixed", "cpu").engine_dtype == torch.bfloat16


def test_bf16_mixed_runs_the_forward_pass_in_bf16():
    precision = resolve_precision("bf16-mixed", "cpu")
    layer = torch.nn.Linear(4, 4)
    with precision.autocast():
        assert layer(torch.ones(1, 4)).dtype == torch.bfloat16
    with resolve_precision("fp32", "cpu").autocast():
        assert layer(torch.ones(1, 4)).dtype == torch.float32


def test_an_unknown_precision_names_the_choices():
    with pytest.raises(ValueError) as raised:
        resolve_precision("fp16", "cpu")
    assert str(raised.value) == (
        "train.precision='fp16'; choose one of auto, fp32, bf16-mixed, bf16 "
        "(bf16-mixed: fp32 weights with bf16 autocast)"
    )


def test_pure_bf16_warns_with_the_fix_in_one_message():
    with pytest.warns(UserWarning) as caught:
        resolve_precision("bf16", "cpu")
    assert str(caught[0].message) == (
        "train.precision=bf16 keeps the weights in bfloat16: updates smaller than ~1/256 of a "
        "weight round away (at lr 1e-6 one AdamW step changes under 1% of the weights); "
        "use train.precision=bf16-mixed (fp32 master weights, bf16 autocast) unless the "
        "learning rate is large"
    )


def test_the_pure_bf16_warning_points_at_the_caller():
    with pytest.warns(UserWarning) as caught:
        resolve_precision("bf16", "cpu")
    assert caught[0].filename == __file__


def test_a_bf16_mixed_checkpoint_loads_in_plain_transformers(tmp_path):
    from transformers import AutoModelForCausalLM

    from creditgym.train.trainer import train

    config = load_config(
        None,
        [
            *TINY,
            "train.precision=bf16-mixed",
            "train.iterations=1",
            "env.kwargs={max_steps: 4}",
            "rollout.groups=2",
            "rollout.group_size=2",
            "eval.episodes=2",
            "eval.every=0",
            "run.progress=false",
            "run.tensorboard=false",
            "run.threads=1",
            f"run.output_dir={tmp_path}",
        ],
    )
    result = train(config)
    model = AutoModelForCausalLM.from_pretrained(result.checkpoint / "model")
    assert next(model.parameters()).dtype == torch.float32  # the fp32 masters were saved


@register_shaper("test_precision_action_length")
def _action_length(episodes, context) -> list[np.ndarray]:
    """A dense reward (len(action) / 100): nonzero advantages, so the update scores turns."""
    return [np.array([len(turn.action) / 100 for turn in ep.turns]) for ep in episodes]


def _forward_dtypes(monkeypatch, tmp_path, precision: str) -> list[tuple[str, bool]]:
    """Train one iteration (eval before and after, one update) and record, for every forward
    pass of the policy, the phase and whether it ran under bf16 autocast."""
    from conftest import household_config

    from creditgym.agents.hf.policy import HFPolicy
    from creditgym.train import trainer

    seen: list[tuple[str, bool]] = []
    phase = ["setup"]
    forward = HFPolicy._forward

    def recording_forward(self, **inputs):
        under_bf16 = torch.is_autocast_enabled("cpu") and (
            torch.get_autocast_dtype("cpu") == torch.bfloat16
        )
        seen.append((phase[0], under_bf16))
        return forward(self, **inputs)

    def in_phase(name, fn):
        def wrapped(*args, **kwargs):
            phase[0] = name
            return fn(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(HFPolicy, "_forward", recording_forward)
    for name in ("before_training", "collect", "update", "evaluate_if_due"):
        monkeypatch.setattr(trainer, name, in_phase(name, getattr(trainer, name)))
    config = household_config(
        tmp_path,
        precision,
        f"train.precision={precision}",
        "train.iterations=1",
        "eval.every=1",
        "run.device=cpu",
        "credit.shapers=[env, test_precision_action_length]",
    )
    trainer.train(config)
    return seen


def test_the_trainer_runs_every_forward_pass_under_bf16_autocast_in_bf16_mixed(
    monkeypatch, tmp_path
):
    seen = _forward_dtypes(monkeypatch, tmp_path, "bf16-mixed")
    phases = {phase for phase, _ in seen}
    assert {"before_training", "collect", "update", "evaluate_if_due"} <= phases
    assert [phase for phase, bf16 in seen if not bf16] == []


def test_the_trainer_runs_no_forward_pass_under_autocast_in_fp32(monkeypatch, tmp_path):
    seen = _forward_dtypes(monkeypatch, tmp_path, "fp32")
    assert seen and not any(bf16 for _, bf16 in seen)
