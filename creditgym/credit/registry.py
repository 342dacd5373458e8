"""Registries of turn-reward shapers and advantage estimators, picked by name from a config.

A **shaper** is ``shaper(episodes, context, **options) -> list[np.ndarray]``: one reward per
turn for each episode. The rewards of all configured shapers are summed.

An **estimator** is ``estimator(episodes, turn_rewards, **options) -> list[np.ndarray]``: one
advantage per turn for each episode. One that needs the run's `CreditContext` (the policy, what
its requirements built, the iteration) takes it as a keyword-only parameter named ``context``:
the caller passes it to every call, and it is not an option. An estimator that gives each
response token its own advantage returns a `creditgym.credit.tokens.TokenAdvantages` (its
per-turn advantages and, per turn, one array of ``len(turn.response_ids)``) instead of the list;
`assign_credit` hands the token arrays to the trainer's loss (`CreditBreakdown.token_advantages`).

Options are the function's keyword parameters with defaults; a config may set any of them and
nothing else. Register your own in your code and name it in the config::

    from creditgym.credit import register_estimator

    @register_estimator("my_rloo")
    def my_rloo(episodes, turn_rewards, *, baseline: str = "leave_one_out"):
        ...

    # credit: {shapers: [env], estimator: {name: my_rloo, baseline: leave_one_out}}

The built-in functions register with a call after their ``def`` (``register_estimator("grpo")(
grpo_advantages)``) rather than as decorators: mutation testing (mutmut, see
benchmarks/mutation.py) skips decorated functions, and these are the numbers users trust.

A shaper that needs outside things or keeps state declares it (`creditgym.credit.modules`):
``@register_shaper("calm", requires=(Requirement("judge", setting="judge"),))`` on a function,
or a registered *class* whose instance (one per run) has ``setup`` / ``state_dict`` /
``load_state_dict`` (and, for needs that depend on its options, a classmethod
``requirements(options) -> tuple[Requirement, ...]`` given the configured options);
`Resolved.requires`, `Resolved.multiprocess` and `Resolved.is_module` tell the caller what to
build.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from creditgym.credit.modules import Requirement

__all__ = [
    "CreditConfigError",
    "Resolved",
    "register_shaper",
    "register_estimator",
    "list_shapers",
    "list_estimators",
    "get_shaper",
    "get_estimator",
    "resolve",
]

Shaper = Callable[..., list[np.ndarray]]
Estimator = Callable[..., list[np.ndarray]]

_SHAPERS: dict[str, Shaper] = {}
_ESTIMATORS: dict[str, Estimator] = {}
# what each registered module declares, by (kind, name)
_DECLARATIONS: dict[tuple[str, str], tuple[tuple[Requirement, ...], bool]] = {}

# Leading positional parameters each kind receives from the caller; the rest are options.
_POSITIONAL = {"shaper": ("episodes", "context"), "estimator": ("episodes", "turn_rewards")}

# An estimator with a keyword-only parameter of this name is handed the run's `CreditContext`
# by the caller (`wants_context`); it is not an option a config may set.
CONTEXT_PARAMETER = "context"


class CreditConfigError(ValueError):
    """A credit config names an unknown shaper/estimator or gives it an option it lacks."""


@dataclass(frozen=True)
class Resolved:
    """A shaper or estimator looked up by name, with its validated options."""

    kind: str
    name: str
    fn: Callable[..., list[np.ndarray]]
    options: dict[str, Any]
    requires: tuple[Requirement, ...] = ()
    multiprocess: bool = True

    @property
    def is_module(self) -> bool:
        """A registered class: instantiated once per run (set-up, saved state)."""
        return inspect.isclass(self.fn)

    @property
    def wants_context(self) -> bool:
        """An estimator taking a keyword-only ``context``: the caller passes its
        `CreditContext` (the policy, built requirements, the iteration) to every call."""
        return self.kind == "estimator" and _takes_context(self.fn)

    def option(self, name: str) -> Any:
        """The value of option `name`: as configured, else the module's default."""
        if name in self.options:
            return self.options[name]
        parameter = _option_parameters(self.fn, self.kind).get(name)
        if parameter is None:
            raise ValueError(f"{self.kind} {self.name!r} has no option {name!r}")
        return parameter.default


def _signature(fn: Callable) -> inspect.Signature:
    """The call signature: a class's ``__call__`` without ``self``, else the function's."""
    if inspect.isclass(fn):
        call = next((vars(k)["__call__"] for k in fn.__mro__ if "__call__" in vars(k)), None)
        if call is None:
            raise TypeError(
                f"{fn.__qualname__} is registered as a credit module but defines no __call__"
            )
        parameters = list(inspect.signature(call).parameters.values())[1:]
        return inspect.Signature(parameters)
    return inspect.signature(fn)


def _register(
    table: dict[str, Callable],
    kind: str,
    name: str,
    requires: tuple[Requirement, ...] = (),
    multiprocess: bool = True,
) -> Callable[[Callable], Callable]:
    if not isinstance(name, str) or not name:
        raise TypeError(
            f"register_{kind} needs a non-empty string name, e.g. @register_{kind}('mine')"
        )

    def decorator(fn: Callable) -> Callable:
        _check_signature(fn, kind, name)
        old = table.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (
            fn.__module__,
            fn.__qualname__,
        ):
            warnings.warn(
                f"{kind} {name!r} ({old.__module__}.{old.__qualname__}) is replaced by "
                f"{fn.__module__}.{fn.__qualname__}; pick another name to keep both.",
                stacklevel=2,
            )
        table[name] = fn
        declared = tuple(requires) + tuple(getattr(fn, "requires", ()))
        if not all(isinstance(r, Requirement) for r in declared):
            raise TypeError(f"{kind} {name!r}: requires must be Requirement(...) entries")
        _DECLARATIONS[(kind, name)] = (declared, multiprocess and getattr(fn, "multiprocess", True))
        return fn

    return decorator


