"""Checkpoints: the model as a Hugging Face directory plus everything needed to resume exactly.

Layout of `<output_dir>/checkpoints/iter_000010/`:
  model/            `save_pretrained` of the model and tokenizer (loadable by any HF tool)
  optimizer.pt      optimizer state
  rng.pt            Python, NumPy and torch RNG states (global and the policy's sampler)
  trainer_state.json  iteration, metrics so far
A checkpoint is written to a temporary folder and renamed into place, so a crash mid-save
never leaves a half checkpoint that resume would pick up.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "TrainerState",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "rng_state",
    "set_rng_state",
]


@dataclass
class TrainerState:
    """What the trainer loop needs to continue where it stopped."""

    iteration: int = 0  # iterations completed
    env_steps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # one metrics row per iteration
    evals: list[dict[str, Any]] = field(default_factory=list)  # held-out results over time


def rng_state(task_rng: np.random.Generator, sampler: torch.Generator | None) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy_global": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "task_rng": task_rng.bit_generator.state,
        "sampler": sampler.get_state() if sampler is not None else None,
    }


def set_rng_state(
    state: dict[str, Any], task_rng: np.random.Generator, sampler: torch.Generator | None
) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy_global"])
    torch.set_rng_state(state["torch"])
    task_rng.bit_generator.state = state["task_rng"]
    if sampler is not None and state["sampler"] is not None:
        sampler.set_state(state["sampler"])


def save_checkpoint(
    directory: Path,
    *,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    state: TrainerState,
    rng: dict[str, Any],
    credit_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint for `state.iteration` under `directory` and return its path.

    `credit_state` holds what stateful credit modules learn (LaRe's decoder), by name.
    """
    final = Path(directory) / f"iter_{state.iteration:06d}"
    staging = final.with_name(final.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save_pretrained(staging / "model")
    tokenizer.save_pretrained(staging / "model")
    torch.save(optimizer.state_dict(), staging / "optimizer.pt")
    torch.save(rng, staging / "rng.pt")
    if credit_state:
        torch.save(credit_state, staging / "credit.pt")
    (staging / "trainer_state.json").write_text(json.dumps(state.__dict__, indent=1, default=float))
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return final


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint under `directory`, or None."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    complete = sorted(
        p for p in directory.glob("iter_*") if p.is_dir() and not p.name.endswith(".tmp")
    )
    complete = [p for p in complete if (p / "trainer_state.json").is_file()]
    return complete[-1] if complete else None


def load_credit_state(path: Path) -> dict[str, Any]:
    """The stateful credit modules' state saved with a checkpoint ({} if none)."""
    file = Path(path) / "credit.pt"
    return torch.load(file, weights_only=False) if file.is_file() else {}


def load_checkpoint(
    path: Path, optimizer: torch.optim.Optimizer
) -> tuple[TrainerState, dict[str, Any]]:
    """Load optimizer state in place; return the trainer state and the RNG states.

    The model weights are loaded by the caller from `path / "model"` (an HF directory).
    """
    path = Path(path)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    rng = torch.load(path / "rng.pt", weights_only=False)
    state = TrainerState(**json.loads((path / "trainer_state.json").read_text()))
    return state, rng
