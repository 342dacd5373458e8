"""Credit modules that need more than the batch: what they declare, so a caller can serve them.

Most shapers and estimators are pure functions of the episodes. Some need outside things (the
policy's log-prob scorer, an LLM judge, a latent-reward model) or keep state across iterations
(a decoder trained online). They *declare* it, and the trainer (or any caller) builds what is
declared without knowing the method by name:

* ``requires``: `Requirement`s, each an outside thing of some *kind* (``"scorer"``, ``"judge"``,
  ``"latent_reward"``, ``"answer_scores"`` or a kind of your own) that the caller builds and
  hands in through the `CreditContext` (a field of that name, or ``extras[key]``); a class
  whose needs depend on its options adds a classmethod ``requirements(options)`` returning
  those the configured options call for;
* ``multiprocess``: whether the module still computes the right thing when each of several
  processes sees only its share of the batch;
* a class registered with `register_shaper` / `register_estimator` is instantiated once per
  run: its `setup(run)` receives the run's `RunContext`, and its `state_dict()` /
  `load_state_dict()` go into and come back from checkpoints, so a resumed run continues
  exactly; an optional ``metrics() -> dict[str, float]`` (numbers about its last call, such as
  a critic's value loss) is logged with each iteration's metrics under ``<name>/``.

A stateful shaper, registered from user code::

    @register_shaper("novelty")
    class NoveltyBonus:
        multiprocess = False  # counts states over the whole batch

        def setup(self, run: RunContext) -> None:
            self.seen: dict[str, int] = {}

        def __call__(self, episodes, context, *, bonus: float = 0.1) -> list[np.ndarray]:
            ...

        def state_dict(self) -> dict: return {"seen": dict(self.seen)}
        def load_state_dict(self, state: dict) -> None: self.seen = dict(state["seen"])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["Requirement", "RunContext", "CreditModule", "StatefulModule"]


@dataclass(frozen=True)
class Requirement:
    """One outside thing a credit module needs, built by the caller.

    Attributes:
        kind: what to build; the trainer has a builder per kind (``scorer``: the policy itself;
            ``judge``: an LLM or oracle judge; ``latent_reward``: a factor function with a
            decoder; ``answer_scores``: the rollout scores each prompt's ground-truth answer).
        key: where the module reads it: a `CreditContext` field of that name (``scorer``,
            ``judge``, ``coder``) or ``extras[key]``; default: the kind. It also names the
            thing's saved state in checkpoints.
        setting: a field of the config's ``credit`` section whose value says how to build it
            (e.g. ``judge``: ``oracle`` or a model), if any.
        option: one of the module's own options whose value the builder receives, if any.
    """

    kind: str
    key: str = ""
    setting: str = ""
    option: str = ""

    @property
    def context_key(self) -> str:
        return self.key or self.kind


@dataclass(frozen=True)
class RunContext:
    """What a module's set-up and the requirement builders learn about the run.

    Attributes:
        env_id: the training env's id.
        env_metadata: its class metadata (documented observation legends, state fields...).
        output_dir: the run directory (for logs a module writes), or None outside a run.
        seed: the run's seed.
        world_size: how many processes train together.
        settings: the config's ``credit`` section, as a plain mapping.
    """

    env_id: str = ""
    env_metadata: Mapping[str, Any] = field(default_factory=dict)
    output_dir: Path | None = None
    seed: int = 0
    world_size: int = 1
    settings: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class StatefulModule(Protocol):
    """Anything whose learned state goes into checkpoints (a module, or a thing built for one)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class CreditModule(Protocol):
    """A shaper or estimator class: declarations as class attributes, one instance per run.

    ``__call__`` takes what the function form takes (``(episodes, context, **options)`` for a
    shaper, ``(episodes, turn_rewards, **options)`` for an estimator); its keyword parameters
    with defaults are the options a config may set.
    """

    requires: tuple[Requirement, ...]
    multiprocess: bool

    def setup(self, run: RunContext) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
