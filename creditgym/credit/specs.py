"""A compact spec language for credit configurations, one method per string.

    SHAPER[+SHAPER...]/ESTIMATOR        e.g. env+calm/gigpo, lare/discounted_group
    ESTIMATOR                           the env's reward under that estimator: gigpo = env/gigpo

Every part takes options as ``:key=value`` (values read as YAML: numbers, booleans, strings):
``gigpo:normalization=mean_std:step_weight=0.5``, ``lare:variant=rrd/discounted_group``. Shorthands
name the papers' configurations: ``igpo`` = ``env+info_gain/discounted_group``, ``calm`` =
``env+calm/grpo``, ``lare`` = ``lare/discounted_group``.

A spec parses to exactly what the trainer's config holds (``credit.shapers`` and
``credit.estimator``), checked against the credit registry, so a method scored by
``creditgym credit-report`` is the method ``creditgym train`` would run. Add a shorthand of your
own with `register_shorthand`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from creditgym.credit.api import check_credit_config, compute_advantages

__all__ = ["SHORTHANDS", "CreditMethod", "parse_method", "parse_methods", "register_shorthand"]

#: One word for a full spec: the papers' configurations.
SHORTHANDS: dict[str, str] = {
    "igpo": "env+info_gain/discounted_group",
    "calm": "env+calm/grpo",
    "lare": "lare/discounted_group",
}
_NAME = re.compile(r"^[A-Za-z_][\w.-]*$")
_OPTION_PIECE = re.compile(r"^\s*[A-Za-z_]\w*\s*=")


def register_shorthand(name: str, spec: str) -> None:
    """Let `name` stand for the full `spec` (e.g. ``"mine"`` for ``"env+mine/grpo"``).

    The spec is parsed when the shorthand is used, so its shapers and estimator may be
    registered later. Raises ValueError if `name` is not a plain name or holds spec syntax.
    """
    if not _NAME.match(name):
        raise ValueError(f"shorthand {name!r} must be a plain name (letters, digits, _ . -)")
    SHORTHANDS[name] = spec


@dataclass(frozen=True)
class CreditMethod:
    """One credit configuration: its label as typed, the shapers and the estimator (the
    trainer's ``credit.shapers`` / ``credit.estimator`` entries, ``{name: ..., option: ...}``)."""

    label: str
    shapers: list[dict[str, Any]] = field(hash=False)
    estimator: dict[str, Any] = field(hash=False)

    @property
    def shaper_names(self) -> list[str]:
        return [shaper["name"] for shaper in self.shapers]


def _component(text: str, spec: str) -> dict[str, Any]:
    name, *options = text.strip().split(":")
    name = name.strip()
    if not _NAME.match(name):
        raise ValueError(
            f"credit method {spec!r}: {name!r} is not a shaper or estimator name; write "
            "SHAPER[+SHAPER]/ESTIMATOR with :key=value options, e.g. env+calm/gigpo:gamma=0.9"
        )
    parsed: dict[str, Any] = {"name": name}
    for option in options:
        key, equals, value = option.partition("=")
        if not equals or not _NAME.match(key.strip()) or not value.strip():
            raise ValueError(
                f"credit method {spec!r}: option {option!r} of {name} must look like key=value, "
                "e.g. gigpo:normalization=mean_std"
            )
        parsed[key.strip()] = yaml.safe_load(value.strip())
    return parsed


def parse_method(spec: str) -> CreditMethod:
    """The `CreditMethod` one spec string names (see the module docstring).

    Raises:
        ValueError: a malformed spec; `CreditConfigError` (a ValueError) for an unknown shaper,
            estimator or option, naming the valid ones.
    """
    label = spec.strip()
    text = SHORTHANDS.get(label, label)
    if not text:
        raise ValueError("empty credit method; name one, e.g. grpo or env+calm/gigpo")
    if text.count("/") > 1:
        raise ValueError(
            f"credit method {spec!r} has more than one '/'; write SHAPER[+SHAPER]/ESTIMATOR"
        )
    shaper_text, _, estimator_text = text.rpartition("/")
    if "/" in text and not shaper_text.strip():
        raise ValueError(f"credit method {spec!r}: no shaper before '/'; e.g. env/{estimator_text}")
    shapers = [_component(part, spec) for part in (shaper_text or "env").split("+")]
    estimator = _component(estimator_text, spec)
    check_credit_config(shapers, estimator)
    compute_advantages([], ["env"], estimator)  # an empty batch checks the options' values now
    return CreditMethod(label, shapers, estimator)


def parse_methods(text: str) -> list[CreditMethod]:
    """Comma-separated specs. A piece that is only ``key=value`` continues the previous method's
    last part, so ``gigpo:normalization=mean_std,step_weight=0.5`` is one method."""
    specs: list[str] = []
    for piece in text.split(","):
        if _OPTION_PIECE.match(piece) and specs and "/" not in piece:
            specs[-1] += ":" + piece.strip()
        elif piece.strip():
            specs.append(piece.strip())
    if not specs:
        raise ValueError("--methods names no credit method; e.g. --methods grpo,gigpo")
    methods = [parse_method(spec) for spec in specs]
    labels = [method.label for method in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"--methods names a method twice: {', '.join(labels)}")
    return methods
