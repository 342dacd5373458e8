"""What the resumable benchmarks (`learning.py`, `credit_curves.py`) key their stored runs on,
and the lock that lets several processes share one store.

A stored run's name carries `code_key` (a hash of the committed training code, so that
committing a README or a test keeps every run, and other training code trains anew) and
`config_hash` (a hash of the run's resolved config). A process training a run holds its lock
(`take_lock`), so another process on the same store skips or waits for it instead of training
it twice; `stored_run` does both for a run that leaves a ``summary.json`` in its directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from provenance import ROOT, DirtyTree, commit, git

__all__ = [
    "TRAINING_CODE",
    "code_key",
    "code_key_or_exit",
    "config_hash",
    "copy_run",
    "read_metrics",
    "split_success",
    "stored_run",
    "take_lock",
]

LOCK_POLL_SECONDS = 30  # how often a run another process trains is looked at again

#: what a run's outcome depends on: a commit that changes none of these (a README, a test, a
#: benchmark's table) keeps every stored run
TRAINING_CODE = ("creditgym", "configs", "pyproject.toml", "benchmarks/train_runs.py")


def code_key(allow_dirty: bool) -> str:
    """A hash of the committed training code (`TRAINING_CODE`'s git objects); with
    `allow_dirty` and uncommitted changes (a training file not yet added to git included),
    ``<hash>+dirty-<hash of the changes>`` (so a rerun on the same uncommitted code finds its
    runs, and other code does not).

    Raises `DirtyTree` on uncommitted changes unless allowed.
    """
    untracked = git("ls-files", "--others", "--exclude-standard", "--", *TRAINING_CODE).splitlines()
    if untracked and not allow_dirty:
        raise DirtyTree(
            f"{untracked[0]} is training code that git does not track yet; commit it so the "
            "runs can be keyed on it, or pass --allow-dirty"
        )
    dirty = commit(allow_dirty).endswith("+dirty") or bool(untracked)
    objects = [_head_object(path) for path in TRAINING_CODE]
    key = hashlib.sha256(" ".join(objects).encode()).hexdigest()[:12]
    if not dirty:
        return key
    diff = subprocess.run(
        ["git", "diff", "HEAD", "--", ".", ":(exclude)benchmarks/results"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    changes = hashlib.sha256(diff)
    for path in untracked:
        changes.update(path.encode() + b"\0" + (ROOT / path).read_bytes())
    return f"{key}+dirty-{changes.hexdigest()[:8]}"


def _head_object(path: str) -> str:
    """The git object `path` is in HEAD; '' for a path not committed yet (a new module)."""
    entry = git("ls-tree", "HEAD", "--", path)  # "<mode> <type> <object>\t<path>"
    return entry.split()[2] if entry else ""


def code_key_or_exit(allow_dirty: bool) -> str:
    """`code_key` for a runner's ``main``: on uncommitted training code that was not allowed,
    one ``error: ...`` line on stderr and exit status 2, not a traceback."""
    try:
        return code_key(allow_dirty)
    except DirtyTree as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def config_hash(config: Any) -> str:
    """A hash of a resolved config (defaults included), the output directory left out."""
    resolved = dataclasses.asdict(config)
    resolved["run"].pop("output_dir")
    text = json.dumps(resolved, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def take_lock(lock: Path) -> bool:
    """Create `lock` holding this process's id; False while a live process holds it (a lock
    left by a dead one is taken over)."""
    try:
        with lock.open("x") as f:
            f.write(str(os.getpid()))
        return True
    except FileExistsError:
        try:
            os.kill(int(lock.read_text() or 0), 0)
            return False
        except (ProcessLookupError, ValueError):
            lock.unlink(missing_ok=True)
            return take_lock(lock)
        except PermissionError:  # alive, another user's
            return False


def stored_run(run_dir: Path, train: Callable[[Path], dict]) -> dict:
    """The summary the run in `run_dir` stored (``summary.json``) when it finished, else
    ``train(run_dir)``'s, stored there. While another process trains the run (it holds the lock
    beside `run_dir`), this one waits for it instead of training the run twice."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = run_dir.with_name(f"{run_dir.name}.lock")
    while not take_lock(lock):
        time.sleep(LOCK_POLL_SECONDS)
    try:
        summary_path = run_dir / "summary.json"
        if summary_path.is_file():
            return json.loads(summary_path.read_text())
        summary = train(run_dir)
        summary_path.write_text(json.dumps(summary, indent=1))
        return summary
    finally:
        lock.unlink(missing_ok=True)


def copy_run(source: Path, run_dir: Path) -> None:
    """Make `run_dir` a copy of the run in `source` (its checkpoints, optimizers included, and
    its metrics), for the trainer to resume from its last checkpoint."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    shutil.copytree(source / "checkpoints", run_dir / "checkpoints")
    shutil.copy2(source / "metrics.jsonl", run_dir / "metrics.jsonl")


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of the run's ``metrics.jsonl`` in the order the trainer logged them: its
    evaluations and its training iterations (each caller picks the rows it reads by their
    keys)."""
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def split_success(results: Iterable[Any]) -> dict[str, float]:
    """``{split: success}`` of one evaluation's per-split results (`SplitResult`s)."""
    return {result.split: result.success for result in results}
