"""What shapers may need from outside the batch, handed in by the caller.

Credit modules never import agents, envs or train (docs/ARCHITECTURE.md). A shaper that needs the
policy's log-prob scorer (IGPO) or an LLM client (CALM, LaRe) reads it from the
`CreditContext` the trainer, or a user, passes to `compute_advantages`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["CreditContext", "LogProbScorer"]


@runtime_checkable
class LogProbScorer(Protocol):
    """Scores continuations under the current policy (every creditgym `Policy` is one)."""

    def logprobs(
        self, prompts: Sequence[str], continuations: Sequence[str]
    ) -> list[np.ndarray]: ...


@dataclass
class CreditContext:
    """Outside things shapers may use; every field is optional.

    Attributes:
        scorer: the policy's log-prob scorer (IGPO's information gain).
        judge: an LLM client that judges subgoal completion (CALM).
        coder: an LLM client that writes latent-reward code (LaRe).
        iteration: the training iteration, for shapers that anneal or cache per iteration.
        extras: anything else a user-defined shaper needs, by name.
        modules: the run's instances of class-based shapers/estimators, by registered name
            (a class not found here is instantiated afresh for the call).
    """

    scorer: LogProbScorer | None = None
    judge: Any = None
    coder: Any = None
    iteration: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, Any] = field(default_factory=dict)

    def require(self, name: str, needed_by: str) -> Any:
        """The field or extra `name`, or an error saying who needs it and how to pass it."""
        value = (
            getattr(self, name, None)
            if name in self.__dataclass_fields__
            else self.extras.get(name)
        )
        if value is None:
            where = (
                f"CreditContext({name}=...)"
                if name in self.__dataclass_fields__
                else (f"CreditContext(extras={{{name!r}: ...}})")
            )
            raise ValueError(
                f"{needed_by} needs `{name}` from the credit context, but none was given; "
                f"pass context={where} to compute_advantages."
            )
        return value
