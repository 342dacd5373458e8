"""Learning-rate schedules over training iterations (``train.lr_schedule``, with warm-up).

The rate is a pure function of the iteration, set on the optimizer before each update; the
optimizer's state (saved in every checkpoint) carries it, and a resumed run recomputes the
same value, so resume stays exact.

With `warmup` iterations and `total` iterations, iteration i (1-based) uses ``lr x factor``:

* warm-up, i <= warmup: ``factor = i / warmup`` (a linear ramp that reaches lr);
* then, with ``progress = (i - warmup - 1) / (total - warmup)`` in [0, 1):
  ``constant``: 1; ``linear``: 1 - progress; ``cosine``: (1 + cos(pi x progress)) / 2.
  (The last iteration keeps a small positive rate: no update is wasted at lr 0.)
"""

from __future__ import annotations

import math

import torch

__all__ = ["LR_SCHEDULES", "lr_factor", "set_learning_rate"]

LR_SCHEDULES = ("constant", "linear", "cosine")


def lr_factor(schedule: str, iteration: int, total: int, warmup: int = 0) -> float:
    """The multiplier of the base learning rate at `iteration` (1-based) of `total`."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"train.lr_schedule={schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
    if warmup > 0 and iteration <= warmup:
        return iteration / warmup
    if schedule == "constant":
        return 1.0
    progress = (iteration - warmup - 1) / max(1, total - warmup)
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
