"""The vLLM rollout engine: its guard on this CPU machine, and its logic against a stand-in for
vLLM's API (`LLM.generate`, `collective_rpc`, `reset_prefix_cache`, structured-output choice).
The real engine needs CUDA; `test_real_vllm_engine` runs wherever a GPU and vLLM are present."""

import importlib.util
import random
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from creditgym.agents import vllm_policy
from creditgym.agents.hf.policy import HFPolicy
from creditgym.agents.hf.tiny import build_tiny_model
from creditgym.agents.hf.tokenizer import fit_tokenizer
from creditgym.config import load_config

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart_rl.yaml"
ACTIONS = ["go to fridge 1", "take apple 1 from countertop 1", "open drawer 2", "look"]


def tiny_policy(constrained=True) -> HFPolicy:
    tokenizer = fit_tokenizer(
        ["Task: put an apple in the fridge. " + " ".join(ACTIONS)] * 3, vocab_size=300
    )
    model = build_tiny_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=0)
    return HFPolicy(model, tokenizer, constrained=constrained, max_new_tokens=8)


class FakeLLM:
    """Records what creditgym asks of vLLM; answers a choice request with a seeded choice."""

    def __init__(self, model, **kwargs):
        self.model, self.kwargs, self.rpcs, self.cache_resets = model, kwargs, [], 0

    def generate(self, prompts, params, use_tqdm=True):
        outputs = []
        for prompt, p in zip(prompts, params):
            assert prompt["prompt_token_ids"], "prompts go to vLLM as token ids"
            rng = random.Random(p.seed)
            if p.structured_outputs is not None:
                text, ids = (
                    rng.choice(p.structured_outputs.choice),
                    [7, 8],
                )  # vLLM's own tokenisation
            else:
                ids = [rng.randrange(3, 200) for _ in range(3)] + [p.stop_token_ids[0]]
                text = "free text"
            outputs.append(
                types.SimpleNamespace(outputs=[types.SimpleNamespace(text=text, token_ids=ids)])
            )
        return outputs

    def collective_rpc(self, method, args=()):
        self.rpcs.append((method, args))

    def reset_prefix_cache(self):
        self.cache_resets += 1


