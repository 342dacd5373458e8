"""How long each batch-only advantage estimator takes on one large synthetic batch.

The batch is `credit_overhead.py`'s (128 groups x 8 episodes x 50 turns = 51,200 turns, 0/1
final rewards, anchors from a few states per group) with 8 sampled-token log-probs per turn,
which EMPG reads. Median of several runs, one process, one core:

    python benchmarks/estimator_speed.py
    python benchmarks/estimator_speed.py --repeats 21 --names rloo,empg
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from credit_overhead import median_ms, synthetic_batch  # noqa: E402

from creditgym.credit import get_estimator  # noqa: E402
from creditgym.credit.shapers.env import env_rewards  # noqa: E402

BATCH_ONLY = ("grpo", "gigpo", "discounted_group", "rloo", "reinforce_pp", "turn_level", "empg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--names", default=",".join(BATCH_ONLY))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    episodes = synthetic_batch(groups=128, episodes_per_group=8, turns=50, states_per_group=6)
    rng = np.random.default_rng(0)
    for episode in episodes:
        for turn in episode.turns:
            turn.logprobs = (-rng.exponential(0.5, size=8)).tolist()
    rewards = env_rewards(episodes, None)
    n_turns = sum(len(e.turns) for e in episodes)
    print(f"{n_turns:,} turns; median of {args.repeats} runs")
    for name in args.names.split(","):
        estimator = get_estimator(name)
        ms = median_ms(lambda fn=estimator: fn(episodes, rewards), args.repeats)
        print(f"{name:18s} {ms:8.1f} ms  ({1e3 * ms / n_turns:.2f} us per turn)")


if __name__ == "__main__":
    main()
