"""What a policy can do beyond `Policy.generate`, declared rather than discovered.

The capabilities, each a `typing.Protocol` callers check with ``isinstance``:

* `ChatPolicy`: ``generate_chat(conversations, ...)`` extends each conversation from its KV
  cache (the rollout's ``conversation`` context mode); others get the transcript as a prompt.
* `TeacherForcingPolicy`: ``generate(..., teacher_force=[(context, target) | None, ...])``
  scores a target after each prompt from the prompt's own KV cache (IGPO's answer scores). A
  backend opts in by setting ``supports_teacher_forcing = True``; a wrapper that forwards
  ``generate`` elsewhere sets it from what it wraps.
* `TrainablePolicy`: what the trainer, the PPO update, checkpoints and export use of the policy
  they train (`HFPolicy` is the built-in one).
* `ForcedTokenPolicy`: ``forced_tokens(response_ids, admissible_actions)`` says which response
  tokens the decoding constraint forced (one allowed token: log-prob 0, no gradient), so the
  update can leave them out of its loss denominators.
* `WeightSyncedEngine`: a separate rollout engine (``rollout.engine=vllm``) that the trainer
  gives the new weights after each update.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from creditgym.agents.base import Generation, Policy

__all__ = [
    "ChatPolicy",
    "ForcedTokenPolicy",
    "TeacherForcingPolicy",
    "TrainablePolicy",
    "WeightSyncedEngine",
    "can_teacher_force",
    "check_admissible",
]


@runtime_checkable
class ChatPolicy(Protocol):
    """A policy that samples the next assistant message of each `Conversation` incrementally.

    A capability on top of `Policy` (only `generate_chat` is checked): a rollout-only wrapper
    such as the warm start's expert demonstrator declares it without scoring anything.
    """

    def generate_chat(
        self,
        conversations: Sequence[Any],
        admissible_actions: Sequence[Sequence[str] | None] | None = None,
        envs: Sequence[Any] | None = None,
        *,
        teacher_force: Sequence[tuple[str, str] | None] | None = None,
    ) -> list[Generation]:
        """As `Policy.generate`, one conversation per row instead of one prompt."""
        ...


@runtime_checkable
class TeacherForcingPolicy(Protocol):
    """A policy whose `generate` takes ``teacher_force`` (see `can_teacher_force`)."""

    #: True when `generate(..., teacher_force=...)` fills `Generation.teacher_forced_logprobs`.
    supports_teacher_forcing: bool

    def generate(
        self,
        prompts: Sequence[str],
        admissible_actions: Sequence[Sequence[str] | None] | None = None,
        envs: Sequence[Any] | None = None,
        *,
        teacher_force: Sequence[tuple[str, str] | None] | None = None,
    ) -> list[Generation]: ...


def can_teacher_force(policy: Any) -> bool:
    """Whether `policy` declares teacher forcing (`TeacherForcingPolicy` with the flag set)."""
    return isinstance(policy, TeacherForcingPolicy) and bool(policy.supports_teacher_forcing)


@runtime_checkable
class ForcedTokenPolicy(Protocol):
    """A policy whose decoding constraint can say which response tokens it forced."""

    def forced_tokens(
        self,
        response_ids: Sequence[Sequence[int]],
        admissible_actions: Sequence[Sequence[str] | None] | None = None,
    ) -> list[list[bool]]:
        """Per response, per token: True where the constraint allowed only that token."""
        ...


@runtime_checkable
class TrainablePolicy(Policy, Protocol):
    """What training reads and writes of the policy it trains.

    Attributes:
        model: the ``torch.nn.Module`` the optimiser steps (possibly LoRA-wrapped).
        tokenizer: its tokenizer, saved with checkpoints and exports.
        device: where the model lives.
        generator: the sampling RNG (``torch.Generator``), seeded per iteration and rank and
            saved in checkpoints.
        temperature, top_p, max_new_tokens, constrained, think, think_tokens, chat_template,
            max_context_tokens: the sampling settings (evaluation switches ``temperature``;
            the KL reference copies the rest).
        eos_token_id: closes a response.
    """

    model: Any
    tokenizer: Any
    device: Any
    generator: Any
    temperature: float
    top_p: float
    max_new_tokens: int
    constrained: bool
    think: bool
    think_tokens: int
    chat_template: Any
    max_context_tokens: int
    eos_token_id: int

    def encode_prompt(self, prompt: str) -> list[int]:
        """Token ids of a prompt as `generate` feeds it."""
        ...

    def encode_response(self, text: str, *, add_eos: bool = True) -> list[int]:
        """Token ids of a response tokenised alone, closed by EOS when `add_eos`."""
        ...

    def score(self, prompt_ids: Any, response_ids: Any, admissible_actions: Any = None) -> Any:
        """Log-probs (and entropies) of given responses under the sampling distribution, with
        gradients: the PPO update's forward pass."""
        ...

    def score_spans(self, *args: Any, **kwargs: Any) -> Any:
        """As `score`, for a whole conversation read as one sequence (conversation mode)."""
        ...

    def logprobs(
        self, prompts: Sequence[str], continuations: Sequence[str], *, add_eos: bool = True
    ) -> list[np.ndarray]: ...

    def save_pretrained(self, path: str | Path) -> Path:
        """Write model and tokenizer to `path` (checkpoints, export)."""
        ...


@runtime_checkable
class WeightSyncedEngine(Protocol):
    """A rollout engine that samples for a trained policy from its own copy of the weights
    (vLLM); the trainer calls `sync_weights` after every update."""

    def sync_weights(self) -> None:
        """Load the trained policy's current weights."""
        ...


def check_admissible(
    constrained: bool,
    admissible_actions: Sequence[Sequence[str] | None] | None,
    rows: int,
    what: str = "prompt",
) -> None:
    """The checks every model-backed `generate` makes before sampling.

    A constrained policy needs one admissible-action list per row (`what` names a row in the
    error: ``prompt`` or ``conversation``); raises ValueError saying how to fix the call.
    """
    if constrained and admissible_actions is None:
        raise ValueError(
            f"constrained decoding needs admissible_actions (one list per {what}); pass them, "
            "or build the policy with constrained=False for free-form generation"
        )
    if admissible_actions is not None and len(admissible_actions) != rows:
        raise ValueError(
            f"got {len(admissible_actions)} admissible-action lists for {rows} {what}s; "
            f"give one per {what}"
        )
