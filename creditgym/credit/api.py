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
from dataclasses import dataclass
from typing import Any

import numpy as np

from creditgym.credit.batch import check_turn_rewards
from creditgym.credit.context import CreditContext
from creditgym.credit.registry import CONTEXT_PARAMETER, CreditConfigError, Resolved, resolve
from creditgym.credit.tokens import TokenAdvantages, check_token_advantages
from creditgym.trajectory import Episode

__all__ = [
    "ShaperSpec",
    "EstimatorSpec",
    "check_credit_config",
    "shape_rewards",
    "compute_advantages",
    "CreditBreakdown",
    "assign_credit",
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


def _callable(resolved: Resolved, context: CreditContext | None) -> Any:
    """The function, or for a class-based module the run's instance (a fresh one outside a run)."""
    if not resolved.is_module:
        return resolved.fn
    module = context.modules.get(resolved.name) if context is not None else None
    return module if module is not None else resolved.fn()


def _run_shaper(
    shaper: Resolved, episodes: Sequence[Episode], context: CreditContext
) -> list[np.ndarray]:
    rewards = _callable(shaper, context)(episodes, context, **shaper.options)
    check_turn_rewards(episodes, rewards, f"shaper {shaper.name!r}")
    return [np.asarray(r, dtype=np.float64) for r in rewards]


def _shaper_rewards(
    episodes: Sequence[Episode],
    shapers: Sequence[ShaperSpec] | ShaperSpec,
    context: CreditContext | None,
) -> dict[str, list[np.ndarray]]:
    """Each shaper's turn rewards by name (``name#2`` for a second shaper of the same name)."""
    context = context if context is not None else CreditContext()
    resolved = _resolve_shapers(shapers)
    kept = [i for i, episode in enumerate(episodes) if not episode.failed]
    kept_episodes = [episodes[i] for i in kept]
    by_name: dict[str, list[np.ndarray]] = {}
    for shaper in resolved:
        name, n = shaper.name, 1
        while name in by_name:
            n += 1
            name = f"{shaper.name}#{n}"
        rewards = [np.zeros(len(episode.turns)) for episode in episodes]
        for i, shaped in zip(kept, _run_shaper(shaper, kept_episodes, context)):
            rewards[i] = shaped
        by_name[name] = rewards
    return by_name


def _sum_rewards(
    episodes: Sequence[Episode], by_name: Mapping[str, list[np.ndarray]]
) -> list[np.ndarray]:
    total = [np.zeros(len(episode.turns)) for episode in episodes]
    for rewards in by_name.values():
        for i, shaped in enumerate(rewards):
            total[i] += shaped
    return total


def shape_rewards(
    episodes: Sequence[Episode],
    shapers: Sequence[ShaperSpec] | ShaperSpec = ("env",),
    context: CreditContext | None = None,
) -> list[np.ndarray]:
    """Sum of the shapers' turn rewards, one array per episode; zeros for failed episodes."""
    return _sum_rewards(episodes, _shaper_rewards(episodes, shapers, context))


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
    return assign_credit(episodes, shapers, estimator, context).advantages


@dataclass
class CreditBreakdown:
    """Everything one credit call computed, for logs and the episode viewer.

    Attributes:
        shaper_rewards: each shaper's turn rewards by name, one array per episode (zeros on
            failed episodes); a second shaper of the same name is keyed ``name#2``.
        turn_rewards: their sum, the turn rewards the estimator read.
        advantages: the estimator's per-turn advantages (what `compute_advantages` returns).
        estimator: the estimator's name.
        token_advantages: None, or, from an estimator that returned `TokenAdvantages`, one
            array of ``len(turn.response_ids)`` advantages per turn of each episode: the
            policy loss weights each response token by its own instead of its turn's.
    """

    shaper_rewards: dict[str, list[np.ndarray]]
    turn_rewards: list[np.ndarray]
    advantages: list[np.ndarray]
    estimator: str
    token_advantages: list[list[np.ndarray]] | None = None


def assign_credit(
    episodes: Sequence[Episode],
    shapers: Sequence[ShaperSpec] | ShaperSpec = ("env",),
    estimator: EstimatorSpec = "grpo",
    context: CreditContext | None = None,
) -> CreditBreakdown:
    """`compute_advantages` that also returns each shaper's turn rewards and their sum.

    Same arguments, same advantages; shapers and estimators also leave their diagnostics in
    ``turn.credit_details`` (a judge's verdicts, information gains, latent factors, step groups).
    """
    resolved = resolve("estimator", estimator)
    by_name = _shaper_rewards(episodes, shapers, context)
    turn_rewards = _sum_rewards(episodes, by_name)
    hooks = (
        {CONTEXT_PARAMETER: context if context is not None else CreditContext()}
        if resolved.wants_context
        else {}
    )
    advantages = _callable(resolved, context)(episodes, turn_rewards, **resolved.options, **hooks)
    token_advantages = None
    if isinstance(advantages, TokenAdvantages):
        token_advantages = check_token_advantages(
            episodes, advantages.tokens, f"estimator {resolved.name!r}"
        )
        advantages = advantages.turns
    check_turn_rewards(episodes, advantages, f"estimator {resolved.name!r}")
    return CreditBreakdown(
        shaper_rewards=by_name,
        turn_rewards=turn_rewards,
        advantages=[np.asarray(a, dtype=np.float64) for a in advantages],
        estimator=resolved.name,
        token_advantages=token_advantages,
    )
