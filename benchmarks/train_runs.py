"""How the estimator and learning benchmarks train a run: the methods (an estimator and the
overrides it needs), a `creditgym train` process pinned to one thread, and the summary read
from its metrics.

This module is part of the training code (`run_store.TRAINING_CODE`): a change here changes
the key of every run the benchmarks store (`learning.py`, `credit_curves.py`,
`smollm2_results.py`, `train_table.py`), so they train anew; the tables and reports built from
the runs live elsewhere (`estimators.py`, `learning_report.py`, ...) and can change without
retraining anything.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from run_store import read_metrics

__all__ = ["METHODS", "Method", "summarise_run", "train_process"]

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Method:
    """One estimator as the trainer runs it, and how credit-report names it."""

    estimator: str  # its registered name (credit.estimator.name)
    overrides: tuple[str, ...] = ()  # what else the method needs (branch rollouts)

    @property
    def branches(self) -> bool:
        return any(o.startswith("rollout.branch.mode=") for o in self.overrides)


METHODS: dict[str, Method] = {
    "grpo": Method("grpo"),
    "gigpo": Method("gigpo"),
    "discounted_group": Method("discounted_group"),
    "ppo": Method("ppo"),
    "rloo": Method("rloo"),
    "reinforce_pp": Method("reinforce_pp"),
    "turn_level": Method("turn_level"),
    "empg": Method("empg"),
    "tree": Method("tree", ("rollout.branch.mode=tree",)),
    # VinePPO's K=4 continuations from every turn's state cost ~30 env steps per sampled one
    # (31,514 steps for one 8x8 HouseholdEasy batch): one group of 4 episodes per iteration
    # keeps an iteration (~2,000 steps) inside the step budget
    "vine": Method(
        "vine", ("rollout.branch.mode=vine", "rollout.groups=1", "rollout.group_size=4")
    ),
}


def train_process(
    config_overrides: list[str],
    output_dir: Path,
    log: Path,
    *,
    config: str = "configs/quickstart_rl.yaml",
    fresh: bool = True,
    core: int | None = None,
) -> tuple[int, float, float, str]:
    """`creditgym train CONFIG` in a new process with one thread; (exit code, wall seconds, CPU
    seconds, output tail). CPU time is the fairer cost on a shared machine: wall time counts
    the other processes' turns too. `fresh` wipes `output_dir` first (else the trainer resumes
    from its newest checkpoint there); `core` pins the process to that CPU (taskset)."""
    if fresh and output_dir.exists():
        shutil.rmtree(output_dir)  # a fresh run, never a resume of an older one
    train_command = [sys.executable, "-m", "creditgym", "train", config, *config_overrides]
    pinned = ["taskset", "-c", str(core)] if core is not None and shutil.which("taskset") else []
    command = pinned + train_command
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("a" if not fresh else "w") as out:
        out.write(shlex.join([*pinned, "creditgym", *train_command[3:]]) + "\n")
        out.flush()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own CPU time
    tail = log.read_text().strip().splitlines()[-3:]
    cpu = usage.ru_utime + usage.ru_stime
    return os.waitstatus_to_exitcode(status), time.perf_counter() - started, cpu, " / ".join(tail)


def summarise_run(run_dir: Path) -> dict:
    """A finished run's iterations, budget spent, held-out success before and after training (the
    last two evaluations), training-success curve and training seconds, from its metrics."""
    rows = read_metrics(run_dir)
    train_rows = [r for r in rows if "rollout/success" in r]
    evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
    splits = sorted({k.split("/")[1] for r in evals for k in r if k.startswith("eval/")})

    def success(row: dict) -> dict[str, float]:
        return {s: row[f"eval/{s}/success"] for s in splits}

    last = train_rows[-1]
    return {
        "iterations": last["iteration"],
        "env_steps": last["env_steps"],
        "policy_tokens": last["policy_tokens"],
        "initial": success(evals[-2]) if len(evals) >= 2 else {},
        "final": success(evals[-1]),
        "rollout_success_last": last["rollout/success"],
        "curve": {
            "env_steps": [r["env_steps"] for r in train_rows],
            "policy_tokens": [r["policy_tokens"] for r in train_rows],
            "rollout_success": [r["rollout/success"] for r in train_rows],
        },
        "train_seconds": sum(v for r in train_rows for k, v in r.items() if k.startswith("time/")),
    }
