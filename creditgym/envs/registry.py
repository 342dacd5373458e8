"""Environment registry: a thin layer over Gymnasium's own registry.

`register` puts an environment into `gymnasium.envs.registry` (so `gymnasium.make` finds it
too) and remembers a one-line description for `creditgym envs`. Other installed packages can
ship environments by declaring an entry point in the ``creditgym.envs`` group; it is loaded the
first time the registry is consulted. The entry point may name either

* a callable that registers environments when called (``mypkg.envs:register_envs``), or
* an environment class, registered under the entry point's name, which must be the env id
  (``"mypkg/Maze-v0" = "mypkg.envs:MazeEnv"``).
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym

__all__ = [
    "register",
    "make",
    "list_envs",
    "describe",
    "eval_splits",
    "env_metadata",
    "ENTRY_POINT_GROUP",
    "NAMESPACE",
]

ENTRY_POINT_GROUP = "creditgym.envs"
NAMESPACE = "creditgym"

_descriptions: dict[str, str] = {}
_plugins_loaded = False
_loading_plugins = False


def register(
    env_id: str,
    entry_point: str | Callable[..., gym.Env],
    *,
    description: str = "",
    max_episode_steps: int | None = None,
    **kwargs: Any,
) -> None:
    """Register an environment so `creditgym.make(env_id)` builds it.

    Args:
        env_id: Gymnasium-style id, ``namespace/Name-vN``; built-in envs use the
            ``creditgym/`` namespace, your own may use any.
        entry_point: ``"module.path:ClassName"`` or a callable returning the env.
        description: one line shown by ``creditgym envs``; defaults to the first line of
            the entry point's docstring.
        max_episode_steps: if set, Gymnasium wraps the env in a `TimeLimit`. Text envs
            usually enforce their own step budget instead, so they can report it in `info`.
        **kwargs: default keyword arguments passed to the entry point (overridable in `make`).
    """
    if env_id in gym.envs.registry:
        if _loading_plugins:
            return  # plugins are loaded lazily: an id registered explicitly before them wins
        # Re-registering in user code replaces the old spec quietly.
        del gym.envs.registry[env_id]
    gym.register(
        id=env_id, entry_point=entry_point, max_episode_steps=max_episode_steps, kwargs=kwargs
    )
    _descriptions[env_id] = description


def _load_plugins() -> None:
    """Import environments that other installed packages declare as entry points, once."""
    global _plugins_loaded, _loading_plugins
    if _plugins_loaded:
        return
    _plugins_loaded = True
    _loading_plugins = True
    try:
        for plugin in entry_points(group=ENTRY_POINT_GROUP):
            _load_plugin(plugin)
    finally:
        _loading_plugins = False


def _load_plugin(plugin: Any) -> None:
    try:
        loaded = plugin.load()
        if inspect.isclass(loaded) and issubclass(loaded, gym.Env):
            register(plugin.name, loaded)
        elif callable(loaded):
            loaded()
    except Exception as error:  # a broken plugin must not break every other env
        warnings.warn(
            f"could not load creditgym env plugin {plugin.name!r} ({plugin.value}): "
            f"{type(error).__name__}: {error}. Fix or uninstall the package that declares it.",
            stacklevel=3,
        )


def _ensure_builtins() -> None:
    import creditgym.envs  # noqa: F401  (registers the built-in families on import)


def list_envs(namespace: str | None = None) -> list[str]:
    """Sorted ids of all environments registered through creditgym (built-in and plugins).

    Args:
        namespace: only ids in this namespace (for example ``"creditgym"``).
    """
    _ensure_builtins()
    _load_plugins()
    ids = [env_id for env_id in _descriptions if env_id in gym.envs.registry]
    if namespace is not None:
        ids = [env_id for env_id in ids if gym.envs.registry[env_id].namespace == namespace]
    return sorted(ids)


def describe(env_id: str) -> str:
    """One-line description of a registered env."""
    spec = _spec(env_id)
    if _descriptions.get(env_id):
        return _descriptions[env_id]
    doc = inspect.getdoc(_entry_point_target(spec)) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def eval_splits(env_id: str) -> list[str]:
    """The held-out splits an env declares in ``metadata["eval_splits"]``.

    Household envs hold out ``valid_seen`` and ``valid_unseen``; shopping and search envs
    ``valid`` and ``test``. Envs without splits (games generated per seed) give ``["all"]``:
    evaluation then plays seeds ``0..N-1`` of the env as it is.
    """
    splits = env_metadata(env_id).get("eval_splits")
    return list(splits) if splits else ["all"]


def env_metadata(env_id: str) -> dict[str, Any]:
    """The `metadata` of a registered env's class, without building the env ({} for factories)."""
    target = _entry_point_target(_spec(env_id))
    return dict(getattr(target, "metadata", {})) if isinstance(target, type) else {}


def _entry_point_target(spec: gym.envs.registration.EnvSpec) -> Any:
    entry = spec.entry_point
    return gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry


def _spec(env_id: str) -> gym.envs.registration.EnvSpec:
    _ensure_builtins()
    _load_plugins()
    if env_id in gym.envs.registry:
        return gym.envs.registry[env_id]
    known = list_envs()
    close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise gym.error.UnregisteredEnv(
        f"unknown env id {env_id!r}; {hint}Registered creditgym envs: {', '.join(known) or 'none'}. "
        "Run `creditgym envs` to list them, or register yours with `creditgym.register`."
    )


def make(env_id: str, **kwargs: Any) -> gym.Env:
    """Build a registered environment, like `gymnasium.make`, with a helpful unknown-id error.

    Multi-agent envs (PettingZoo `ParallelEnv` classes) are built directly, since Gymnasium's
    `make` only builds `gymnasium.Env`s. Keyword arguments override the registered defaults.
    Gymnasium's passive env checker is off (creditgym's test-suite runs the full `check_env` on every registered env instead),
    which keeps the per-step overhead low.
    """
    spec = _spec(env_id)
    target = _entry_point_target(spec)
    if isinstance(target, type) and not issubclass(target, gym.Env):  # a PettingZoo ParallelEnv
        return target(**{**spec.kwargs, **kwargs})
    kwargs.setdefault("disable_env_checker", True)
    return gym.make(env_id, **kwargs)
