"""The update's units: a batch's turns as token rows, and what the update asks of them.

A `TrainTurn` is one turn (its prompt, its response tokens, their behaviour log-probs and
advantages); a `TrainSequence` is a whole episode in ``conversation`` context, whose turns'
responses are scored in one forward pass (`flatten_sequences`). The helpers here read either
alike: turn and token counts, per-token advantages, which tokens the decoding constraint
forced (`mark_forced_tokens`), and micro-batches of similar length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from creditgym.agents.protocols import ForcedTokenPolicy
from creditgym.envs import info as keys
from creditgym.trajectory import Episode, Turn

T = TypeVar("T")

__all__ = [
    "TrainSequence",
    "TrainTurn",
    "Unit",
    "counted_rows",
    "flatten_sequences",
    "flatten_turns",
    "free_tokens",
    "group_turns",
    "mark_forced_tokens",
    "micro_batches",
    "old_logprobs",
    "token_advantages",
    "token_length",
    "trains",
    "turn_advantages",
    "turn_count",
    "turn_lengths",
]


@dataclass
class TrainTurn:
    """A turn ready for the loss: token ids, behaviour log-probs and its advantage."""

    prompt_ids: list[int]
    response_ids: list[int]
    old_logprobs: list[float]
    advantage: float
    admissible_actions: list[str] | None
    ref_logprobs: torch.Tensor | None = None
    token_advantages: list[float] | None = None  # one per response token, replacing `advantage`
    episode: int = 0  # which episode of the batch it came from (for train.loss_agg)
    forced: list[bool] | None = None  # per response token: forced by the constraint


@dataclass
class TrainSequence:
    """Consecutive turns of one conversation as one token sequence.

    `ids` is the last turn's prompt and response; `spans[k]` is where turn k's response lies
    in it (each turn's prompt and response are a prefix of the next turn's prompt).
    """

    ids: list[int]
    spans: list[tuple[int, int]]
    old_logprobs: list[list[float]]
    advantages: list[float]
    admissible_actions: list[list[str] | None]
    ref_logprobs: list[torch.Tensor] | None = None
    token_advantages: list[list[float]] | None = None  # per turn, one per response token
    episode: int = 0  # which episode of the batch it came from (for train.loss_agg)
    forced: list[bool] | None = None  # per response token of every span: forced

    @property
    def trains(self) -> bool:
        """Whether any of its tokens has a nonzero advantage (else the update skips it)."""
        if self.token_advantages is not None:
            return any(a != 0.0 for row in self.token_advantages for a in row)
        return any(a != 0.0 for a in self.advantages)

    @property
    def response_ids(self) -> list[int]:
        return [token for start, end in self.spans for token in self.ids[start:end]]


def flatten_sequences(
    episodes: Sequence[Episode],
    advantages: Sequence[np.ndarray],
    token_advantages: Sequence[Sequence[np.ndarray]] | None = None,
) -> list[TrainSequence]:
    """Each episode's turns with response tokens, as few sequences as their prompts allow:
    a turn joins the previous turn's sequence when its prompt extends that turn's prompt and
    response (a conversation whose oldest turns the context budget dropped starts anew).
    With `token_advantages` (per episode, one array per turn), tokens are weighted by those."""
    sequences: list[TrainSequence] = []
    for index, (episode, episode_advantages) in enumerate(zip(episodes, advantages)):
        current: TrainSequence | None = None
        for k, (turn, advantage) in enumerate(zip(episode.turns, episode_advantages)):
            if not turn.response_ids or len(turn.logprobs) != len(turn.response_ids):
                continue
            prompt, response = list(turn.prompt_ids), list(turn.response_ids)
            if current is None or prompt[: len(current.ids)] != current.ids:
                current = TrainSequence([], [], [], [], [], episode=index)
                if token_advantages is not None:
                    current.token_advantages = []
                sequences.append(current)
            if current.token_advantages is not None:
                current.token_advantages.append(_token_row(token_advantages[index][k], turn))
            start = len(prompt)
            current.ids = prompt + response
            current.spans.append((start, start + len(response)))
            current.old_logprobs.append(list(turn.logprobs))
            current.advantages.append(float(advantage))
            admissible = turn.info.get(keys.ADMISSIBLE_ACTIONS)
            current.admissible_actions.append(list(admissible) if admissible is not None else None)
    return sequences


def flatten_turns(
    episodes: Sequence[Episode],
    advantages: Sequence[np.ndarray],
    token_advantages: Sequence[Sequence[np.ndarray]] | None = None,
) -> list[TrainTurn]:
    """Every turn that has response tokens, paired with its advantage (and with
    `token_advantages`, per episode one array per turn, its tokens' own advantages)."""
    flat = []
    for index, (episode, episode_advantages) in enumerate(zip(episodes, advantages)):
        for k, (turn, advantage) in enumerate(zip(episode.turns, episode_advantages)):
            if turn.response_ids and len(turn.logprobs) == len(turn.response_ids):
                flat.append(_train_turn(turn, float(advantage)))
                flat[-1].episode = index
                if token_advantages is not None:
                    flat[-1].token_advantages = _token_row(token_advantages[index][k], turn)
    return flat


def _token_row(row: np.ndarray, turn: Turn) -> list[float]:
    if len(row) != len(turn.response_ids):
        raise ValueError(
            f"a turn has {len(turn.response_ids)} response tokens but {len(row)} token "
            "advantages; the estimator must give one per response token"
        )
    return [float(a) for a in row]


def _train_turn(turn: Turn, advantage: float) -> TrainTurn:
    admissible = turn.info.get(keys.ADMISSIBLE_ACTIONS)
    return TrainTurn(
        prompt_ids=turn.prompt_ids,
        response_ids=turn.response_ids,
        old_logprobs=turn.logprobs,
        advantage=advantage,
        admissible_actions=list(admissible) if admissible is not None else None,
    )


Unit = TrainTurn | TrainSequence


def turn_count(unit: Unit) -> int:
    return len(unit.spans) if isinstance(unit, TrainSequence) else 1


def token_length(unit: Unit) -> int:
    if isinstance(unit, TrainSequence):
        return len(unit.ids)
    return len(unit.prompt_ids) + len(unit.response_ids)


def group_turns(
    units: Iterable[T], max_turns: int, turn_count: Callable[[T], int]
) -> list[list[T]]:
    """Consecutive units in groups of up to `max_turns` turns each (at least one unit)."""
    groups: list[list[T]] = []
    turns = 0
    for unit in units:
        if not groups or turns + turn_count(unit) > max_turns:
            groups.append([])
            turns = 0
        groups[-1].append(unit)
        turns += turn_count(unit)
    return groups


def micro_batches(units: Sequence[Unit], micro_batch_turns: int) -> list[list[Unit]]:
    """Units in micro-batches of up to `micro_batch_turns` turns each (at least one unit).

    Units of similar length go together, so a padded forward pass wastes little on padding
    (conversations differ by hundreds of tokens); the grouping leaves the summed loss as it is.
    """
    return group_turns(sorted(units, key=token_length), micro_batch_turns, turn_count)


def old_logprobs(unit: Unit) -> list[float]:
    if isinstance(unit, TrainSequence):
        return [value for turn in unit.old_logprobs for value in turn]
    return unit.old_logprobs


def token_advantages(unit: Unit) -> list[float]:
    if unit.token_advantages is not None:
        if isinstance(unit, TrainSequence):
            return [a for row in unit.token_advantages for a in row]
        return list(unit.token_advantages)
    if isinstance(unit, TrainSequence):
        return [a for a, (s, e) in zip(unit.advantages, unit.spans) for _ in range(e - s)]
    return [unit.advantage] * len(unit.response_ids)


def trains(unit: Unit) -> bool:
    """Whether any of the unit's tokens has a nonzero advantage."""
    if isinstance(unit, TrainSequence):
        return unit.trains
    if unit.token_advantages is not None:
        return any(a != 0.0 for a in unit.token_advantages)
    return unit.advantage != 0.0


def turn_lengths(unit: Unit) -> list[int]:
    """Response tokens of each of the unit's turns."""
    if isinstance(unit, TrainSequence):
        return [end - start for start, end in unit.spans]
    return [len(unit.response_ids)]


def turn_advantages(unit: Unit) -> list[float]:
    """Each of the unit's turns' advantage (the mean of its tokens' when they have their own)."""
    if isinstance(unit, TrainSequence):
        if unit.token_advantages is not None:
            return [float(np.mean(row)) if row else 0.0 for row in unit.token_advantages]
        return list(unit.advantages)
    if unit.token_advantages is not None:
        return [float(np.mean(unit.token_advantages)) if unit.token_advantages else 0.0]
    return [unit.advantage]


def counted_rows(unit: Unit, count_forced: bool) -> list[list[bool]]:
    """Per turn of the unit, which response tokens count in the loss denominators."""
    rows, start = [], 0
    for length in turn_lengths(unit):
        if count_forced or unit.forced is None:
            rows.append([True] * length)
        else:
            rows.append([not forced for forced in unit.forced[start : start + length]])
        start += length
    return rows


def free_tokens(unit: Unit) -> float:
    """Response tokens of the unit that the constraint did not force (all, if unknown)."""
    if unit.forced is None:
        return float(len(old_logprobs(unit)))
    return float(sum(not forced for forced in unit.forced))


def mark_forced_tokens(policy: Any, units: Sequence[Unit]) -> None:
    """Fill each unit's `forced` (per response token) from the policy's decoding constraint,
    as the update scores it: constrained only where every unit has its admissible actions.
    A policy that cannot say (not a `ForcedTokenPolicy`) leaves `forced` unset."""
    if not units or not isinstance(policy, ForcedTokenPolicy):
        return
    if isinstance(units[0], TrainSequence):
        turns = [
            (unit.ids[start:end], actions)
            for unit in units
            for (start, end), actions in zip(unit.spans, unit.admissible_actions)
        ]
    else:
        turns = [(unit.response_ids, unit.admissible_actions) for unit in units]
    constrained = getattr(policy, "constrained", False) and all(a is not None for _, a in turns)
    forced = policy.forced_tokens(
        [list(ids) for ids, _ in turns], [a for _, a in turns] if constrained else None
    )
    rows = iter(forced)
    for unit in units:
        unit.forced = [flag for _ in range(turn_count(unit)) for flag in next(rows)]
