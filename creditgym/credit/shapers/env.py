"""The built-in ``env`` shaper: the environment's own reward of every turn."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from creditgym.credit.context import CreditContext
from creditgym.credit.registry import register_shaper
from creditgym.trajectory import Episode, turn_rewards

__all__ = ["env_rewards"]


def env_rewards(
    episodes: Sequence[Episode], context: CreditContext | None, *, scale: float = 1.0
) -> list[np.ndarray]:
    """The environment's own reward of every turn, times `scale`."""
    return [scale * turn_rewards(episode) for episode in episodes]


register_shaper("env")(env_rewards)
