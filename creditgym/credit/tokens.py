"""Per-token advantages next to the per-turn ones, for estimators that give each token its own.

An estimator normally returns one advantage per turn, which the trainer broadcasts to the
turn's response tokens. One that scores tokens (the ``ppo`` estimator's ``level: bilevel``)
returns a `TokenAdvantages` instead: its ``turns`` are what every per-turn reader uses (logs,
metrics, credit-report, the zeroing of copied branch prefixes), its ``tokens`` are what the
policy loss weights each response token by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from creditgym.trajectory import Episode

__all__ = ["TokenAdvantages", "check_token_advantages"]


@dataclass
class TokenAdvantages:
    """An estimator's result with per-token advantages.

    Attributes:
        turns: one advantage per turn for each episode, as a plain estimator returns.
        tokens: for each episode, one array of ``len(turn.response_ids)`` advantages per turn.
    """

    turns: list[np.ndarray]
    tokens: list[list[np.ndarray]]


def check_token_advantages(
    episodes: Sequence[Episode], tokens: Sequence[Sequence[np.ndarray]], where: str
) -> list[list[np.ndarray]]:
    """`tokens` as float64 arrays, after checking one array of the right length per turn."""
    if len(tokens) != len(episodes):
        raise ValueError(
            f"{where} returned token advantages for {len(tokens)} episodes; expected "
            f"{len(episodes)}, one list per episode"
        )
    checked = []
    for index, (episode, rows) in enumerate(zip(episodes, tokens)):
        if len(rows) != len(episode.turns):
            raise ValueError(
                f"{where} returned token advantages for {len(rows)} turns of episode {index}, "
                f"which has {len(episode.turns)}; give one array per turn"
            )
        arrays = [np.asarray(row, dtype=np.float64) for row in rows]
        for turn_index, (turn, row) in enumerate(zip(episode.turns, arrays)):
            if row.shape != (len(turn.response_ids),):
                raise ValueError(
                    f"{where}: episode {index} turn {turn_index} has "
                    f"{len(turn.response_ids)} response tokens but {row.shape} token advantages"
                )
        checked.append(arrays)
    return checked
