"""Rollout throughput of the tiny model: turns/s and generated tokens/s at B parallel envs.

    python benchmarks/rollout_throughput.py [--env creditgym/HouseholdEasy-v0] [--batches 16,64,128]
    python benchmarks/rollout_throughput.py --workers 0,1,2
        [--workers-env creditgym/MiniHackKeyRoom-v0]

For each B, B environments are stepped in lockstep by `collect_episodes` (one batched
`generate` per step), constrained to admissible actions and free-form (the untrained model
then writes up to `--max-new-tokens` tokens of anything, which the parser marks invalid).
Each row is one full rollout of B episodes, timed after a warm-up rollout.

With `--workers`, a second table times constrained rollouts of `--workers-env` with its envs in
this process (0) or in that many Ray actors (`rollout.workers`), at the largest B.

The tables are also written to benchmarks/results/NAME.{md,json} (`--name`, default
rollout_throughput), stamped with the commit, the command and the machine's load (see
provenance.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import markdown_table, stamp_or_exit, write_results  # noqa: E402

from creditgym.rollout.collect import (  # noqa: E402
    PromptFormat,
    RolloutTask,
    collect_episodes,
    make_envs,
)
from creditgym.train.corpus import load_tiny  # noqa: E402


def measure(
    env_id: str, batch: int, constrained: bool, max_new_tokens: int, workers: int = 0
) -> dict[str, float]:
    policy = load_tiny([env_id], constrained=constrained, max_new_tokens=max_new_tokens)
    envs = make_envs(env_id, batch, split="train", workers=workers)
    prompt_format = PromptFormat(require_tags=not constrained)
    tasks = [RolloutTask(seed) for seed in range(batch)]
    collect_episodes(envs, policy, tasks[: min(batch, 8)], prompt_format=prompt_format)  # warm-up
    start = time.perf_counter()
    episodes = collect_episodes(envs, policy, tasks, prompt_format=prompt_format)
    seconds = time.perf_counter() - start
    turns = sum(len(ep) for ep in episodes)
    tokens = sum(len(t.response_ids) for ep in episodes for t in ep.turns)
    for env in envs:
        env.close()
    return {
        "turns/s": turns / seconds,
        "tokens/s": tokens / seconds,
        "turns": turns,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="creditgym/HouseholdEasy-v0")
    parser.add_argument("--batches", default="16,64,128")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="free-form response limit")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0 = torch's default)"
    )
    parser.add_argument(
        "--workers", default="", help="e.g. 0,1,2: Ray env-worker rows (0 = in-process)"
    )
    parser.add_argument("--workers-env", default="creditgym/MiniHackKeyRoom-v0")
    parser.add_argument(
        "--name", default="rollout_throughput", help="the results file: results/NAME.md"
    )
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)
    if args.threads:
        torch.set_num_threads(args.threads)

    data: dict[str, Any] = {
        "env": args.env,
        "max_new_tokens": args.max_new_tokens,
        "torch_threads": torch.get_num_threads(),
        "rows": [],
    }
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        for constrained in (True, False):
            row = measure(args.env, batch, constrained, args.max_new_tokens)
            decoding = "constrained" if constrained else "free-form"
            data["rows"].append({"B": batch, "decoding": decoding, **row})
            rows.append(
                (
                    batch,
                    decoding,
                    row["turns"],
                    f"{row['seconds']:.1f}",
                    f"{row['turns/s']:.0f}",
                    f"{row['tokens/s']:.0f}",
                )
            )
    columns = ("B", "decoding", "turns", "seconds", "turns/s", "tokens/s")
    text = (
        f"rollout throughput, tiny model, {args.env}, {torch.get_num_threads()} torch threads, "
        f"free-form responses up to {args.max_new_tokens} tokens\n\n"
        + markdown_table(columns, rows, align="rlrrrr")
    )
    print(text)
    if args.workers:
        workers_text, data["workers"] = worker_rows(
            args, max(int(b) for b in args.batches.split(","))
        )
        print(f"\n{workers_text}")
        text += f"\n\n{workers_text}"
    write_results(args.name, stamp, data, text)


def worker_rows(args: argparse.Namespace, batch: int) -> tuple[str, dict[str, Any]]:
    """The env-workers table (markdown) and its data: constrained rollouts of
    ``--workers-env`` at `batch`, in-process and in each ``--workers`` count of Ray actors."""
    from creditgym.rollout.workers import connect

    connect()
    data: dict[str, Any] = {"env": args.workers_env, "B": batch, "rows": []}
    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        row = measure(args.workers_env, batch, True, args.max_new_tokens, workers=workers)
        data["rows"].append({"workers": workers, **row})
        label = "in-process" if workers == 0 else str(workers)
        rows.append((label, row["turns"], f"{row['seconds']:.1f}", f"{row['turns/s']:.0f}"))
    title = f"env workers, tiny model, {args.workers_env}, B={batch}, constrained"
    table = markdown_table(("workers", "turns", "seconds", "turns/s"), rows, align="rrrr")
    return f"{title}\n\n{table}", data


if __name__ == "__main__":
    main()
