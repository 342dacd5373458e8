"""Checkpoints: the model as a Hugging Face directory plus everything needed to resume exactly.

Layout of `<output_dir>/checkpoints/iter_000010/`:
  model/            `save_pretrained` of the model and tokenizer (loadable by any HF tool)
  optimizer.pt      optimizer state
  rng.pt            Python, NumPy and torch RNG states (global and the policy's sampler)
  trainer_state.json  iteration, metrics so far
  checkpoint.json   written last: every file above with its size and sha256 (the completion
                    marker; the trainer state, iteration included, is one of the files)
A checkpoint is written to a temporary folder, completed with `checkpoint.json`, and renamed
into place, so a crash mid-save never leaves a directory that looks complete.

Resuming verifies a checkpoint before using it (`verify_checkpoint`: every file present, of
its recorded size and content hash and loadable, the model's weights readable, the manifest's
iteration the trainer state's) and falls back to the previous complete one with a warning
(`find_resume_checkpoint`), or stops with one line naming the broken file and how to choose
another (``run.resume_from=PATH``). One flipped bit anywhere, an edited iteration number or a
same-size garbage file is caught. Hashing reads every file once (about 1 s per GB).

Checkpoints from before the hashes (a manifest of sizes only, or none) are still used, verified
by sizes and loading only, with a `CheckpointWarning` saying a same-size corruption would go
unnoticed: refusing them would strand every older run, and the next checkpoint has hashes.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from creditgym.train.disk import DiskFullError, disk_full_guard

__all__ = [
    "TrainerState",
    "CheckpointError",
    "CheckpointWarning",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "verify_checkpoint",
    "find_resume_checkpoint",
    "check_resume_from",
    "rng_state",
    "set_rng_state",
]


MANIFEST = "checkpoint.json"


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message names the broken file and what to do."""


class CheckpointWarning(UserWarning):
    """A broken checkpoint was skipped in favour of an older complete one."""


@dataclass
class TrainerState:
    """What the trainer loop needs to continue where it stopped."""

    iteration: int = 0  # iterations completed
    env_steps: int = 0
    policy_tokens: int = 0  # prompt + response tokens of generated turns
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

    Raises:
        DiskFullError: the disk filled up; the half-written checkpoint is removed, so the
            next run resumes from the previous one.
    """
    final = Path(directory) / f"iter_{state.iteration:06d}"
    staging = final.with_name(final.name + ".tmp")
    try:
        with disk_full_guard(staging):
            _write(staging, model, tokenizer, optimizer, state, rng, credit_state)
    except DiskFullError:
        shutil.rmtree(staging, ignore_errors=True)  # give back the space; never looks complete
        raise
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return final


def _write(
    staging: Path,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    state: TrainerState,
    rng: dict[str, Any],
    credit_state: dict[str, Any] | None,
) -> None:
    """Every file of a checkpoint into `staging`, the manifest last."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save_pretrained(staging / "model")
    tokenizer.save_pretrained(staging / "model")
    torch.save(optimizer.state_dict(), staging / "optimizer.pt")
    torch.save(rng, staging / "rng.pt")
    if credit_state:
        torch.save(credit_state, staging / "credit.pt")
    (staging / "trainer_state.json").write_text(json.dumps(state.__dict__, indent=1, default=float))
    files = {
        str(file.relative_to(staging)): {"size": file.stat().st_size, "sha256": _sha256(file)}
        for file in sorted(staging.rglob("*"))
        if file.is_file()
    }
    # Written last: a directory without it (or with files of other sizes) is incomplete.
    (staging / MANIFEST).write_text(json.dumps({"iteration": state.iteration, "files": files}))


def _checkpoint_dirs(directory: Path) -> list[Path]:
    """Every finished checkpoint directory under `directory`, oldest first (no staging ones)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("iter_*") if p.is_dir() and not p.name.endswith(".tmp"))


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint under `directory` that has its trainer state, or None (unverified;
    `find_resume_checkpoint` verifies)."""
    complete = [p for p in _checkpoint_dirs(directory) if (p / "trainer_state.json").is_file()]
    return complete[-1] if complete else None


