"""The builders of credit requirements, by kind: who builds a judge, a latent-reward model...

A credit module lists `Requirement`s by kind (`creditgym.credit.modules`); `build_credit` asks
the builder registered here for each kind. `judges` and `latent` register the built-in kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from creditgym.credit import RunContext

__all__ = ["ANSWER_SCORES", "SCORER", "Builder", "get_builder", "register_builder"]

#: ``builder(value, run, where) -> thing``: `value` is the config setting or module option the
#: requirement names (None if it names neither); `where` names it for error messages.
Builder = Callable[[Any, RunContext, str], Any]

_BUILDERS: dict[str, Builder] = {}

SCORER = "scorer"  # not built: the trainer hands the policy in each iteration
ANSWER_SCORES = "answer_scores"


def register_builder(kind: str) -> Callable[[Builder], Builder]:
    """Decorator: build requirements of `kind` with ``builder(value, run, where)``."""

    def decorator(builder: Builder) -> Builder:
        _BUILDERS[kind] = builder
        return builder

    return decorator


def get_builder(kind: str) -> Builder | None:
    """The builder registered for `kind`, or None."""
    return _BUILDERS.get(kind)
