"""Policy capabilities are declared (protocols and flags), not read from signatures."""

from __future__ import annotations

import pytest

from creditgym.agents.base import Generation
from creditgym.agents.protocols import (
    ChatPolicy,
    TrainablePolicy,
    can_teacher_force,
    check_admissible,
)
from creditgym.agents.scripted import ExpertPolicy, RandomPolicy
from creditgym.credit.shapers.igpo import EosScorer


class _TakesTeacherForce:
    """Accepts ``teacher_force`` in its signature but does not declare the capability."""

    def generate(self, prompts, admissible_actions=None, envs=None, *, teacher_force=None):
        return [Generation(text="x") for _ in prompts]

    def logprobs(self, prompts, continuations):
        raise NotImplementedError


class _DeclaresTeacherForce(_TakesTeacherForce):
    supports_teacher_forcing = True


def test_teacher_forcing_is_what_a_policy_declares_not_its_signature():
    assert not can_teacher_force(_TakesTeacherForce())
    assert can_teacher_force(_DeclaresTeacherForce())
    declined = _DeclaresTeacherForce()
    declined.supports_teacher_forcing = False
    assert not can_teacher_force(declined)


def test_scripted_policies_declare_no_model_capabilities():
    for policy in (ExpertPolicy(), RandomPolicy()):
        assert not can_teacher_force(policy)
        assert not isinstance(policy, ChatPolicy)
        assert not isinstance(policy, TrainablePolicy)
        assert not isinstance(policy, EosScorer)


def test_hf_policy_declares_what_training_uses():
    pytest.importorskip("transformers")
    from creditgym.train.corpus import load_tiny

    policy = load_tiny(["creditgym/HouseholdEasy-v0"], device="cpu")
    assert isinstance(policy, TrainablePolicy)
    assert isinstance(policy, ChatPolicy)
    assert can_teacher_force(policy)
    assert isinstance(policy, EosScorer) and policy.appends_eos


def test_constrained_generation_without_admissible_actions_says_how_to_fix():
    with pytest.raises(ValueError, match="constrained=False"):
        check_admissible(True, None, 2)
    with pytest.raises(ValueError, match="2 admissible-action lists for 3 conversations"):
        check_admissible(False, [["a"], ["b"]], 3, "conversation")
    check_admissible(True, [["a"], None], 2)  # one list (or None) per row is fine
    check_admissible(False, None, 2)
