"""The public credit call: episodes in, one advantage per turn out.

    advantages = compute_advantages(
        episodes,
        shapers=["env"],
        estimator={"name": "gigpo", "gamma": 0.95, "step_weight": 1.0},
    )

which is what the config block ``credit: {shapers: [env], estimator: {name: gigpo, ...}}``
means. Shapers run on the non-failed episodes only (a crashed episode may lack the infos a
shaper reads); failed episodes get zero turn rewards and, from every estimator, zero advantages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from creditgym.credit.batch import check_turn_rewards
from creditgym.credit.context import CreditContext
from creditgym.credit.registry import CreditConfigError, Resolved, resolve
from creditgym.trajectory import Episode

__all__ = [
    "ShaperSpec",
    "EstimatorSpec",
    "check_credit_config",
    "shape_rewards",
    "compute_advantages",
]

ShaperSpec = str | Mapping[str, Any]
EstimatorSpec = str | Mapping[str, Any]


def _resolve_shapers(shapers: Sequence[ShaperSpec] | ShaperSpec) -> list[Resolved]:
    if isinstance(shapers, (str, Mapping)):
        shapers = [shapers]
    resolved = [resolve("shaper", spec) for spec in shapers]
    if not resolved:
        raise CreditConfigError(
            "no turn-reward shapers given; list at least one, e.g. shapers: [env] for the "
            "environment's own reward."
        )
    return resolved


def check_credit_config(
    shapers: Sequence[ShaperSpec] | ShaperSpec = ("env",), estimator: EstimatorSpec = "grpo"
) -> None:
    """Raise `CreditConfigError` now, before any rollout, if the credit config is wrong."""
    _resolve_shapers(shapers)
    resolve("estimator", estimator)


def _run_shaper(
    shaper: Resolved, episodes: Sequence[Episode], context: CreditContext
) -> list[np.ndarray]:
    rewards = shaper.fn(episodes, context, **shaper.options)
    check_turn_rewards(episodes, rewards, f"shaper {shaper.name!r}")
    return [np.asarray(r, dtype=np.float64) for r in rewards]


def shape_rewards(
    episodes: Sequence[Episode],
    shapers: Sequence[ShaperSpec] | ShaperSpec = ("env",),
    context: CreditContext | None = None,
) -> list[np.ndarray]:
    """Sum of the shapers' turn rewards, one array per episode; zeros for failed episodes."""
    context = context if context is not None else CreditContext()
    resolved = _resolve_shapers(shapers)
    total = [np.zeros(len(episode.turns)) for episode in episodes]
    kept = [i for i, episode in enumerate(episodes) if not episode.failed]
    kept_episodes = [episodes[i] for i in kept]
    for shaper in resolved:
        for i, rewards in zip(kept, _run_shaper(shaper, kept_episodes, context)):
            total[i] += rewards
    return total


def compute_advantages(
    episodes: Sequence[Episode],
    shapers: Sequence[ShaperSpec] | ShaperSpec = ("env",),
    estimator: EstimatorSpec = "grpo",
    context: CreditContext | None = None,
) -> list[np.ndarray]:
    """One advantage per turn for every episode: shapers summed, then the estimator.

    Args:
        episodes: the batch, all groups together (group statistics use `Episode.group_id`).
        shapers: names or ``{name: ..., option: value}`` mappings of registered shapers.
        estimator: a name or ``{name: ..., option: value}`` of a registered estimator.
        context: outside things shapers need (policy scorer, LLM judge); see `CreditContext`.

    Returns:
        A float64 array of shape (len(episode.turns),) per episode, in the given order.

    Raises:
        CreditConfigError: unknown shaper/estimator name or option.
    """
    resolved = resolve("estimator", estimator)
    turn_rewards = shape_rewards(episodes, shapers, context)
    advantages = resolved.fn(episodes, turn_rewards, **resolved.options)
    check_turn_rewards(episodes, advantages, f"estimator {resolved.name!r}")
    return [np.asarray(a, dtype=np.float64) for a in advantages]
