"""Flat, vectorised views of a batch of episodes, shared by every estimator.

Estimators work on one flat array per quantity, turns of episode 0 first, then episode 1, and
so on (`TurnBatch`). Group statistics are segment reductions with `np.bincount`, so the cost
is a few numpy passes over the batch whatever the number of groups.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from creditgym.trajectory import Episode

__all__ = [
    "Normalization",
    "GROUP_NORMALIZATIONS",
    "TurnBatch",
    "flatten",
    "split_by_episode",
    "discounted_returns",
    "batch_discounted_returns",
    "factorize",
    "group_normalize",
    "check_choice",
    "check_turn_rewards",
]

Normalization = Literal["mean", "mean_std"]
GROUP_NORMALIZATIONS: tuple[str, ...] = ("mean", "mean_std")


@dataclass
class TurnBatch:
    """A batch of episodes as flat per-turn and per-episode arrays.

    Attributes:
        rewards: (turns,) the turn rewards handed to the estimator.
        episode: (turns,) index of each turn's episode.
        step: (turns,) position of each turn within its episode (0-based).
        lengths: (episodes,) number of turns per episode.
        group: (episodes,) index of each episode's group (episodes sharing a `group_id`).
        n_groups: number of distinct groups.
        failed: (episodes,) `episode.failed`.
    """

    rewards: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    lengths: np.ndarray
    group: np.ndarray
    n_groups: int
    failed: np.ndarray

    @property
    def turn_failed(self) -> np.ndarray:  # (turns,)
        return self.failed[self.episode]

    @property
    def returns(self) -> np.ndarray:  # (episodes,) undiscounted sum of turn rewards
        return np.bincount(self.episode, weights=self.rewards, minlength=len(self.lengths))


def check_turn_rewards(
    episodes: Sequence[Episode], turn_rewards: Sequence[np.ndarray], produced_by: str
) -> None:
    """Raise if `turn_rewards` is not one array of one float per turn for each episode."""
    if len(turn_rewards) != len(episodes):
        raise ValueError(
            f"{produced_by} returned {len(turn_rewards)} arrays for {len(episodes)} episodes; "
            "it must return one array per episode, in the order given."
        )
    for index, (episode, rewards) in enumerate(zip(episodes, turn_rewards)):
        if np.shape(rewards) != (len(episode.turns),):
            raise ValueError(
                f"{produced_by} returned shape {np.shape(rewards)} for episode {index}, which has "
                f"{len(episode.turns)} turns; expected shape ({len(episode.turns)},): "
                "one float per turn."
            )


def flatten(episodes: Sequence[Episode], turn_rewards: Sequence[np.ndarray]) -> TurnBatch:
    """Concatenate per-episode turn rewards and index every turn by episode, step and group."""
    check_turn_rewards(episodes, turn_rewards, "turn_rewards")
    lengths = np.array([len(episode.turns) for episode in episodes], dtype=np.int64)
    n_turns = int(lengths.sum())
    episode_of_turn = np.repeat(np.arange(len(episodes)), lengths)
    starts = np.cumsum(lengths) - lengths
    step = np.arange(n_turns) - np.repeat(starts, lengths)
    rewards = (
        np.concatenate([np.asarray(r, dtype=np.float64) for r in turn_rewards])
        if n_turns
        else np.zeros(0)
    )
    group, group_ids = factorize([episode.group_id for episode in episodes])
    failed = np.array([episode.failed for episode in episodes], dtype=bool)
    return TurnBatch(rewards, episode_of_turn, step, lengths, group, len(group_ids), failed)


def split_by_episode(flat: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """Cut a flat (turns,) array back into one array per episode."""
    return np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []


def factorize(keys: Sequence[Hashable]) -> tuple[np.ndarray, list[Hashable]]:
    """Integer ids of keys in first-seen order, with one dict pass: (ids, distinct keys)."""
    index: dict[Hashable, int] = {}
    ids = np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)
    return ids, list(index)


def batch_discounted_returns(rewards: np.ndarray, lengths: np.ndarray, gamma: float) -> np.ndarray:
    """R_t = sum_{k>=t} gamma^(k-t) r_k within each episode of a flat batch.  # (turns,)

    Loops over "turns left until the end" (at most the longest episode), each pass a vector
    operation over every episode at once.
    """
    n_turns = len(rewards)
    returns = np.zeros(n_turns)
    if n_turns == 0:
        return returns
    ends = np.cumsum(lengths)
    turns_left = np.repeat(ends, lengths) - 1 - np.arange(n_turns)  # 0 on the last turn
    order = np.argsort(turns_left, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(turns_left))])
    last = order[bounds[0] : bounds[1]]
    returns[last] = rewards[last]
    for k in range(1, len(bounds) - 1):
        turn = order[bounds[k] : bounds[k + 1]]
        returns[turn] = rewards[turn] + gamma * returns[turn + 1]
    return returns


def discounted_returns(rewards: Sequence[float] | np.ndarray, gamma: float) -> np.ndarray:
    """Discounted return of every turn of one episode: R_t = sum_{k>=t} gamma^(k-t) r_k.

    >>> discounted_returns([0.0, 0.0, 1.0], gamma=0.5)
    array([0.25, 0.5 , 1.  ])
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.ndim != 1:
        raise ValueError(
            f"rewards must be one episode's 1-D array of turn rewards, got shape {rewards.shape}"
        )
    return batch_discounted_returns(rewards, np.array([len(rewards)]), gamma)


def group_normalize(
    values: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
    normalization: str,
    epsilon: float,
) -> np.ndarray:
    """Each value against its group: x - mean, or (x - mean) / (std + epsilon).  # (values,)

    `std` is the unbiased (n - 1) standard deviation, as `torch.std` computes it in verl and
    verl-agent. A group of one gets 0. Deviations are taken from one member of each group
    before averaging, so a group of equal values gets exactly 0 rather than rounding noise.
    """
    counts = np.bincount(groups, minlength=n_groups)
    member = np.zeros(n_groups)
    member[groups] = values  # any member of each group will do as a shift
    shifted = values - member[groups]
    deviation = (
        shifted
        - (np.bincount(groups, weights=shifted, minlength=n_groups) / np.maximum(counts, 1))[groups]
    )
    if normalization == "mean":
        return deviation
    squares = np.bincount(groups, weights=deviation**2, minlength=n_groups)
    std = np.sqrt(squares / np.maximum(counts - 1, 1))  # 0 for a group of one
    return deviation / (std[groups] + epsilon)


def check_choice(option: str, value: Any, choices: Sequence[str], owner: str) -> None:
    """Raise a helpful error if an option's value is not one of its choices."""
    if value not in choices:
        raise ValueError(
            f"{owner}: {option}={value!r} is not one of {', '.join(repr(c) for c in choices)}."
        )
