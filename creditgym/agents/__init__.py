"""Agents: prompts and action parsing, and policies for every engine (HF, OpenAI-compatible,
vLLM, scripted expert, random), all behind the `Policy` interface.

Importing this package stays light (no torch, no transformers): the model-backed names
(`HFPolicy`, `ActionTrie`, `build_tiny_agent`, ...) are imported on first use.
"""

from importlib import import_module
from typing import Any

from creditgym.agents.base import Generation, Policy
from creditgym.agents.factory import load_policy, register_policy
from creditgym.agents.parsing import ParsedAction, parse_action
from creditgym.agents.prompts import build_prompt, chat_messages
from creditgym.agents.protocols import (
    ChatPolicy,
    TeacherForcingPolicy,
    TrainablePolicy,
    WeightSyncedEngine,
)
from creditgym.agents.scripted import ExpertPolicy, RandomPolicy

_LAZY = {
    "HFPolicy": "creditgym.agents.hf.policy",
    "ActionTrie": "creditgym.agents.hf.constrained",
    "fit_tokenizer": "creditgym.agents.hf.tokenizer",
    "TinyCorpus": "creditgym.agents.hf.tiny",
    "build_tiny_model": "creditgym.agents.hf.tiny",
    "build_tiny_agent": "creditgym.agents.hf.tiny",
    "load_smollm2": "creditgym.agents.hf.smollm",
}

__all__ = [
    "ActionTrie",
    "ChatPolicy",
    "ExpertPolicy",
    "Generation",
    "HFPolicy",
    "ParsedAction",
    "Policy",
    "RandomPolicy",
    "TeacherForcingPolicy",
    "TinyCorpus",
    "TrainablePolicy",
    "WeightSyncedEngine",
    "build_prompt",
    "build_tiny_agent",
    "build_tiny_model",
    "chat_messages",
    "fit_tokenizer",
    "load_policy",
    "load_smollm2",
    "parse_action",
    "register_policy",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'creditgym.agents' has no attribute {name!r}")
