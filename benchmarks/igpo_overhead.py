"""What IGPO's information-gain scoring adds to a rollout: tiny model, search env, B episodes.

    python benchmarks/igpo_overhead.py [--env creditgym/SearchQAEasy-v0] [--batches 64]
        [--group-size 8]

A rollout of B episodes (B / group-size questions, each played group-size times, constrained
to admissible actions) is timed three ways from the same sampler seed (so the episodes are
identical): plain; with the answer scored from each prompt's KV cache while sampling (what the
trainer does, `collect_episodes(answer_prefix=...)`) plus the `info_gain` shaper; and plain plus
the shaper scoring every distinct prompt in a second, batched prefill (the fallback for
policies without a KV cache). The target is an overhead under 30% of the rollout time at
B = 64. Each row is timed after a warm-up rollout. A second table gives the untrained policy's
information gains themselves (mean, mean size, share below zero). The table is also written to
benchmarks/results/igpo_overhead.{md,json}, stamped with the commit, the command and the
machine's load (see provenance.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import markdown_table, stamp_or_exit, write_results  # noqa: E402

from creditgym.credit import CreditContext, information_gain  # noqa: E402
from creditgym.rollout.collect import (  # noqa: E402
    PromptFormat,
    collect_episodes,
    group_tasks,
    make_envs,
)
from creditgym.train.corpus import load_tiny  # noqa: E402


def measure(env_id: str, batch: int, group_size: int, repeats: int) -> dict[str, float]:
    policy = load_tiny([env_id], constrained=True)
    envs = make_envs(env_id, batch, split="train")
    tasks = group_tasks(list(range(batch // group_size)), group_size, split="train")
    collect_episodes(
        envs, policy, tasks[:8], prompt_format=PromptFormat(), answer_prefix="answer["
    )  # warm-up
    context = CreditContext(scorer=policy)
    totals = {"rollout": 0.0, "kv_cache": 0.0, "prefill": 0.0, "turns": 0.0, "scored": 0.0}
    gains: list[float] = []  # every turn's gain but each episode's last (that one is 0)

    def timed(answer_prefix: str | None, seed: int) -> tuple[float, list]:
        policy.generator.manual_seed(seed)
        start = time.perf_counter()
        episodes = collect_episodes(
            envs, policy, tasks, prompt_format=PromptFormat(), answer_prefix=answer_prefix
        )
        if answer_prefix:
            gains.extend(g for r in information_gain(episodes, context) for g in r[:-1])
        return time.perf_counter() - start, episodes

    for repeat in range(repeats):
        plain, episodes = timed(None, repeat)
        with_cache, _ = timed("answer[", repeat)
        start = time.perf_counter()
        information_gain(
            episodes, context
        )  # no rollout scores: a second prefill per distinct prompt
        totals["rollout"] += plain
        totals["kv_cache"] += with_cache - plain
        totals["prefill"] += time.perf_counter() - start
        totals["turns"] += sum(len(ep) for ep in episodes)
        totals["scored"] += len({turn.prompt for ep in episodes for turn in ep.turns})
    return {key: value / repeats for key, value in totals.items()} | gain_stats(gains)


def gain_stats(gains: list[float]) -> dict[str, float]:
    """What the untrained policy's information gains look like: their count, mean, mean size
    and the share below zero (the README's reading of why IGPO collapsed episodes)."""
    values = np.asarray(gains, dtype=float)
    if values.size == 0:
        return {"gains": 0, "gain_mean": 0.0, "gain_abs_mean": 0.0, "gain_negative": 0.0}
    return {
        "gains": float(values.size),
        "gain_mean": float(values.mean()),
        "gain_abs_mean": float(np.abs(values).mean()),
        "gain_negative": float((values < 0).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="creditgym/SearchQAEasy-v0")
    parser.add_argument("--batches", default="64")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="rollouts averaged per row")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0 = torch's default)"
    )
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)
    if args.threads:
        torch.set_num_threads(args.threads)

    title = (
        f"IGPO scoring overhead, tiny model, {args.env}, group size {args.group_size}, "
        f"{torch.get_num_threads()} torch threads, mean of {args.repeats} rollouts per row; "
        "overhead = scoring s / rollout s"
    )
    data = {
        "env": args.env,
        "group_size": args.group_size,
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "rows": [],
    }
    rows, gain_rows = [], []
    for batch in [int(b) for b in args.batches.split(",")]:
        row = measure(args.env, batch, args.group_size, args.repeats)
        data["rows"].append(
            {
                "B": batch,
                "turns": row["turns"],
                "distinct_prompts": row["scored"],
                "rollout_s": row["rollout"],
                "kv_cache_scoring_s": row["kv_cache"],
                "second_prefill_s": row["prefill"],
                "gains": row["gains"],
                "gain_mean": row["gain_mean"],
                "gain_abs_mean": row["gain_abs_mean"],
                "gain_negative": row["gain_negative"],
            }
        )
        gain_rows.append(
            (
                batch,
                f"{row['gains']:.0f}",
                f"{row['gain_mean']:.1e}",
                f"{row['gain_abs_mean']:.1e}",
                f"{row['gain_negative']:.0%}",
            )
        )
        rows.append(
            (
                batch,
                f"{row['turns']:.0f}",
                f"{row['scored']:.0f}",
                f"{row['rollout']:.2f}",
                f"{row['kv_cache']:.2f}",
                f"{row['kv_cache'] / row['rollout']:.0%}",
                f"{row['prefill']:.2f}",
                f"{row['prefill'] / row['rollout']:.0%}",
            )
        )
    columns = (
        "B",
        "turns",
        "distinct prompts",
        "rollout s",
        "KV-cache scoring s",
        "KV-cache overhead",
        "second prefill s",
        "prefill overhead",
    )
    gains_title = (
        "The untrained policy's information gains (`prob_diff`, every turn but each episode's "
        f"last, the KV-cache rollouts of all {args.repeats} repeats pooled)"
    )
    gain_columns = ("B", "gains", "mean", "mean size", "below zero")
    text = (
        f"{title}\n\n{markdown_table(columns, rows, align='r' * len(columns))}\n\n"
        f"{gains_title}\n\n{markdown_table(gain_columns, gain_rows, align='r' * 5)}"
    )
    print(text)
    write_results("igpo_overhead", stamp, data, text)


if __name__ == "__main__":
    main()
