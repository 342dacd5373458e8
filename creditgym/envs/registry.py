"""Environment registry: creditgym's own, with single-agent envs mirrored into Gymnasium's.

`register` records every environment here (entry point, default kwargs, a one-line
description for `creditgym envs`, and what it needs) and `make` builds it:

* a single-agent env (a `gymnasium.Env`) is also put in `gymnasium.envs.registry`, so
  `gymnasium.make` finds it too;
* a multi-agent env (a PettingZoo `ParallelEnv`) lives here only; Gymnasium's registry gets a
  signpost under its id whose construction raises an error pointing to `creditgym.make`
  (Gymnasium can only build `gymnasium.Env`s).

An id of the form ``SCHEME:ADDRESS`` (``openenv:http://host:port``) names an env that a
registered URL scheme builds (`register_scheme`): a remote env, which no registry entry holds.

Other installed packages can ship environments by declaring an entry point in the
``creditgym.envs`` group; it is loaded the first time the registry is consulted. The entry
point may name either

* a callable that registers environments when called (``mypkg.envs:register_envs``), or
* an environment class, registered under the entry point's name, which must be the env id
  (``"mypkg/Maze-v0" = "mypkg.envs:MazeEnv"``).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym

__all__ = [
    "register",
    "unregister",
    "make",
    "list_envs",
    "describe",
    "eval_splits",
    "env_metadata",
    "required_kwargs",
    "is_multi_agent",
    "registration",
    "EnvEntry",
    "check_make_kwargs",
    "register_scheme",
    "is_address_id",
    "ENTRY_POINT_GROUP",
    "NAMESPACE",
]

ENTRY_POINT_GROUP = "creditgym.envs"
NAMESPACE = "creditgym"

# What `gymnasium.make` itself accepts besides the env's own keyword arguments.
_GYMNASIUM_MAKE_KWARGS = frozenset({"max_episode_steps", "disable_env_checker", "autoreset"})


@dataclass
class EnvEntry:
    """One registered environment, as `register` recorded it."""

    id: str
    entry_point: str | Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    max_episode_steps: int | None = None
    multi_agent: bool | None = None  # None: not declared; found out when first made
    requires: tuple[str, ...] = ()


_entries: dict[str, EnvEntry] = {}
# "scheme:" -> (builder(address, **kwargs), metadata(address) -> the class metadata it reports)
_schemes: dict[str, tuple[Callable[..., Any], Callable[[str], dict[str, Any]]]] = {}
_plugins_loaded = False
_loading_plugins = False


def register(
    env_id: str,
    entry_point: str | Callable[..., Any],
    *,
    description: str = "",
    max_episode_steps: int | None = None,
    multi_agent: bool | None = None,
    requires: tuple[str, ...] = (),
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
        multi_agent: the entry point builds a PettingZoo `ParallelEnv`. Found out from a
            class entry point; declare it for a ``"module:Class"`` string so the module is
            not imported at registration.
        requires: keyword arguments the env cannot be built without (``("game_file",)``):
            tools that build every env with its defaults (the contract test) skip it.
        **kwargs: default keyword arguments passed to the entry point (overridable in `make`).

    Registering an id that exists replaces it with a warning, except while plugins load:
    an id registered explicitly before them wins.
    """
    if env_id in _entries or env_id in gym.envs.registry:
        if _loading_plugins:
            return
        warnings.warn(
            f"creditgym.register: replacing the registered env {env_id!r}; give yours another "
            "id (namespace/Name-vN) to keep both",
            stacklevel=2,
        )
        unregister(env_id)
    if multi_agent is None and inspect.isclass(entry_point):
        multi_agent = not issubclass(entry_point, gym.Env)
    entry = EnvEntry(
        env_id, entry_point, dict(kwargs), description, max_episode_steps, multi_agent, requires
    )
    _entries[env_id] = entry
    _mirror_into_gymnasium(entry)


def register_scheme(
    prefix: str, builder: Callable[..., Any], metadata: Callable[[str], dict[str, Any]]
) -> None:
    """Make ids ``prefix + ADDRESS`` build ``builder(ADDRESS, **kwargs)`` (single-agent envs).

    `metadata(ADDRESS)` gives what `env_metadata` reports for such an id (its
    ``eval_splits``), asked of the address only when a caller wants it.
    """
    if not prefix.endswith(":") or "/" in prefix:
        raise ValueError(f"a scheme prefix looks like 'name:', got {prefix!r}")
    _schemes[prefix] = (builder, metadata)


def is_address_id(env_id: str) -> bool:
    """Whether `env_id` is ``SCHEME:ADDRESS`` of a registered scheme (a remote env)."""
    _ensure_builtins()
    return _scheme(env_id) is not None


def _scheme(env_id: str) -> tuple[str, Callable[..., Any], Callable[[str], dict]] | None:
    """(address, builder, metadata) of an id under a registered scheme, else None."""
    for prefix, (builder, metadata) in _schemes.items():
        if env_id.startswith(prefix):
            return env_id[len(prefix) :], builder, metadata
    return None


def unregister(env_id: str) -> None:
    """Forget a registered env, here and in Gymnasium's registry (no error if absent)."""
    _entries.pop(env_id, None)
    gym.envs.registry.pop(env_id, None)


