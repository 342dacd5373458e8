"""How often the engines' gold paths win when played through creditgym's envs, per task type.

    python benchmarks/engine_experts.py                      # ScienceWorld and TextWorldExpress
    python benchmarks/engine_experts.py --variations 1 --twx-games 10 --split test

ScienceWorld (`creditgym/ScienceWorld-v0`, ``task="all"``): ``--variations`` variations of each
of the 30 task types from the split's fold (seeds ``0 .. 30 * variations - 1``: seed ``n``
plays task type ``n % 30``). TextWorldExpress: ``--twx-games`` games of each of twc,
cookingworld and coin from the split's fold. Each episode is the expert
(``env.unwrapped.expert_action()``: the engine's gold path) from the start, with the env's own
step budget; success is the engine's ``won``. Writes ``results/engine_experts.{json,md}``
stamped with `provenance`. The target is >= 95% of the tasks that have a gold path.
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
from creditgym.envs import info as keys  # noqa: E402

TWX_IDS = ("creditgym/TWX-TWC-v0", "creditgym/TWX-CookingWorld-v0", "creditgym/TWX-Coin-v0")


def play_expert(env, seed: int) -> dict:
    """One episode of the expert from the start: won, score, steps, gold length, seconds."""
    start = time.perf_counter()
    _, info = env.reset(seed=seed)
    steps = 0
    while True:
        _, _, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        steps += 1
        if terminated or truncated:
            break
    return {
        "task_type": info[keys.TASK_TYPE],
        "seed": seed,
        "won": bool(info[keys.WON]),
        "score": float(info["score"]),
        "steps": steps,
        "gold_length": int(info["gold_length"]),
        "seconds": round(time.perf_counter() - start, 2),
    }


def summarise(episodes: list[dict]) -> dict[str, dict]:
    by_type: dict[str, list[dict]] = defaultdict(list)
    for episode in episodes:
        by_type[episode["task_type"]].append(episode)
    return {
        task_type: {
            "episodes": len(eps),
            "won": sum(e["won"] for e in eps),
            "mean_score": sum(e["score"] for e in eps) / len(eps),
            "mean_steps": sum(e["steps"] for e in eps) / len(eps),
        }
        for task_type, eps in sorted(by_type.items())
    }


def table(engine: str, summary: dict[str, dict]) -> str:
    lines = [
        f"### {engine}",
        "",
        "| task type | episodes | won | mean score | mean steps |",
        "|---|---:|---:|---:|---:|",
    ]
    for task_type, row in summary.items():
        lines.append(
            f"| {task_type} | {row['episodes']} | {row['won']} | {row['mean_score']:.1f} | "
            f"{row['mean_steps']:.1f} |"
        )
    episodes = sum(row["episodes"] for row in summary.values())
    won = sum(row["won"] for row in summary.values())
    lines.append(f"| **all** | {episodes} | {won} ({100 * won / max(episodes, 1):.1f}%) | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variations", type=int, default=2, help="per ScienceWorld task type")
    parser.add_argument("--twx-games", type=int, default=20, help="per TextWorldExpress game")
    parser.add_argument("--split", default="test", choices=("train", "dev", "test"))
    parser.add_argument("--skip-scienceworld", action="store_true")
    parser.add_argument("--allow-dirty", action="store_true", help="see provenance.py")
    parser.add_argument("--name", default="engine_experts", help="results file name")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)

    data: dict[str, dict] = {}
    tables = []
    if not args.skip_scienceworld:
        env = creditgym.make("creditgym/ScienceWorld-v0", task="all", split=args.split)
        seeds = range(len(env.unwrapped.tasks) * args.variations)
        episodes = []
        for seed in seeds:
            episodes.append(play_expert(env, seed))
            print(episodes[-1], flush=True)
        env.close()
        data["scienceworld"] = {"episodes": episodes, "summary": summarise(episodes)}
        tables.append(table("ScienceWorld", data["scienceworld"]["summary"]))
    twx_episodes = []
    for env_id in TWX_IDS:
        env = creditgym.make(env_id, split=args.split)
        for seed in range(args.twx_games):
            twx_episodes.append(play_expert(env, seed))
        print(env_id, summarise(twx_episodes[-args.twx_games :]), flush=True)
        env.close()
    data["textworld_express"] = {"episodes": twx_episodes, "summary": summarise(twx_episodes)}
    tables.append(table("TextWorldExpress", data["textworld_express"]["summary"]))
    report = "\n\n".join(tables)
    print(report)
    write_results(args.name, stamp, {"split": args.split, **data}, report)


if __name__ == "__main__":
    main()
