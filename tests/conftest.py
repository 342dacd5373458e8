"""Shared test set-up and helpers (import them as `from conftest import ...`).

- one on-disk cache for built artefacts (tiny models, catalogs, indexes);
- `TINY`: config overrides for a tiny, quiet training run;
- `episode(...)`: hand-made episodes for credit tests;
- `training_rows(run_dir)`: a run's per-iteration training metrics, timings left out.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Hashable, Sequence
from pathlib import Path

import pytest
import torch

from creditgym.config import Config, load_config
from creditgym.trajectory import Episode, Turn

# Built artefacts are keyed by their parameters, so a cache shared by every test (and kept
# between runs) is safe and makes the suite fast; it lives in the repository, git-ignored.
os.environ.setdefault(
    "CREDITGYM_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "tests")
)

# Overrides that make `train()` fast and quiet: a 1-layer, 32-wide tiny model, no progress bar.
TINY = [
    "policy.tiny.hidden_size=32",
    "policy.tiny.num_layers=1",
    "policy.tiny.num_heads=2",
    "policy.tiny.vocab_size=512",
    "run.progress=false",
    "run.tensorboard=false",
]


def household_config(tmp_path: Path, name: str, *overrides: str) -> Config:
    """A fast training config: the tiny model on small HouseholdEasy groups, under tmp_path/name."""
    base = [
        "env.id=creditgym/HouseholdEasy-v0",
        "env.kwargs={max_steps: 6}",
        "rollout.groups=2",
        "rollout.group_size=3",
        "eval.episodes=4",
        "eval.every=0",
        "run.save_every=2",
        f"run.output_dir={tmp_path / name}",
    ]
    return load_config(None, TINY + base + list(overrides))


@pytest.fixture
def one_thread():
    """One torch thread for the test: small matrices gain nothing from threads on a shared
    machine, and results then do not depend on the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Under CI=true a test may skip only for what the README calls optional; any other skip (a
# missing package, browser or model wheel that .ci/run installs) fails, so nothing goes
# untested without a word. The reasons allowed, as patterns of the skip message:
OPTIONAL_IN_CI = {
    "CUDA": r"\bCUDA\b|\bGPU\b|CPU machine",
    "wandb": r"\bwandb\b",
    "trackio": r"\btrackio\b",
    "a TextWorld game file": r"TextWorld game file|\.ulx|\.z8|needs game_files?",
    "ALFWorld's official game data": r"game data not downloaded",
    # tests that re-run themselves in a subprocess skip their own outer or inner half
    "the other half of a self-re-running test": r"already unprivileged|already the inner run",
}


# The sandbox tests re-run themselves as weaker trainers (root without capabilities, nobody),
# where a layer that needs root is refused by design: there, and only there, it may skip.
SANDBOX_INNER_RUNS = ("CREDITGYM_SANDBOX_INNER_RUN", "CREDITGYM_SECCOMP_INNER_RUN")
REFUSED_FOR_THIS_TRAINER = r"does not allow the layers"


def skip_allowed_in_ci(reason: str) -> bool:
    """Whether a skip with this message names something the README calls optional."""
    inner = any(os.environ.get(name) for name in SANDBOX_INNER_RUNS)
    if inner and re.search(REFUSED_FOR_THIS_TRAINER, reason):
        return True
    return any(re.search(pattern, reason) for pattern in OPTIONAL_IN_CI.values())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if not skip_allowed_in_ci(reason):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI=true: {reason}\nOnly {', '.join(OPTIONAL_IN_CI)} may be "
            "missing in CI; install what this test needs in .ci/run (or pyproject's [dev])."
        )


_fresh = itertools.count()


def episode(
    rewards: Sequence[float],
    anchors: Sequence[Hashable] | None = None,
    group: Hashable = 0,
    valid: Sequence[bool] | None = None,
    failed: bool = False,
) -> Episode:
    """An episode with these turn rewards, anchors (default: never repeated) and valid flags."""
    anchors = list(anchors) if anchors is not None else [f"fresh-{next(_fresh)}" for _ in rewards]
    valid = list(valid) if valid is not None else [True] * len(rewards)
    assert len(anchors) == len(rewards) == len(valid)
    turns = [
        Turn(
            observation=f"obs {t}",
            action=f"act {t}",
            reward=float(r),
            info={"anchor": a},
            valid=bool(v),
        )
        for t, (r, a, v) in enumerate(zip(rewards, anchors, valid))
    ]
    return Episode(turns=turns, group_id=group, failed=failed)


def training_rows(run_dir: Path) -> list[dict]:
    """The training rows of a run's metrics.jsonl without wall times, for exact comparisons."""
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [
        {key: value for key, value in row.items() if not key.startswith("time/")}
        for row in map(json.loads, lines)
        if "rollout/success" in row
    ]
