"""Agents: prompts and action parsing, and policies for every engine (HF, OpenAI-compatible,
vLLM, scripted expert, random), all behind the `Policy` interface."""

from creditgym.agents.base import Generation, Policy

__all__ = ["Generation", "Policy"]
