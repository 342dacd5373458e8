"""Building the trained policy from the config: a fresh tiny model, SmolLM2, any HF model or a
checkpoint, optionally with LoRA adapters, and the frozen reference for the KL penalty; the
rollout engine that samples for it, and the weight sync after each update (`sync_weights`)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from creditgym.agents.factory import load_policy, resolve_backend, trainable_backends
from creditgym.agents.hf.policy import HFPolicy, resolve_device
from creditgym.agents.protocols import TrainablePolicy, WeightSyncedEngine
from creditgym.config import Config, LoraConfig, check_model_path
from creditgym.train.precision import Precision, resolve_precision

__all__ = [
    "build_policy",
    "build_rollout_policy",
    "frozen_copy",
    "gradient_checkpointing",
    "sync_weights",
    "training_precision",
]


def training_precision(config: Config) -> Precision:
    """`train.precision` resolved on the run's device (``auto``: bf16-mixed on CUDA, else fp32)."""
    device, _ = resolve_device(config.run.device)
    return resolve_precision(config.train.precision, device)


def _sampling_kwargs(config: Config) -> dict[str, Any]:
    policy = config.policy
    return {
        "device": config.run.device,
        "dtype": training_precision(config).weight_dtype,
        "temperature": policy.temperature,
        "top_p": policy.top_p,
        "max_new_tokens": policy.max_new_tokens,
        "constrained": policy.constrained,
        "chat_template": policy.chat_template,
        "think": policy.think,
        "think_tokens": policy.think_tokens,
        "max_context_tokens": policy.max_context_tokens,
        "seed": config.run.seed,
    }


def _with_lora(model: Any, lora: LoraConfig, adapter_from: Path | None) -> Any:
    try:
        from peft import LoraConfig as PeftLoraConfig
        from peft import PeftModel, get_peft_model
    except ImportError as error:
        raise ImportError(
            "policy.lora.enabled needs peft: pip install 'creditgym[lora]'"
        ) from error
    if adapter_from is not None:
        return PeftModel.from_pretrained(model, str(adapter_from), is_trainable=True)
    peft_config = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, peft_config)


def build_rollout_policy(config: Config, policy: TrainablePolicy) -> Any:
    """What samples the rollouts: the ``rollout.engine`` backend built for `policy` (``hf``: the
    policy itself; ``vllm``: an engine seeded with its weights, whose `sync_weights` the trainer
    calls after each update)."""
    # a separate engine holds bf16 copies of the fp32 master weights under bf16-mixed
    engine_dtype = "float32" if training_precision(config).name == "fp32" else "bfloat16"
    return load_policy(
        config.rollout.engine,
        trainer_policy=policy,
        lora=config.policy.lora.enabled,
        gpu_memory_utilization=config.rollout.vllm_gpu_memory,
        dtype=engine_dtype,
        seed=config.run.seed,
    )


def sync_weights(rollout_policy: Any) -> None:
    """Give a separate rollout engine (vLLM) the trained weights; a no-op when it is the policy."""
    if isinstance(rollout_policy, WeightSyncedEngine):
        rollout_policy.sync_weights()


def build_policy(config: Config, *, init_from: Path | None = None) -> TrainablePolicy:
    """The policy `config.policy` describes, with weights from `init_from` when resuming.

    `init_from` is a checkpoint's `model/` directory: the full model, or with LoRA only the
    adapters, which are put back onto the freshly loaded base model.
    """
    sampling = _sampling_kwargs(config)
    lora = config.policy.lora
    if init_from is not None and not lora.enabled:
        return HFPolicy.from_pretrained(init_from, **sampling)
    if config.policy.model == "tiny":
        from creditgym.train.corpus import load_tiny

        tiny = config.policy.tiny
        policy = load_tiny(
            [config.env.id],
            env_kwargs={config.env.id: dict(config.env.kwargs)},  # e.g. a game_file it needs
            vocab_size=tiny.vocab_size,
            hidden_size=tiny.hidden_size,
            num_layers=tiny.num_layers,
            num_heads=tiny.num_heads,
            **sampling,
        )
    else:
        check_model_path(config.policy.model)  # a missing local directory: say so, load nothing
        if not resolve_backend(config.policy.model).trainable:
            raise ValueError(
                f"policy.model={config.policy.model!r} is not a trainable model; use one of "
                f"{', '.join(trainable_backends())} (register_policy(..., trainable=True) adds "
                "a backend)"
            )
        policy = load_policy(config.policy.model, **sampling)
    if not isinstance(policy, TrainablePolicy):
        raise ValueError(
            f"policy.model={config.policy.model!r} is not a trainable model; use tiny, smollm2, "
            "a local Hugging Face directory, a model name, or a registered backend whose policy "
            "is a TrainablePolicy"
        )
    if lora.enabled:
        policy.model = _with_lora(policy.model, lora, init_from)
    if config.train.gradient_checkpointing:
        _enable_gradient_checkpointing(policy.model)
    return policy


def _enable_gradient_checkpointing(model: Any) -> None:
    """Checkpoint every decoder layer (non-reentrant, so LoRA's frozen inputs need no grads)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise ValueError(
            f"train.gradient_checkpointing=true, but {type(base).__name__} does not support it; "
            "set train.gradient_checkpointing=false"
        )
    enable = getattr(base, "activation_checkpointing_enable", None)
    if enable is not None:  # transformers >= 5.x's name
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


@contextmanager
def gradient_checkpointing(model: Any) -> Iterator[None]:
    """Let checkpointed layers recompute their activations during an update.

    transformers checkpoints a layer only in training mode, but the policy stays in eval mode
    (no dropout in RL updates, so the update scores what the rollout sampled); so only the
    checkpointed layers themselves are switched, not their dropout submodules.
    """
    layers = [m for m in model.modules() if getattr(m, "gradient_checkpointing", False) is True]
    saved = [layer.training for layer in layers]
    for layer in layers:
        layer.training = True
    try:
        yield
    finally:
        for layer, training in zip(layers, saved):
            layer.training = training


def frozen_copy(policy: HFPolicy) -> HFPolicy:
    """A frozen copy of the policy's current weights (the KL reference), sampling alike."""
    model = copy.deepcopy(policy.model)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return HFPolicy(
        model,
        policy.tokenizer,
        device=policy.device,
        temperature=policy.temperature,
        top_p=policy.top_p,
        max_new_tokens=policy.max_new_tokens,
        constrained=policy.constrained,
        chat_template=policy.chat_template,
        think=policy.think,
        think_tokens=policy.think_tokens,
        max_context_tokens=policy.max_context_tokens,
    )
