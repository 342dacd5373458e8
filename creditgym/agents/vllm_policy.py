"""Rollouts on vLLM, training on the Hugging Face model: the ``rollout.engine=vllm`` policy.

`VLLMPolicy` wraps the trainer's `HFPolicy`. It samples with an in-process `vllm.LLM` built
from the policy's own weights, and after every update `sync_weights` loads the trainer's
weights into vLLM's workers (through `collective_rpc` and the `WeightSyncExtension` mixed into
them, vLLM's documented way to update weights in place), then drops vLLM's prefix cache.

What the PPO loss needs stays exact: the log-probs of every sampled response are recomputed by
the HF model under the trainer's sampling distribution (temperature, and the admissible-action
mask in constrained mode), as verl does, rather than taken from vLLM's sampler. In constrained
mode vLLM's structured output picks one of the admissible actions (``choice``) and the response
is that action tokenised as the HF policy tokenises it, so the update scores exactly the
tokens the constraint allows.

Needs a CUDA GPU and ``pip install 'creditgym[vllm]'``. Weights travel through host memory on
each sync, which suits models up to a few billion parameters; beyond that use vLLM's NCCL
weight-update group (vLLM's RLHF examples).
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from creditgym.agents.base import Generation
from creditgym.agents.hf.policy import HFPolicy
from creditgym.agents.protocols import check_admissible

__all__ = ["VLLMPolicy", "WeightSyncExtension", "cuda_available", "export_for_engine"]


def cuda_available() -> bool:
    return torch.cuda.is_available()


class WeightSyncExtension:
    """Mixed into vLLM's GPU workers (``worker_extension_cls``): loads weights sent by the
    trainer."""

    def load_trainer_weights(self, named_tensors: list[tuple[str, torch.Tensor]]) -> None:
        model = self.model_runner.model  # type: ignore[attr-defined]  (the vLLM worker's)
        device = next(model.parameters()).device
        model.load_weights(weights=[(name, tensor.to(device)) for name, tensor in named_tensors])


class VLLMPolicy:
    """The `Policy` interface on a vLLM engine, for rollouts; `trainer_policy` is trained and
    scores.

    Args:
        trainer_policy: the HF policy the trainer updates (its weights seed the engine).
        gpu_memory_utilization: share of the GPU vLLM may take (the trainer needs the rest).
        dtype: vLLM's weight dtype (``"auto"``: the model's, bf16 for bf16 checkpoints); with
            ``"bfloat16"`` each sync sends bf16 copies of the trainer's (fp32 master) weights.
        score_batch: responses rescored per HF forward pass.
    """

    def __init__(
        self,
        trainer_policy: HFPolicy,
        *,
        gpu_memory_utilization: float = 0.4,
        dtype: str = "auto",
        seed: int = 0,
        score_batch: int = 64,
    ) -> None:
        if importlib.util.find_spec("vllm") is None:
            raise ImportError(
                "rollout.engine=vllm needs vLLM: pip install 'creditgym[vllm]' (CUDA only)"
            )
        if not cuda_available():
            raise RuntimeError(
                "rollout.engine=vllm needs a CUDA GPU and none is visible; "
                "use rollout.engine=hf on this machine"
            )
        from vllm import LLM

        self.trainer_policy = trainer_policy
        self.score_batch = score_batch
        # what floating-point weights are cast to before they travel (None: as the trainer has them)
        self.sync_dtype: torch.dtype | None = _SYNC_DTYPES.get(dtype)
        self._model_dir = tempfile.TemporaryDirectory(prefix="creditgym-vllm-")
        export_for_engine(trainer_policy, self._model_dir.name)
        self.llm = LLM(
            model=self._model_dir.name,
            tokenizer=self._model_dir.name,
            dtype=dtype,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            enable_prefix_caching=True,  # a group's episodes share their prompts
            worker_extension_cls=f"{__name__}.WeightSyncExtension",
        )

    # the trainer's sampling settings and sampler are the HF policy's (eval mode changes them there)
    @property
    def temperature(self) -> float:
        return self.trainer_policy.temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self.trainer_policy.temperature = value

    @property
    def generator(self) -> torch.Generator:
        return self.trainer_policy.generator

    @property
    def constrained(self) -> bool:
        return self.trainer_policy.constrained

    def sync_weights(self) -> None:
        """Load the trainer's current weights into vLLM (after every update)."""
        named = [
            (name, _engine_copy(tensor, self.sync_dtype))
            for name, tensor in self.trainer_policy.model.state_dict().items()
        ]
        self.llm.collective_rpc("load_trainer_weights", args=(named,))
        self.llm.reset_prefix_cache()  # cached KV blocks were computed by the old weights

    def generate(
        self,
        prompts: Sequence[str],
        admissible_actions: Sequence[Sequence[str] | None] | None = None,
        envs: Sequence[Any] | None = None,
    ) -> list[Generation]:
        """Sample one response per prompt on vLLM; log-probs from the HF model (see module
        docstring)."""
        from vllm.inputs import TokensPrompt

        policy = self.trainer_policy
        check_admissible(policy.constrained, admissible_actions, len(prompts))
        choices = list(admissible_actions) if policy.constrained else [None] * len(prompts)
        prompt_ids = [policy.encode_prompt(prompt) for prompt in prompts]
        generations = [Generation(text="", prompt_ids=ids) for ids in prompt_ids]
        active = [i for i, actions in enumerate(choices) if actions is None or len(actions) > 0]
        for i in set(range(len(prompts))) - set(active):
            generations[i].error = "no admissible actions to choose from"
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=prompt_ids[i]) for i in active],
            [self._sampling_params(choices[i]) for i in active],
            use_tqdm=False,
        )
        for i, output in zip(active, outputs):
            sample = output.outputs[0]
            if choices[i] is not None:  # the chosen action, tokenised as the trainer tokenises it
                generations[i].text = sample.text
                generations[i].token_ids = policy.encode_response(sample.text)
            else:
                generations[i].token_ids = list(sample.token_ids)
                generations[i].text = policy.decode_response(sample.token_ids)
        self._rescore([generations[i] for i in active], [choices[i] for i in active])
        return generations

    def _sampling_params(self, actions: Sequence[str] | None) -> Any:
        from vllm import SamplingParams

        policy = self.trainer_policy
        # a per-request seed from the trainer's sampler: runs and resumed runs sample alike
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=policy.generator).item())
        kwargs: dict[str, Any] = {
            "temperature": policy.temperature,
            "top_p": policy.top_p,
            "max_tokens": policy.max_new_tokens,
            "stop_token_ids": sorted(policy.stop_token_ids),
            "seed": seed,
        }
        if actions is not None:
            kwargs.update(_choice(list(actions)))
        return SamplingParams(**kwargs)

    @torch.no_grad()
    def _rescore(self, generations: list[Generation], choices: list[Sequence[str] | None]) -> None:
        """Fill each generation's log-probs from the HF model's sampling distribution."""
        for start in range(0, len(generations), self.score_batch):
            chunk = generations[start : start + self.score_batch]
            chunk_choices = choices[start : start + self.score_batch]
            constrained = all(c is not None for c in chunk_choices) and self.constrained
            scores, _ = self.trainer_policy.score(
                [g.prompt_ids for g in chunk],
                [g.token_ids for g in chunk],
                [list(c) for c in chunk_choices] if constrained else None,
            )
            for generation, values in zip(chunk, scores):
                generation.logprobs = values.float().cpu().tolist()

    #: `logprobs` is the HF policy's, which closes continuations with EOS unless add_eos=False
    appends_eos = True

    def logprobs(
        self, prompts: Sequence[str], continuations: Sequence[str], **kwargs: Any
    ) -> list[np.ndarray]:
        """Teacher-forced log-probs, from the HF model (credit modules score with it)."""
        return self.trainer_policy.logprobs(prompts, continuations, **kwargs)

    def score(self, *args: Any, **kwargs: Any) -> Any:
        return self.trainer_policy.score(*args, **kwargs)

    def __repr__(self) -> str:
        return f"VLLMPolicy(trainer={self.trainer_policy!r})"


_SYNC_DTYPES = {
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "half": torch.float16,
    "float32": torch.float32,
    "float": torch.float32,
}


def _engine_copy(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """A host copy of one weight for the engine, cast first (on the GPU: half the transfer)."""
    tensor = tensor.detach()
    if dtype is not None and tensor.is_floating_point():
        tensor = tensor.to(dtype)
    return tensor.cpu()


def export_for_engine(policy: HFPolicy, directory: str | Path) -> Path:
    """Write `policy` as a Hugging Face directory (config, safetensors weights, tokenizer) on any
    process: under torch.distributed, transformers' `save_pretrained` writes on rank 0 only, and
    every rank needs its own engine."""
    from safetensors.torch import save_model

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    model = policy.model
    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(out)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(out)
    save_model(
        model, str(out / "model.safetensors"), metadata={"format": "pt"}
    )  # tied weights once
    policy.tokenizer.save_pretrained(out)
    return out


def _choice(actions: list[str]) -> dict[str, Any]:
    """Sampling-params fields that restrict the output to one of `actions`, in vLLM's current
    API (``structured_outputs``, vLLM >= 0.11) or its older one (``guided_decoding``)."""
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(choice=actions)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(choice=actions)}
