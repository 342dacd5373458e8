"""Rollout throughput of the tiny model: turns/s and generated tokens/s at B parallel envs.

    python benchmarks/rollout_throughput.py [--env creditgym/HouseholdEasy-v0] [--batches 16,64,128]

For each B, B environments are stepped in lockstep by `collect_episodes` (one batched
`generate` per step), constrained to admissible actions and free-form (the untrained model
then writes up to `--max-new-tokens` tokens of anything, which the parser marks invalid).
Each row is one full rollout of B episodes, timed after a warm-up rollout.
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from creditgym.agents.factory import load_policy
from creditgym.train.rollout import PromptFormat, Task, collect_episodes, make_envs


def measure(env_id: str, batch: int, constrained: bool, max_new_tokens: int) -> dict[str, float]:
    policy = load_policy("tiny", env_ids=[env_id], constrained=constrained, max_new_tokens=max_new_tokens)
    envs = make_envs(env_id, batch, split="train")
    prompt_format = PromptFormat(require_tags=not constrained)
    tasks = [Task(seed) for seed in range(batch)]
    collect_episodes(envs, policy, tasks[: min(batch, 8)], prompt_format=prompt_format)  # warm-up
    start = time.perf_counter()
    episodes = collect_episodes(envs, policy, tasks, prompt_format=prompt_format)
    seconds = time.perf_counter() - start
    turns = sum(len(ep) for ep in episodes)
    tokens = sum(len(t.response_ids) for ep in episodes for t in ep.turns)
    return {"turns/s": turns / seconds, "tokens/s": tokens / seconds, "turns": turns, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="creditgym/HouseholdEasy-v0")
    parser.add_argument("--batches", default="16,64,128")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="free-form response limit")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    table = Table(title=f"rollout throughput, tiny model, {args.env}, {torch.get_num_threads()} torch threads")
    for column in ("B", "decoding", "turns", "seconds", "turns/s", "tokens/s"):
        table.add_column(column, justify="right")
    for batch in [int(b) for b in args.batches.split(",")]:
        for constrained in (True, False):
            row = measure(args.env, batch, constrained, args.max_new_tokens)
            table.add_row(
                str(batch),
                "constrained" if constrained else "free-form",
                str(row["turns"]),
                f"{row['seconds']:.1f}",
                f"{row['turns/s']:.0f}",
                f"{row['tokens/s']:.0f}",
            )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
