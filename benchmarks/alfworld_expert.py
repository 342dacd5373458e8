"""ALFWorld's handcoded expert on ALFWorld games, per split and task type: how often it wins.

Plays ``env.unwrapped.expert_action()`` for up to 50 steps (``--max-steps``; the expert's own
budget in ALFWorld is 200) on the first ``--per-type`` games
of every task type of each split, and writes benchmarks/results/alfworld_expert[_official].
{md,json}, stamped with the commit and command (see provenance.py):

    python benchmarks/alfworld_expert.py                   # generated games (no download)
    python benchmarks/alfworld_expert.py --per-type 3      # a quick look
    python benchmarks/alfworld_expert.py --official        # ALFWorld's own games ($ALFWORLD_DATA)

Every generated game has a gold path by construction (the goal's object, receptacle and tool
are in the room), so the rate is the expert's success on games with a gold path.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import stamp_or_exit, write_results  # noqa: E402

import creditgym  # noqa: E402
from creditgym.envs.alfworld.offline import TASK_TYPES  # noqa: E402


def play(env, seed: int) -> tuple[bool, int, bool]:
    """(won, steps, expert gave up) of the expert on game `seed`."""
    env.reset(seed=seed)
    steps, done, info = 0, False, {}
    while not done:
        _, _, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        steps += 1
        done = terminated or truncated
    return bool(info["won"]), steps, bool(info["expert_failed"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-type", type=int, default=10, help="games per task type and split")
    parser.add_argument("--splits", default="valid_seen,valid_unseen", help="comma-separated")
    parser.add_argument("--max-steps", type=int, default=50, help="step budget (the papers': 50)")
    parser.add_argument("--official", action="store_true", help="ALFWorld's downloaded games")
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)
    env_id = "creditgym/ALFWorld-v0" if args.official else "creditgym/ALFWorldOffline-v0"
    rows, data = [], defaultdict(dict)
    started = time.perf_counter()
    for split in args.splits.split(","):
        for task_type in TASK_TYPES:
            env = creditgym.make(
                env_id, split=split, task_types=[task_type], max_steps=args.max_steps
            )
            games = min(args.per_type, env.unwrapped.game_count)
            results = [play(env, seed) for seed in range(games)]
            env.close()
            wins = sum(won for won, _, _ in results)
            won_steps = [steps for won, steps, _ in results if won]
            mean_steps = sum(won_steps) / max(1, len(won_steps))
            gave_up = sum(failed for _, _, failed in results)
            data[split][task_type] = {
                "games": games,
                "won": wins,
                "mean_steps_when_won": round(mean_steps, 1),
                "expert_gave_up": gave_up,
            }
            rows.append(
                f"| {split} | {task_type} | {games} | {wins} ({100 * wins / max(1, games):.0f}%) "
                f"| {mean_steps:.1f} | {gave_up} |"
            )
            print(rows[-1], flush=True)
    total = sum(r["games"] for s in data.values() for r in s.values())
    won = sum(r["won"] for s in data.values() for r in s.values())
    minutes = (time.perf_counter() - started) / 60
    table = "\n".join(
        [
            f"{env_id}, ALFWorld's handcoded expert, {args.max_steps} steps",
            "",
            "| split | task type | games | won | mean steps (won) | expert gave up |",
            "|---|---|---|---|---|---|",
            *rows,
            f"| all | all | {total} | {won} ({100 * won / max(1, total):.1f}%) | | |",
            "",
            f"wall time {minutes:.1f} min",
        ]
    )
    name = "alfworld_expert_official" if args.official else "alfworld_expert"
    name += "" if args.max_steps == 50 else f"_{args.max_steps}steps"
    summary = {"env": env_id, "per_split": data, "won": won, "games": total}
    write_results(name, stamp, summary, table)
    print(f"all: {won}/{total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
