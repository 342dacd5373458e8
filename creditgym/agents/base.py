"""The one interface every policy implements, whatever its engine.

A policy maps a batch of prompts to a batch of `Generation`s (text, token ids, log-probs) and
scores given continuations (`logprobs`). Model-free baselines (`expert`, `random`) implement
the same interface so `creditgym eval` and the rollout collector treat every agent alike:
they read the extra per-request context they need (`admissible_actions`, `envs`) and ignore
the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Generation", "Policy"]


@dataclass
class Generation:
    """One sampled response.

    Attributes:
        text: the decoded response text.
        token_ids: the response's token ids (empty for model-free policies).
        logprobs: the sampling policy's log-probability of each token in `token_ids`.
        prompt_ids: the prompt's token ids as the policy tokenised it.
        error: set when the engine failed for this request (server down, timeout); the
            rollout then records an invalid turn instead of crashing.
        teacher_forced_logprobs: with `generate(..., teacher_force=...)`, the log-probs of the
            requested target tokens after this prompt (IGPO's answer scores), else None.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    error: str | None = None
    teacher_forced_logprobs: list[float] | None = None


@runtime_checkable
class Policy(Protocol):
    """What the rollout collector, the evaluator and credit modules need from a policy."""

    def generate(
        self,
        prompts: Sequence[str],
        admissible_actions: Sequence[Sequence[str]] | None = None,
        envs: Sequence[Any] | None = None,
    ) -> list[Generation]:
        """Sample one response per prompt.

        Args:
            prompts: the full text prompts, one per active environment.
            admissible_actions: per prompt, the env's valid actions; constrained policies
                sample only among these, the random policy picks one of them.
            envs: per prompt, the environment itself; only scripted policies (the expert)
                read it, to ask the env's planner for the next action.
        """
        ...

    def logprobs(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[np.ndarray]:
        """Per-token log-probabilities of each continuation given its prompt (teacher forcing).

        Returns one array of shape (continuation tokens,) per pair. Model-free policies
        raise `NotImplementedError`.
        """
        ...