@dataclass
class FakeSamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    stop_token_ids: list = field(default_factory=list)
    seed: int | None = None
    structured_outputs: object = None


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = FakeLLM, FakeSamplingParams
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = lambda prompt_token_ids: {"prompt_token_ids": prompt_token_ids}
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams = lambda choice: types.SimpleNamespace(choice=choice)
    for name, module in {
        "vllm": vllm,
        "vllm.inputs": inputs,
        "vllm.sampling_params": sampling,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else None
    )
    monkeypatch.setattr(vllm_policy, "cuda_available", lambda: True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a CPU machine gives")
def test_without_cuda_the_vllm_engine_says_what_to_use_instead(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    with pytest.raises(RuntimeError, match="needs a CUDA GPU.*rollout.engine=hf"):
        vllm_policy.VLLMPolicy(tiny_policy())


def test_lora_with_vllm_is_a_clear_error_when_the_config_loads():
    with pytest.raises(ValueError, match="lora"):
        load_config(QUICKSTART, ["rollout.engine=vllm", "policy.lora.enabled=true"])


def test_constrained_samples_are_admissible_tokenised_like_the_trainer_and_scored_by_it(
    fake_vllm, tmp_path
):
    policy = tiny_policy()
    engine = vllm_policy.VLLMPolicy(policy)
    assert engine.llm.kwargs["worker_extension_cls"].endswith("WeightSyncExtension")
    admissible = [ACTIONS, ACTIONS[:2], []]
    generations = engine.generate(["prompt one", "prompt two", "prompt three"], admissible)
    for generation, actions in zip(generations[:2], admissible):
        assert generation.text in actions
        assert generation.token_ids == policy.encode_response(generation.text)
        expected, _ = policy.score([generation.prompt_ids], [generation.token_ids], [list(actions)])
        torch.testing.assert_close(torch.tensor(generation.logprobs), expected[0])
    assert generations[2].error == "no admissible actions to choose from"
    # the per-request seeds come from the trainer's sampler: same state, same samples
    policy.generator.manual_seed(3)
    first = [g.text for g in engine.generate(["p"] * 6, [ACTIONS] * 6)]
    policy.generator.manual_seed(3)
    assert [g.text for g in engine.generate(["p"] * 6, [ACTIONS] * 6)] == first


def test_free_form_samples_keep_vllms_tokens(fake_vllm):
    policy = tiny_policy(constrained=False)
    generation = vllm_policy.VLLMPolicy(policy).generate(["a prompt"])[0]
    assert len(generation.token_ids) == 4 and generation.token_ids[-1] in policy.stop_token_ids
    expected, _ = policy.score([generation.prompt_ids], [generation.token_ids])
    torch.testing.assert_close(torch.tensor(generation.logprobs), expected[0])


def test_sync_sends_every_weight_and_drops_the_prefix_cache(fake_vllm):
    policy = tiny_policy()
    engine = vllm_policy.VLLMPolicy(policy)
    with torch.no_grad():
        next(policy.model.parameters()).add_(1.0)
    engine.sync_weights()
    ((method, (named,)),) = engine.llm.rpcs
    assert method == "load_trainer_weights" and engine.llm.cache_resets == 1
    state = policy.model.state_dict()
    assert [name for name, _ in named] == list(state)
    for name, tensor in named:
        torch.testing.assert_close(tensor, state[name].cpu())


def test_a_bf16_engine_gets_bf16_copies_of_the_fp32_master_weights(fake_vllm):
    policy = tiny_policy()
    engine = vllm_policy.VLLMPolicy(policy, dtype="bfloat16")
    engine.sync_weights()
    ((_, (named,)),) = engine.llm.rpcs
    state = policy.model.state_dict()
    for name, tensor in named:
        assert state[name].dtype == torch.float32 and tensor.dtype == torch.bfloat16
        torch.testing.assert_close(tensor, state[name].to(torch.bfloat16).cpu(), rtol=0, atol=0)


def test_the_engine_gets_a_loadable_copy_of_the_policy(tmp_path):
    policy = tiny_policy()
    exported = HFPolicy.from_pretrained(vllm_policy.export_for_engine(policy, tmp_path))
    assert exported.model.config.architectures == [type(policy.model).__name__]
    for (name, a), (_, b) in zip(
        policy.model.state_dict().items(), exported.model.state_dict().items()
    ):
        torch.testing.assert_close(a, b, msg=name)
    assert exported.encode_prompt("go to fridge 1") == policy.encode_prompt("go to fridge 1")


def test_the_extension_loads_weights_into_the_workers_model():
    class Model(torch.nn.Linear):
        def load_weights(self, weights):
            self.loaded = list(weights)

    worker = type("Worker", (vllm_policy.WeightSyncExtension,), {})()
    worker.model_runner = types.SimpleNamespace(model=Model(2, 2))
    worker.load_trainer_weights([("weight", torch.ones(2, 2))])
    assert [name for name, _ in worker.model_runner.model.loaded] == ["weight"]


def test_trainer_with_the_vllm_engine_syncs_after_every_update(fake_vllm, tmp_path, monkeypatch):
    from conftest import TINY

    from creditgym.train.trainer import train

    syncs = []
    sync = vllm_policy.VLLMPolicy.sync_weights
    monkeypatch.setattr(
        vllm_policy.VLLMPolicy, "sync_weights", lambda self: syncs.append(1) or sync(self)
    )
    overrides = [
        *TINY,
        "rollout.engine=vllm",
        "rollout.groups=2",
        "rollout.group_size=2",
        "train.iterations=2",
    ]
    overrides += [
        "env.kwargs={max_steps: 4}",
        "eval.episodes=2",
        "eval.every=0",
        f"run.output_dir={tmp_path}",
    ]
    result = train(load_config(QUICKSTART, overrides))
    assert result.iterations == 2 and len(syncs) == 2


@pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None,
    reason="the real vLLM engine needs CUDA and `pip install 'creditgym[vllm]'`",
)
def test_real_vllm_engine():
    policy = tiny_policy()
    policy.model.to("cuda")
    policy.device = torch.device("cuda")
    engine = vllm_policy.VLLMPolicy(policy, gpu_memory_utilization=0.2)
    generations = engine.generate(["prompt"] * 4, [ACTIONS] * 4)
    assert all(g.text in ACTIONS and len(g.logprobs) == len(g.token_ids) for g in generations)
    engine.sync_weights()
