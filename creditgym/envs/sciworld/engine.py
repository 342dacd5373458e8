"""Starting ScienceWorld's engine, its task names and its train/dev/test variation folds.

The engine is the ``scienceworld`` package's `ScienceWorldEnv`: a py4j client of the Scala
simulator in the jar it ships, started in its own JVM (2-3 s). Engines are pooled per process
(`creditgym.envs.java_engines`). Task names come from the package's ``tasks.json`` without a
JVM; the folds of each task come from the engine (``get_variations_train/dev/test``) and its
gold paths from the engine's own generator (``generateGoldPath``). Both are cached on disk:
asking for folds costs a task load (about a second), generating a gold path several seconds.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from creditgym.cache import cache_root
from creditgym.envs import java_engines
from creditgym.envs.optional import require, require_java

__all__ = [
    "ENGINE_KIND",
    "SPLITS",
    "load_task",
    "start_engine",
    "task_names",
    "variation_folds",
]

ENGINE_KIND = "scienceworld"
#: creditgym's split names and the engine's fold of each.
SPLITS = {"train": "train", "dev": "dev", "test": "test"}


def _package() -> Any:
    return require("scienceworld", "scienceworld")


def task_names() -> list[str]:
    """The engine's 30 task names (``boil``, ``find-animal``, ...), in its own order."""
    _package()
    from scienceworld.constants import ID2TASK
    from scienceworld.utils import infer_task

    return [infer_task(name) for name in ID2TASK.values()]


def start_engine() -> Any:
    """A ScienceWorld engine from the pool, or a new one (needs Java)."""
    package = _package()
    require_java("ScienceWorld", "scienceworld")

    def start() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return package.ScienceWorldEnv("", envStepLimit=10**9)  # creditgym counts steps

    return java_engines.acquire(ENGINE_KIND, start)


def _cache_folder(cache_dir: str | os.PathLike | None) -> Path:
    version = getattr(_package(), "__version__", "unknown")
    return cache_root(cache_dir) / "scienceworld" / str(version)


def _write_json(path: Path, payload: Any) -> None:
    """Write `payload` to `path` atomically; a read-only cache only costs the next process."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(json.dumps(payload, sort_keys=True))
        os.replace(scratch, path)
    except OSError:
        pass


def load_task(
    engine: Any,
    task: str,
    variation: int,
    simplifications: str,
    cache_dir: str | os.PathLike | None = None,
) -> list[str]:
    """Load `task`'s `variation` into `engine`; returns the engine's gold action sequence,
    generated on the first load of this (task, variation, simplifications) and cached."""
    key = f"{task}-{variation}-{simplifications or 'none'}".replace(",", "+")
    path = _cache_folder(cache_dir) / "gold" / f"{key}.json"
    try:
        gold = json.loads(path.read_text())
    except (OSError, ValueError):
        gold = None
    if isinstance(gold, list) and gold and all(isinstance(a, str) for a in gold):
        engine.load(task, variation, simplifications, generateGoldPath=False)
        return gold
    engine.load(task, variation, simplifications, generateGoldPath=True)
    gold = [str(action) for action in engine.get_gold_action_sequence()]
    _write_json(path, gold)
    return gold


def variation_folds(
    engine: Any, task: str, cache_dir: str | os.PathLike | None = None
) -> dict[str, list[int]]:
    """``{"train": [...], "dev": [...], "test": [...]}``: the engine's variation indices of
    `task` in each fold, read once per scienceworld version and cached on disk."""
    path = _cache_folder(cache_dir) / "folds.json"
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    folds = cached.get(task) if isinstance(cached, dict) else None
    if _valid_folds(folds):
        return folds
    engine.load(task, 0, "", generateGoldPath=False)
    folds = {
        "train": [int(v) for v in engine.get_variations_train()],
        "dev": [int(v) for v in engine.get_variations_dev()],
        "test": [int(v) for v in engine.get_variations_test()],
    }
    cached = cached if isinstance(cached, dict) else {}
    cached[task] = folds
    _write_json(path, cached)
    return folds


def _valid_folds(folds: Any) -> bool:
    return (
        isinstance(folds, dict)
        and all(isinstance(folds.get(name), list) and folds[name] for name in SPLITS.values())
        and all(isinstance(v, int) for name in SPLITS.values() for v in folds[name])
    )
