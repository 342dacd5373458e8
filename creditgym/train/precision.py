"""Numeric precision of training: which dtype the weights live in and what runs under autocast.

``train.precision``:

* ``fp32``: float32 weights, optimizer state and arithmetic (the CPU default).
* ``bf16-mixed``: float32 *master* weights and optimizer state; forward and backward passes
  (rollout sampling, log-prob scoring, the update) run under ``torch.autocast`` in bfloat16.
  The CUDA default: fast bf16 matmuls, and an AdamW step of 1e-6 still lands on the weights.
* ``bf16``: the weights themselves in bfloat16 (half the memory). A bf16 weight has 8 bits of
  mantissa, so an update smaller than about 1/256 of the weight rounds away: one AdamW step at
  lr 1e-6 changes under 1% of a bf16 layer's weights (100% in fp32). Use it only with large
  learning rates; a warning says so.
* ``auto``: ``bf16-mixed`` on CUDA, ``fp32`` elsewhere.
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

__all__ = ["PRECISIONS", "Precision", "resolve_precision"]

PRECISIONS = ("auto", "fp32", "bf16-mixed", "bf16")


@dataclass(frozen=True)
class Precision:
    """A resolved precision mode on one device type.

    Attributes:
        name: ``fp32``, ``bf16-mixed`` or ``bf16`` (never ``auto``).
        device_type: ``cpu`` or ``cuda``: the autocast device.
    """

    name: str
    device_type: str

    @property
    def weight_dtype(self) -> torch.dtype:
        """The dtype the trained weights (and so the optimizer state) are loaded in."""
        return torch.bfloat16 if self.name == "bf16" else torch.float32

    @property
    def engine_dtype(self) -> torch.dtype:
        """The dtype a separate rollout engine (vLLM) holds: bf16 copies of fp32 masters."""
        return torch.float32 if self.name == "fp32" else torch.bfloat16

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast for ``bf16-mixed``; nothing for the other modes."""
        if self.name != "bf16-mixed":
            return nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)


def resolve_precision(setting: str, device: torch.device | str) -> Precision:
    """The precision `setting` (one of `PRECISIONS`) means on `device`.

    Warns for pure ``bf16``, whose weights cannot take small updates.
    """
    if setting not in PRECISIONS:
        raise ValueError(
            f"train.precision={setting!r}; choose one of {', '.join(PRECISIONS)} "
            "(bf16-mixed: fp32 weights with bf16 autocast)"
        )
    device_type = torch.device(device).type
    name = setting
    if setting == "auto":
        name = "bf16-mixed" if device_type == "cuda" else "fp32"
    if name == "bf16":
        warnings.warn(
            "train.precision=bf16 keeps the weights in bfloat16: updates smaller than ~1/256 of a "
            "weight round away (at lr 1e-6 one AdamW step changes under 1% of the weights); "
            "use train.precision=bf16-mixed (fp32 master weights, bf16 autocast) unless the "
            "learning rate is large",
            stacklevel=2,
        )
    return Precision(name=name, device_type=device_type)
