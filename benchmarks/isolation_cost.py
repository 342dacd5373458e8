"""The cost of isolated env workers on a quickstart iteration: in-process vs isolated.

Each repetition sets up the quickstart run (configs/quickstart.yaml without its supervised warm
start, which never touches the training envs) once per mode, in turn, so a load that drifts
hits both modes alike, and runs two training iterations of it, timing the trainer's own phases
(rollout, credit, update). The first iteration includes the workers' start (the collector
waits for each worker's env at its first reset); the second is the steady state. Isolated
runs also sum the workers' memory (proportional set size). Writes
benchmarks/results/isolation_cost.{md,json}, stamped with the commit, the command and the
machine's load (see provenance.py):

    python benchmarks/isolation_cost.py                        # 5 repetitions
    python benchmarks/isolation_cost.py --repetitions 3 rollout.groups=8   # any config override
    python benchmarks/isolation_cost.py --dry-run --repetitions 1 ...      # print, write nothing

Run it on an idle machine: timings taken while other jobs run measure the other jobs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import ROOT, stamp_or_exit, write_results  # noqa: E402

CONFIG = ROOT / "configs" / "quickstart.yaml"
MODES = ("none", "process")
ITERATIONS = 2


def run_once(mode: str, overrides: list[str]) -> dict[str, Any]:
    """One set-up and `ITERATIONS` iterations of the quickstart in `mode`; its timings."""
    from creditgym.config import load_config
    from creditgym.train.trainer import assign, collect, setup, update

    with tempfile.TemporaryDirectory(prefix="isolation_cost_") as out:
        config = load_config(
            CONFIG,
            [
                "train.sft_warmup.episodes=0",
                "run.progress=false",
                "run.tensorboard=false",
                "run.log_episodes=0",
                *overrides,
                f"rollout.isolation={mode}",
                f"run.output_dir={out}",
            ],
        )
        started = time.perf_counter()
        run = setup(config)
        timings: dict[str, Any] = {"setup_s": time.perf_counter() - started, "iterations": []}
        try:
            for iteration in range(1, ITERATIONS + 1):
                phases = {}
                started = time.perf_counter()
                episodes = collect(run, iteration)
                phases["rollout_s"] = time.perf_counter() - started
                started = time.perf_counter()
                assigned = assign(run, episodes)
                phases["credit_s"] = time.perf_counter() - started
                started = time.perf_counter()
                update(run, episodes, assigned.advantages, assigned.token_advantages)
                phases["update_s"] = time.perf_counter() - started
                run.state.iteration = iteration
                phases["env_steps"] = sum(len(episode.turns) for episode in episodes)
                phases["failed"] = sum(episode.failed for episode in episodes)
                timings["iterations"].append(phases)
            timings["worker_rss_mib"] = _worker_memory(run.train_envs)
        finally:
            for env in run.train_envs:
                env.close()
    return timings


def _worker_memory(envs: list[Any]) -> float | None:
    """The env workers' memory in MiB (None in-process): summed proportional set sizes (PSS),
    which split the pages workers share with the fork server instead of counting them in every
    worker, as summed resident sizes would."""
    pids = [env.pid for env in envs if getattr(env, "pid", None)]
    if not pids:
        return None
    total = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            return None  # no /proc (macOS): not reported
        total += next(
            int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")
        )
    return total / 1024


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} [{min(values):.2f}–{max(values):.2f}]"


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """The Markdown table: medians [min–max] over the repetitions, per mode."""
    lines = [
        "| envs | iteration 2 (s) | its rollout (s) | env steps/s | iteration 1 (s) | "
        "set-up (s) | worker memory, PSS (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    medians = {}
    for mode, runs in results.items():
        warm = [r["iterations"][-1] for r in runs]
        total = [p["rollout_s"] + p["credit_s"] + p["update_s"] for p in warm]
        cold = [
            sum(r["iterations"][0][k] for k in ("rollout_s", "credit_s", "update_s")) for r in runs
        ]
        rate = [p["env_steps"] / p["rollout_s"] for p in warm]
        memory = [r["worker_rss_mib"] for r in runs if r["worker_rss_mib"] is not None]
        medians[mode] = statistics.median(total)
        name = "in-process" if mode == "none" else "isolated (1 process per env)"
        lines.append(
            f"| {name} | {_spread(total)} | {_spread([p['rollout_s'] for p in warm])} | "
            f"{_spread(rate)} | {_spread(cold)} | {_spread([r['setup_s'] for r in runs])} | "
            f"{_spread(memory) if memory else '–'} |"
        )
    if set(MODES) <= set(medians):
        extra = medians["process"] / medians["none"] - 1
        lines.append(f"\nisolation costs {extra:+.1%} of a steady-state iteration (medians).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="config overrides, as `creditgym train`")
    parser.add_argument("--repetitions", type=int, default=5, help="runs per mode")
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    parser.add_argument("--dry-run", action="store_true", help="print the table, write nothing")
    args = parser.parse_args(argv)
    if args.repetitions < 1:
        parser.error("--repetitions must be at least 1")
    stamp = stamp_or_exit(
        args.allow_dirty or args.dry_run, [__file__, *(sys.argv[1:] if argv is None else argv)]
    )
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for repetition in range(args.repetitions):
        for mode in MODES:
            results[mode].append(run_once(mode, args.overrides))
            print(f"repetition {repetition + 1}/{args.repetitions}: {mode} done", file=sys.stderr)
    shown = table(results)
    print(shown)
    if not args.dry_run:
        write_results("isolation_cost", stamp, results, shown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