def _mirror_into_gymnasium(entry: EnvEntry) -> None:
    """Single-agent envs go into Gymnasium's registry; multi-agent ones leave a signpost."""
    gym.envs.registry.pop(entry.id, None)
    if entry.multi_agent:
        gym.register(id=entry.id, entry_point=functools.partial(_not_for_gymnasium, entry.id))
    else:
        gym.register(
            id=entry.id,
            entry_point=entry.entry_point,
            max_episode_steps=entry.max_episode_steps,
            kwargs=entry.kwargs,
        )


def _not_for_gymnasium(env_id: str, **kwargs: Any) -> Any:
    raise gym.error.Error(
        f"{env_id!r} is a multi-agent env (a PettingZoo ParallelEnv), which gymnasium.make "
        f"cannot build; use creditgym.make({env_id!r}) instead"
    )


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
        if inspect.isclass(loaded):  # an env class (single- or multi-agent), named by its id
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
    ids = list(_entries)
    if namespace is not None:
        ids = [env_id for env_id in ids if env_id.split("/", 1)[0] == namespace and "/" in env_id]
    return sorted(ids)


def describe(env_id: str) -> str:
    """One-line description of a registered env."""
    entry = _spec(env_id)
    if entry.description:
        return entry.description
    doc = inspect.getdoc(_entry_point_target(entry)) or ""
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
    schemed = _scheme(env_id)
    if schemed is not None:
        address, _, metadata = schemed
        return dict(metadata(address))
    target = _entry_point_target(_spec(env_id))
    return dict(getattr(target, "metadata", {})) if isinstance(target, type) else {}


def required_kwargs(env_id: str) -> tuple[str, ...]:
    """Keyword arguments the env cannot be built without (declared with `register(requires=)`)."""
    return _spec(env_id).requires


def is_multi_agent(env_id: str) -> bool:
    """Whether the env is a PettingZoo `ParallelEnv` (which only `creditgym.make` builds)."""
    entry = _spec(env_id)
    if entry.multi_agent is None:
        target = _entry_point_target(entry)
        entry.multi_agent = inspect.isclass(target) and not issubclass(target, gym.Env)
        if entry.multi_agent and env_id in _entries:
            _mirror_into_gymnasium(entry)  # an undeclared ParallelEnv: put up the signpost now
    return entry.multi_agent


def check_make_kwargs(env_id: str, kwargs: dict[str, Any]) -> None:
    """Raise `TypeError` naming any keyword argument the env's constructor does not take.

    Read from the constructor's signature, without building the env; an entry point that
    takes ``**kwargs`` accepts anything.
    """
    target = _entry_point_target(_spec(env_id))
    try:
        signature = inspect.signature(target.__init__ if inspect.isclass(target) else target)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to read
        return
    parameters = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [name for name in parameters if name != "self"]
    allowed = set(accepted) | (set() if is_multi_agent(env_id) else _GYMNASIUM_MAKE_KWARGS)
    unknown = [name for name in kwargs if name not in allowed]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), accepted, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TypeError(
            f"{env_id} takes no keyword argument {unknown[0]!r}{hint}; it takes: "
            f"{', '.join(accepted) or 'none'}"
        )


def _entry_point_target(entry: EnvEntry) -> Any:
    point = entry.entry_point
    return gym.envs.registration.load_env_creator(point) if isinstance(point, str) else point


def _spec(env_id: str) -> EnvEntry:
    _ensure_builtins()
    _load_plugins()
    schemed = _scheme(env_id)
    if schemed is not None:
        address, builder, _ = schemed
        return EnvEntry(env_id, functools.partial(builder, address), multi_agent=False)
    if env_id in _entries:
        return _entries[env_id]
    if env_id in gym.envs.registry:  # registered with Gymnasium directly (CartPole-v1, ...)
        spec = gym.envs.registry[env_id]
        return EnvEntry(env_id, spec.entry_point, dict(spec.kwargs), multi_agent=False)
    known = list_envs()
    close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise gym.error.UnregisteredEnv(
        f"unknown env id {env_id!r}; {hint}"
        f"Registered creditgym envs: {', '.join(known) or 'none'}. "
        "Run `creditgym envs` to list them, or register yours with `creditgym.register`."
    )


def registration(env_id: str) -> EnvEntry:
    """What `register` recorded for `env_id` (a Gymnasium-only id as an equivalent entry): a
    worker process registers the same entry to build the same env."""
    return _spec(env_id)


def make(env_id: str, **kwargs: Any) -> Any:
    """Build a registered environment, like `gymnasium.make`, with a helpful unknown-id error.

    Multi-agent envs (PettingZoo `ParallelEnv` classes) are built directly, since Gymnasium's
    `make` only builds `gymnasium.Env`s. Keyword arguments override the registered defaults.
    Gymnasium's passive env checker is off (creditgym's test-suite runs the full `check_env` on
    every registered env instead), which keeps the per-step overhead low.
    """
    entry = _spec(env_id)
    if _scheme(env_id) is not None:
        return _make_schemed(entry, kwargs)
    if is_multi_agent(env_id):
        return _entry_point_target(entry)(**{**entry.kwargs, **kwargs})
    kwargs.setdefault("disable_env_checker", True)
    return gym.make(env_id, **kwargs)


def _make_schemed(entry: EnvEntry, kwargs: dict[str, Any]) -> Any:
    """An env of a registered scheme, with `gymnasium.make`'s own keywords honoured."""
    kwargs.pop("disable_env_checker", None)
    kwargs.pop("autoreset", None)
    max_episode_steps = kwargs.pop("max_episode_steps", None)
    env = entry.entry_point(**kwargs)
    if max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
    return env