def register_shaper(
    name: str, *, requires: tuple[Requirement, ...] = (), multiprocess: bool = True
) -> Callable[[Shaper], Shaper]:
    """Decorator: make `shaper(episodes, context, **options)` available as ``shapers: [name]``.

    `requires` and `multiprocess` declare what it needs (see `creditgym.credit.modules`); a
    decorated class may declare them as class attributes instead.
    """
    return _register(_SHAPERS, "shaper", name, requires, multiprocess)


def register_estimator(
    name: str, *, requires: tuple[Requirement, ...] = (), multiprocess: bool = True
) -> Callable[[Estimator], Estimator]:
    """Decorator: make `estimator(episodes, turn_rewards, **options)` available by `name`."""
    return _register(_ESTIMATORS, "estimator", name, requires, multiprocess)


def list_shapers() -> list[str]:
    return sorted(_SHAPERS)


def list_estimators() -> list[str]:
    return sorted(_ESTIMATORS)


def _lookup(table: dict[str, Callable], kind: str, name: Any) -> Callable:
    if isinstance(name, str) and name in table:
        return table[name]
    known = sorted(table)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise CreditConfigError(
        f"unknown {kind} {name!r}; {hint}registered {kind}s: {', '.join(known) or 'none'}. "
        f"Register your own with @creditgym.credit.register_{kind}({str(name)!r})."
    )


def get_shaper(name: str) -> Shaper:
    return _lookup(_SHAPERS, "shaper", name)


def get_estimator(name: str) -> Estimator:
    return _lookup(_ESTIMATORS, "estimator", name)


def _takes_context(fn: Callable) -> bool:
    parameter = _signature(fn).parameters.get(CONTEXT_PARAMETER)
    return parameter is not None and parameter.kind is parameter.KEYWORD_ONLY


def _option_parameters(fn: Callable, kind: str) -> dict[str, inspect.Parameter]:
    params = list(_signature(fn).parameters.values())
    context_hook = kind == "estimator" and _takes_context(fn)
    return {
        p.name: p
        for p in params[len(_POSITIONAL[kind]) :]
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and not (context_hook and p.name == CONTEXT_PARAMETER)
    }


def _check_signature(fn: Callable, kind: str, name: str) -> None:
    params = list(_signature(fn).parameters.values())
    expected = _POSITIONAL[kind]
    leading = [
        p for p in params[: len(expected)] if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(leading) != len(expected):
        raise TypeError(
            f"{kind} {name!r}: {fn.__qualname__} must take ({', '.join(expected)}, **options) "
            f"as its first parameters; it takes ({', '.join(p.name for p in params)})."
        )
    missing = [
        p.name
        for p in params[len(expected) :]
        if p.default is p.empty and p.kind is not p.VAR_KEYWORD
    ]
    if kind == "estimator" and _takes_context(fn):
        missing = [m for m in missing if m != CONTEXT_PARAMETER]  # the caller always passes it
    if missing:
        raise TypeError(
            f"{kind} {name!r}: option(s) {', '.join(missing)} of {fn.__qualname__} need defaults "
            "so a config can leave them out."
        )


def _validate_options(
    kind: str, name: str, fn: Callable, options: Mapping[str, Any]
) -> dict[str, Any]:
    parameters = _option_parameters(fn, kind)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in _signature(fn).parameters.values())
    for option in options:
        if option not in parameters and not accepts_any:
            close = difflib.get_close_matches(option, list(parameters), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise CreditConfigError(
                f"unknown option {option!r} for {kind} {name!r}; {hint}"
                f"valid options: {', '.join(parameters) or 'none'}."
            )
    return dict(options)


def resolve(kind: str, spec: Any) -> Resolved:
    """Turn a config entry (a name, or a mapping with `name` and options) into a `Resolved`."""
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping):
        if "name" not in spec:
            raise CreditConfigError(
                f"{kind} entry {dict(spec)!r} has no 'name'; "
                "write e.g. {name: gigpo, gamma: 0.95}."
            )
        options = {str(k): v for k, v in spec.items() if k != "name"}
        name = spec["name"]
    else:
        raise CreditConfigError(
            f"a {kind} is given as a name or as {{name: ..., option: value}}; got {spec!r} "
            f"({type(spec).__name__})."
        )
    table = _SHAPERS if kind == "shaper" else _ESTIMATORS
    fn = _lookup(table, kind, name)
    requires, multiprocess = _DECLARATIONS.get((kind, name), ((), True))
    options = _validate_options(kind, name, fn, options)
    return Resolved(
        kind, name, fn, options, requires + _option_requirements(fn, options), multiprocess
    )


def _option_requirements(fn: Callable, options: Mapping[str, Any]) -> tuple[Requirement, ...]:
    """What a class module needs under these options (its ``requirements`` classmethod)."""
    requirements = getattr(fn, "requirements", None) if inspect.isclass(fn) else None
    if requirements is None:
        return ()
    declared = tuple(requirements(dict(options)))
    if not all(isinstance(r, Requirement) for r in declared):
        raise TypeError(f"{fn.__qualname__}.requirements must return Requirement(...) entries")
    return declared
