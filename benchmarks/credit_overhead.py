"""How long credit assignment takes per training iteration, and its share of the iteration.

Builds a synthetic batch of 128 groups x 8 episodes x 50 turns (51,200 turns) whose anchors
are drawn from a small set of states per group (so step groups are non-trivial), then times
GRPO, GiGPO and GiGPO's variants on it: median of several runs, one process, one core.

    python benchmarks/credit_overhead.py
    python benchmarks/credit_overhead.py --metrics runs/quickstart/metrics.jsonl --repeats 21

Target: GiGPO under 50 ms. The share of an iteration compares per-turn costs: the credit time
per turn here against the wall time per env step of real training iterations, read from a
run's `metrics.jsonl` (`--metrics`; without one, one quickstart iteration is trained in a
temporary directory and measured). Writes benchmarks/results/credit_overhead.{md,json},
stamped with the commit, the command and the machine's load (see provenance.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from creditgym.credit import compute_advantages, credit_metrics, gigpo_advantages, grpo_advantages
from creditgym.credit.shapers.env import env_rewards
from creditgym.trajectory import Episode, Turn


def synthetic_batch(
    groups: int, episodes_per_group: int, turns: int, states_per_group: int, seed: int = 0
) -> list[Episode]:
    """Episodes with 0/1 final rewards, ~10% invalid turns and anchors from a few states."""
    rng = np.random.default_rng(seed)
    batch = []
    for group in range(groups):
        for index in range(episodes_per_group):
            states = rng.integers(0, states_per_group, size=turns)
            valid = rng.random(turns) > 0.1
            success = bool(rng.random() < 0.5)
            batch.append(
                Episode(
                    turns=[
                        Turn(
                            observation="",
                            action="",
                            reward=float(success and t == turns - 1),
                            info={"anchor": f"room{states[t]}|task{group}"},
                            valid=bool(valid[t]),
                        )
                        for t in range(turns)
                    ],
                    group_id=group,
                    task_id=f"{group}/{index}",
                    success=success,
                )
            )
    return batch


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def iteration_seconds_per_turn(metrics: Path) -> tuple[float, int]:
    """Median wall time per env step of the training iterations in a run's metrics file."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if "time/rollout" in row]
    if not rows:
        raise SystemExit(f"{metrics} has no training iterations (no time/rollout rows)")
    per_turn, previous_steps = [], 0
    for row in rows:
        seconds = row["time/rollout"] + row["time/credit"] + row["time/update"]
        steps = row["env_steps"] - previous_steps
        previous_steps = row["env_steps"]
        if steps > 0:
            per_turn.append(seconds / steps)
    return statistics.median(per_turn), len(per_turn)


def measure_one_iteration() -> Path:
    """Train one quickstart iteration in a temporary directory; return its metrics file."""
    from creditgym.config import load_config
    from creditgym.train.trainer import train

    out = Path(tempfile.mkdtemp(prefix="credit_overhead_"))
    quickstart = Path(__file__).resolve().parents[1] / "configs" / "quickstart_rl.yaml"
    overrides = ["train.iterations=1", "eval.every=0", "eval.episodes=2", "run.progress=false"]
    train(load_config(quickstart, [*overrides, f"run.output_dir={out}"]))
    return out / "metrics.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=128)
    parser.add_argument("--episodes-per-group", type=int, default=8)
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument(
        "--states-per-group", type=int, default=12, help="distinct anchors per group"
    )
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument(
        "--metrics",
        type=Path,
        default=None,
        help="a training run's metrics.jsonl to compare against (default: train and measure one "
        "quickstart iteration)",
    )
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    from provenance import stamp_or_exit, write_results

    stamp = stamp_or_exit(args.allow_dirty)
    metrics = args.metrics or measure_one_iteration()
    seconds_per_turn, iterations = iteration_seconds_per_turn(metrics)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(
            0, {sorted(os.sched_getaffinity(0))[0]}
        )  # one core, as the target says

    episodes = synthetic_batch(
        args.groups, args.episodes_per_group, args.turns, args.states_per_group
    )
    rewards = env_rewards(episodes, None)
    n_turns = sum(len(e.turns) for e in episodes)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("env shaper (read rewards)", lambda: env_rewards(episodes, None)),
        ("grpo_advantages", lambda: grpo_advantages(episodes, rewards)),
        ("gigpo_advantages", lambda: gigpo_advantages(episodes, rewards)),
        ("gigpo, mean_std", lambda: gigpo_advantages(episodes, rewards, normalization="mean_std")),
        (
            "gigpo, episode_stats=turns",
            lambda: gigpo_advantages(episodes, rewards, episode_stats="turns"),
        ),
        ("gigpo, similarity=True", lambda: gigpo_advantages(episodes, rewards, similarity=True)),
        ("compute_advantages(env, gigpo)", lambda: compute_advantages(episodes, ["env"], "gigpo")),
        ("credit_metrics", lambda: credit_metrics(episodes, rewards)),
    ]
    print(
        f"batch: {args.groups} groups x {args.episodes_per_group} episodes x {args.turns} turns = "
        f"{n_turns:,} turns, {args.states_per_group} anchors per group; median of {args.repeats} "
        f"runs\ntraining: {1e6 * seconds_per_turn:.0f} us per env step (median of {iterations} "
        f"iterations in {metrics})"
    )
    print(f"{'what':<34} {'ms':>8} {'us/turn':>8} {'% of iteration':>15}")
    rows = ["| what | ms | us / turn | share of an iteration |", "|---|---:|---:|---:|"]
    data = {"turns": n_turns, "us_per_env_step": 1e6 * seconds_per_turn, "ms": {}}
    for name, fn in cases:
        ms = median_ms(fn, args.repeats)
        share = 100 * (ms / 1000 / n_turns) / seconds_per_turn
        print(f"{name:<34} {ms:8.1f} {1000 * ms / n_turns:8.2f} {share:14.3f}%")
        rows.append(f"| {name} | {ms:.1f} | {1000 * ms / n_turns:.2f} | {share:.3f}% |")
        data["ms"][name] = ms
    write_results("credit_overhead", stamp, data, "\n".join(rows))


if __name__ == "__main__":
    main()
