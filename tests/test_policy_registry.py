"""The registry of policy backends: a third party adds one from outside creditgym, and every
spec (the CLI's --agent, policy.model, rollout.engine) resolves through it."""

from __future__ import annotations

import json

import pytest

from creditgym.agents.base import Generation
from creditgym.agents.factory import (
    load_policy,
    policy_backends,
    register_policy,
    resolve_backend,
    rollout_engines,
    unregister_policy,
)
from creditgym.cli import main
from creditgym.config import ConfigError, load_config


class FirstActionPolicy:
    """A toy backend's policy: the first admissible action; records what it was built with."""

    def __init__(self, **options):
        self.options = options
        self.calls = 0

    def generate(self, prompts, admissible_actions=None, envs=None):
        self.calls += 1
        return [Generation(text=actions[0]) for actions in admissible_actions]

    def logprobs(self, prompts, continuations):
        raise NotImplementedError("FirstActionPolicy samples only")


@pytest.fixture
def first_action_backend():
    built: list[FirstActionPolicy] = []

    @register_policy("first-action", text_model=False, cli_options=("seed",))
    def build(spec: str, **options) -> FirstActionPolicy:
        built.append(FirstActionPolicy(spec=spec, **options))
        return built[-1]

    yield built
    unregister_policy("first-action")


def test_a_backend_registered_from_a_test_file_is_evaluated_by_creditgym_eval(
    first_action_backend, tmp_path
):
    out_file = tmp_path / "results.json"
    argv = ["eval", "--env", "creditgym/HouseholdEasy-v0", "--agent", "first-action"]
    argv += ["--episodes", "3", "--splits", "valid_seen", "--seed", "7", "--json", str(out_file)]
    assert main(argv) == 0
    [policy] = first_action_backend
    assert policy.options == {"spec": "first-action", "seed": 7}  # only the options it declared
    assert policy.calls > 0  # the eval loop sampled from it
    [row] = json.loads(out_file.read_text())
    assert row["agent"] == "first-action" and row["episodes"] == 3


def test_built_ins_resolve_through_the_registry():
    assert {"expert", "random", "tiny", "smollm2", "openai", "hf", "vllm"} <= set(policy_backends())
    assert resolve_backend("expert:eps=0.5").name == "expert"
    assert resolve_backend("openai:http://localhost:8000/v1").name == "openai"
    assert resolve_backend("HuggingFaceTB/SmolLM2-135M-Instruct").name == "hf"
    assert load_policy("expert:eps=0.25", seed=1).epsilon == 0.25


def test_unknown_backend_error_lists_the_registered_ones(first_action_backend):
    with pytest.raises(ValueError) as error:
        resolve_backend("first-actoin")
    message = str(error.value)
    assert "did you mean 'first-action'" in message
    for name in ("expert", "random", "tiny", "smollm2", "openai:<base_url>", "first-action"):
        assert name in message


def test_registering_a_name_again_warns_and_replaces(first_action_backend):
    with pytest.warns(UserWarning, match="'first-action' registered again"):
        register_policy("first-action", text_model=False)(lambda spec, **o: "replaced")
    assert load_policy("first-action") == "replaced"


def test_rollout_engine_choices_come_from_the_registry():
    assert rollout_engines() == ("hf", "vllm")
    with pytest.raises(ConfigError, match="one of hf, vllm"):
        load_config(None, ["rollout.engine=first-action"])

    @register_policy("first-action", rollout_engine=True)
    def engine(spec, *, trainer_policy=None, **options):
        return trainer_policy

    try:
        config = load_config(None, ["rollout.engine=first-action"])
        assert config.rollout.engine == "first-action"
        from creditgym.train.models import build_rollout_policy

        trained = object()
        assert build_rollout_policy(config, trained) is trained
    finally:
        unregister_policy("first-action")


def test_hf_and_vllm_name_only_what_they_wrap():
    with pytest.raises(ValueError, match="names none"):
        load_policy("hf")
    with pytest.raises(ValueError, match="rollout.engine=vllm"):
        load_policy("vllm")


@pytest.mark.parametrize("model", ["expert", "random", "openai:http://127.0.0.1:9/v1"])
def test_policy_model_must_name_a_trainable_backend(model):
    from creditgym.train.models import build_policy

    with pytest.raises(ValueError, match="not a trainable model; use one of tiny, smollm2"):
        build_policy(load_config(None, [f"policy.model={model}"]))
