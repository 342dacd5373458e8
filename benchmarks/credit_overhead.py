"""How long credit assignment takes per training iteration, and its share of the iteration.

Builds a synthetic batch of 128 groups x 8 episodes x 50 turns (51,200 turns) whose anchors
are drawn from a small set of states per group (so step groups are non-trivial), then times
GRPO, GiGPO and GiGPO's variants on it: median of several runs, one process, one core.

    python benchmarks/credit_overhead.py
    python benchmarks/credit_overhead.py --iteration-seconds 120 --repeats 21

Target: GiGPO under 50 ms. `--iteration-seconds` (default 60 s, a placeholder for a small
CPU iteration until the trainer reports real iteration times) turns the timings into a share
of one training iteration.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from creditgym.credit import compute_advantages, credit_metrics, gigpo_advantages, grpo_advantages
from creditgym.credit.shapers import env_rewards
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
        "--iteration-seconds",
        type=float,
        default=60.0,
        help="wall time of one training iteration to compare against (default 60 s: a placeholder "
        "until the trainer reports real iteration times)",
    )
    args = parser.parse_args()
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
        f"{n_turns:,} turns, {args.states_per_group} anchors per group; median of {args.repeats} runs; "
        f"iteration = {args.iteration_seconds:g} s"
    )
    print(f"{'what':<34} {'ms':>8} {'us/turn':>8} {'% of iteration':>15}")
    for name, fn in cases:
        ms = median_ms(fn, args.repeats)
        share = 100 * ms / 1000 / args.iteration_seconds
        print(f"{name:<34} {ms:8.1f} {1000 * ms / n_turns:8.2f} {share:14.3f}%")


if __name__ == "__main__":
    main()
