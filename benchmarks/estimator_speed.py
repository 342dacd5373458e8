"""How long each batch-only advantage estimator takes on one large synthetic batch.

The batch is `credit_overhead.py`'s (128 groups x 8 episodes x 50 turns = 51,200 turns, 0/1
final rewards, anchors from a few states per group) with 8 sampled-token log-probs per turn,
which EMPG reads. Median of several runs, one process, one core:

    python benchmarks/estimator_speed.py
    python benchmarks/estimator_speed.py --repeats 21 --names rloo,empg

Run with every estimator (the default) it writes benchmarks/results/estimator_speed.{md,json},
stamped with the commit, the command and the machine's load (see provenance.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from credit_overhead import median_ms, synthetic_batch  # noqa: E402
from provenance import stamp_or_exit, write_results  # noqa: E402

from creditgym.credit import get_estimator  # noqa: E402
from creditgym.credit.shapers.env import env_rewards  # noqa: E402

BATCH_ONLY = ("grpo", "gigpo", "discounted_group", "rloo", "reinforce_pp", "turn_level", "empg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--names", default=",".join(BATCH_ONLY))
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if hasattr(os, "sched_setaffinity"):  # one core, as the docstring says
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    episodes = synthetic_batch(groups=128, episodes_per_group=8, turns=50, states_per_group=6)
    rng = np.random.default_rng(0)
    for episode in episodes:
        for turn in episode.turns:
            turn.logprobs = (-rng.exponential(0.5, size=8)).tolist()
    rewards = env_rewards(episodes, None)
    n_turns = sum(len(e.turns) for e in episodes)
    print(f"{n_turns:,} turns; median of {args.repeats} runs")
    names = args.names.split(",")
    times = {}
    for name in names:
        estimator = get_estimator(name)
        times[name] = median_ms(lambda fn=estimator: fn(episodes, rewards), args.repeats)
        print(f"{name:18s} {times[name]:8.1f} ms  ({1e3 * times[name] / n_turns:.2f} us per turn)")
    if names == list(BATCH_ONLY):
        table = "| " + " | ".join(names) + " |\n|" + "---|" * len(names) + "\n| "
        table += " | ".join(f"{times[n]:.1f} ms" for n in names) + " |"
        data = {"turns": n_turns, "repeats": args.repeats, "ms": times}
        write_results("estimator_speed", stamp, data, table)


if __name__ == "__main__":
    main()
