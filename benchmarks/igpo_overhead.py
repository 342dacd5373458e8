"""What IGPO's information-gain scoring adds to a rollout: tiny model, search env, B episodes.

    python benchmarks/igpo_overhead.py [--env creditgym/SearchQAEasy-v0] [--batches 64] [--group-size 8]

A rollout of B episodes (B / group-size questions, each played group-size times, constrained
to admissible actions) is timed, then the `info_gain` shaper on those episodes: one batched
teacher-forced scoring of the answer after every prompt (identical prompts scored once). The
target is an overhead under 30% of the rollout time at B = 64. Each row is timed after a
warm-up rollout.
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from creditgym.agents.factory import load_policy
from creditgym.credit import CreditContext, information_gain
from creditgym.train.rollout import PromptFormat, collect_episodes, group_tasks, make_envs


def measure(env_id: str, batch: int, group_size: int, repeats: int) -> dict[str, float]:
    policy = load_policy("tiny", env_ids=[env_id], constrained=True)
    envs = make_envs(env_id, batch, split="train")
    tasks = group_tasks(list(range(batch // group_size)), group_size, split="train")
    collect_episodes(envs, policy, tasks[:8], prompt_format=PromptFormat())  # warm-up
    rollout = scoring = 0.0
    turns = distinct = 0
    for _ in range(repeats):
        start = time.perf_counter()
        episodes = collect_episodes(envs, policy, tasks, prompt_format=PromptFormat())
        rollout += time.perf_counter() - start
        start = time.perf_counter()
        information_gain(episodes, CreditContext(scorer=policy))
        scoring += time.perf_counter() - start
        turns += sum(len(ep) for ep in episodes)
        distinct += len({turn.prompt for ep in episodes for turn in ep.turns})
    return {
        "turns": turns / repeats,
        "scored": distinct / repeats,
        "rollout": rollout / repeats,
        "scoring": scoring / repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="creditgym/SearchQAEasy-v0")
    parser.add_argument("--batches", default="64")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="rollouts averaged per row")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    table = Table(title=f"IGPO scoring overhead, tiny model, {args.env}, {torch.get_num_threads()} torch threads")
    for column in ("B", "turns", "prompts scored", "rollout s", "info-gain s", "overhead"):
        table.add_column(column, justify="right")
    for batch in [int(b) for b in args.batches.split(",")]:
        row = measure(args.env, batch, args.group_size, args.repeats)
        table.add_row(
            str(batch),
            f"{row['turns']:.0f}",
            f"{row['scored']:.0f}",
            f"{row['rollout']:.2f}",
            f"{row['scoring']:.2f}",
            f"{row['scoring'] / row['rollout']:.0%}",
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