def verify_checkpoint(path: Path) -> None:
    """Raise `CheckpointError` naming the first file of `path` that is missing or unreadable.

    Checks what `save_checkpoint` recorded in ``checkpoint.json`` (each file present with its
    size and sha256, the manifest's iteration the trainer state's; older checkpoints: sizes
    only, or nothing, with a `CheckpointWarning`), then that ``trainer_state.json`` is a
    trainer state, ``rng.pt``, ``optimizer.pt`` and ``credit.pt`` load, and every
    ``model/*.safetensors`` has a complete header (safetensors checks the data it announces is
    all there).
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a checkpoint directory")
    manifest = path / MANIFEST
    recorded: dict[str, Any] = {}
    hashed = False
    if manifest.is_file():
        content = _read_json(manifest)
        recorded = content.get("files", {})
        hashed = bool(recorded) and all(isinstance(v, dict) for v in recorded.values())
        for name, entry in recorded.items():
            _check_file(path / name, entry)
    if not hashed:
        warnings.warn(
            f"{path} predates content hashes: only its sizes and that it loads are checked, so "
            "a same-size corruption would go unnoticed (checkpoints saved from now on have "
            "hashes)",
            CheckpointWarning,
            stacklevel=2,
        )
    state_file = path / "trainer_state.json"
    if not state_file.is_file():
        raise CheckpointError(f"{state_file} is missing")
    if hashed and "trainer_state.json" not in recorded:
        raise CheckpointError(f"{state_file} is not covered by {manifest} (edited?)")
    try:
        state = TrainerState(**_read_json(state_file))
    except TypeError as error:
        raise CheckpointError(f"{state_file} is not a trainer state ({error})") from None
    if hashed and content.get("iteration") != state.iteration:
        raise CheckpointError(
            f"{state_file} says iteration {state.iteration}, {manifest} "
            f"{content.get('iteration')} (edited?)"
        )
    for name in ("rng.pt", "optimizer.pt", "credit.pt"):
        file = path / name
        if name == "credit.pt" and not file.exists():
            continue  # only stateful credit modules write it
        _check_loads(file)
    _check_model(path / "model")


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_file(file: Path, entry: Any) -> None:
    """`file` as the manifest recorded it: its size (an int, before hashes) or size and sha256."""
    if not file.is_file():
        raise CheckpointError(f"{file} is missing")
    size = entry.get("size") if isinstance(entry, dict) else entry
    if file.stat().st_size != size:
        raise CheckpointError(
            f"{file} is {file.stat().st_size} bytes, {size} when saved (truncated?)"
        )
    if isinstance(entry, dict) and _sha256(file) != entry.get("sha256"):
        raise CheckpointError(
            f"{file} does not match its sha256 in {MANIFEST} (corrupted or edited since saved)"
        )


def _read_json(file: Path) -> dict[str, Any]:
    try:
        value = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = "it is empty" if file.is_file() and file.stat().st_size == 0 else error
        raise CheckpointError(f"{file} is unreadable: {reason}") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{file} holds {type(value).__name__}, not a JSON object")
    return value


def _check_loads(file: Path) -> None:
    if not file.is_file():
        raise CheckpointError(f"{file} is missing")
    try:  # mmap: a zip archive's directory sits at its end, so truncation shows without reading
        torch.load(file, weights_only=False, mmap=True, map_location="cpu")
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        raise CheckpointError(f"{file} does not load (truncated?): {reason}") from None


def _check_model(model_dir: Path) -> None:
    from safetensors import SafetensorError, safe_open

    if (
        not (model_dir / "config.json").is_file()
        and not (model_dir / "adapter_config.json").is_file()
    ):
        raise CheckpointError(f"{model_dir} holds no model (config.json is missing)")
    weights = sorted(model_dir.glob("*.safetensors"))
    if not weights and not any(model_dir.glob("*.bin")):
        raise CheckpointError(f"{model_dir} holds no weights (*.safetensors)")
    for file in weights:
        try:
            with safe_open(str(file), framework="pt") as handle:
                handle.keys()
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{file} is unreadable (truncated?): {error}") from None


def check_resume_from(config: Any) -> None:
    """``run.resume_from``, if set, is a complete checkpoint; else `ConfigError` naming the key."""
    from creditgym.config import ConfigError

    if not config.run.resume_from:
        return
    try:
        find_resume_checkpoint(
            Path(config.run.output_dir) / "checkpoints", resume_from=config.run.resume_from
        )
    except CheckpointError as error:
        raise ConfigError(str(error)) from None


def find_resume_checkpoint(
    directory: Path, *, resume: bool = True, resume_from: str | Path = ""
) -> Path | None:
    """The verified checkpoint a run continues from, or None to start afresh.

    With `resume_from` (``run.resume_from``) that checkpoint, which must verify; otherwise,
    when `resume` is on, the newest checkpoint under `directory` that verifies. Broken newer
    ones are skipped with a `CheckpointWarning` naming the broken file; if every one is
    broken, `CheckpointError` says how to choose (``run.resume_from=PATH``) or start over
    (``run.resume=false``).
    """
    if resume_from:
        try:
            verify_checkpoint(Path(resume_from))
        except CheckpointError as error:
            raise CheckpointError(
                f"run.resume_from={resume_from} cannot be used: {error}; "
                f"{_choices(Path(directory))}"
            ) from None
        return Path(resume_from)
    if not resume:
        return None
    broken: list[str] = []
    for candidate in reversed(_checkpoint_dirs(directory)):
        try:
            verify_checkpoint(candidate)
        except CheckpointError as error:
            broken.append(str(error))
            continue
        if broken:
            warnings.warn(
                f"skipped broken checkpoint(s): {'; '.join(broken)}. Resuming from {candidate} "
                "instead; to choose another, set run.resume_from=PATH",
                CheckpointWarning,
                stacklevel=2,
            )
        return candidate
    if broken:
        raise CheckpointError(
            f"no usable checkpoint in {directory}: {'; '.join(broken)}. Set "
            "run.resume_from=PATH to resume from another, or run.resume=false to start over"
        )
    return None


def _choices(directory: Path) -> str:
    usable = []
    for candidate in _checkpoint_dirs(directory):
        try:
            verify_checkpoint(candidate)
            usable.append(str(candidate))
        except CheckpointError:
            pass
    if usable:
        return f"complete checkpoints in {directory}: {', '.join(usable)}"
    return "choose another checkpoint directory, or set run.resume=false to start over"


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
