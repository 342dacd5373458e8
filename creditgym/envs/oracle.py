"""Oracle hooks of an environment, asked for gracefully: cost-to-go and state cloning.

Environments with an expert may expose, on ``env.unwrapped``:

- ``steps_to_go() -> int | None``: the expert's remaining plan length from the current true
  state (0 once the task is done, None where it cannot be computed);
- ``informed_steps_to_go() -> float | None``: an expert's *expected* remaining steps given only
  what the agent has seen (an information-state cost-to-go: where hidden objects may be is
  averaged over, not read from the true state);
- ``clone_state() -> object`` and ``restore_state(snapshot) -> (observation, info)``: an opaque
  snapshot of the whole env state (RNG and last observation included) and its restoration, so
  a rollout can be continued several times from any turn.

These are oracles for *measuring* credit (progress labels, Monte-Carlo advantages); no agent
ever sees them. The helpers here return False/None for envs without them, so a rollout or a
report can ask any env.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "supports_cloning",
    "cost_to_go",
    "informed_cost_to_go",
    "clone_state",
    "restore_state",
    "cannot_clone",
    "env_name",
    "AttributeSnapshot",
    "snapshot_attributes",
    "restore_attributes",
]


_STATIC_ATTRIBUTES = (
    "observation_space",
    "action_space",
    "observation_spaces",
    "action_spaces",
    "spec",
    "metadata",
)


def _base(env: Any) -> Any:
    """The innermost env (through Gymnasium wrappers); PettingZoo envs are their own base."""
    return getattr(env, "unwrapped", env)


def _ask(env: Any, oracle: str) -> Any:
    """What the env's `oracle` method answers, or None where it has no such method or the
    method raises NotImplementedError."""
    method = getattr(_base(env), oracle, None)
    if method is None:
        return None
    try:
        return method()
    except NotImplementedError:
        return None


def cost_to_go(env: Any) -> int | None:
    """The expert's remaining number of steps from `env`'s current state, or None where the env
    does not provide it (no ``steps_to_go``, or it raises NotImplementedError)."""
    value = _ask(env, "steps_to_go")
    return None if value is None else int(value)


def informed_cost_to_go(env: Any) -> float | None:
    """An expert's expected remaining steps from what the agent has seen (an information-state
    cost-to-go: ``informed_steps_to_go()``), or None where the env does not provide it."""
    value = _ask(env, "informed_steps_to_go")
    return None if value is None else float(value)


def supports_cloning(env: Any) -> bool:
    """Whether `env` can snapshot and restore its state (``clone_state``/``restore_state``);
    False where the methods are missing, or the env sets ``supports_state_cloning = False``
    (its ``clone_state`` raises NotImplementedError saying why)."""
    base = _base(env)
    if getattr(base, "supports_state_cloning", True) is False:  # a clone_state that only raises
        return False
    return callable(getattr(base, "clone_state", None)) and callable(
        getattr(base, "restore_state", None)
    )


def env_name(env: Any) -> str:
    """The registered id of `env` (its class name where it has no spec), for messages."""
    base = _base(env)
    return getattr(getattr(base, "spec", None), "id", None) or type(base).__name__


def cannot_clone(env: Any, why: str) -> NotImplementedError:
    """The error an env's ``clone_state`` raises where it cannot snapshot itself."""
    return NotImplementedError(
        f"{env_name(env)} cannot clone its state; {why}. Measurements that continue rollouts "
        "from a turn (Monte-Carlo advantages) need an env with clone_state()/restore_state(): "
        "household, WebShop-style, SearchQA or the coop household"
    )


def clone_state(env: Any) -> object:
    """A snapshot of `env`'s full state; raises NotImplementedError naming the env otherwise."""
    base = _base(env)
    if not callable(getattr(base, "clone_state", None)):
        raise cannot_clone(env, "it has no clone_state()/restore_state()")
    return base.clone_state()


def restore_state(env: Any, snapshot: object) -> Any:
    """Restore `env` to `snapshot` (from `clone_state`); returns what the env's
    ``restore_state`` returns: ``(observation, info)`` (per-agent dicts for ParallelEnvs).

    Gymnasium's `OrderEnforcing` wrapper refuses `step` before `reset`; a restored env has a
    state to step from, so the wrappers around `env` are told it was reset.
    """
    result = _base(env).restore_state(snapshot)
    layer = env
    while layer is not None and layer is not _base(env):
        if hasattr(layer, "_has_reset"):
            layer._has_reset = True
        layer = getattr(layer, "env", None)
    return result


@dataclass(frozen=True)
class AttributeSnapshot:
    """An object's attributes deep-copied, minus `shared`: objects referenced, never copied."""

    attributes: dict[str, Any]
    shared: tuple[object, ...]


def snapshot_attributes(obj: Any, shared: Iterable[object] = ()) -> AttributeSnapshot:
    """A deep copy of `obj`'s attributes, except the objects in `shared` (and what only they
    reach), which the snapshot references instead of copying: the big read-only parts of an
    env (a catalog, a search index, a world's caches) cost nothing to snapshot."""
    attributes = vars(obj)
    # spaces (their RNG only samples, it never drives the env) and the spec are configuration
    static = (attributes[name] for name in _STATIC_ATTRIBUTES if name in attributes)
    shared = (*shared, *static)
    memo = {id(item): item for item in shared}
    return AttributeSnapshot(copy.deepcopy(attributes, memo), shared)


def restore_attributes(obj: Any, snapshot: AttributeSnapshot) -> None:
    """Put a copy of `snapshot` (from `snapshot_attributes`) into `obj`'s attributes; the
    snapshot stays untouched, so it can be restored any number of times, into the env it
    came from or another instance built with the same arguments."""
    memo = {id(item): item for item in snapshot.shared}
    vars(obj).update(copy.deepcopy(snapshot.attributes, memo))
