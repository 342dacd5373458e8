"""Does the ppo estimator's critic learn? Its explained variance on each new batch.

Rolls out a scripted agent (`expert:eps=0.6` by default) on fresh household tasks, batch after
batch, and calls the ``ppo`` estimator on each with one critic per setting. The explained
variance 1 - Var(R - V) / Var(R) is taken before the critic trains on the batch, so it
measures prediction on states it has not fitted. One thread, one process:

    python benchmarks/ppo_critic_learning.py
    python benchmarks/ppo_critic_learning.py --batches 40 --settings 1e-3:4,1e-2:4 --name NAME

Writes `results/ppo_critic_learning.{json,md}` (`--name` for another name), stamped with
`provenance`: per setting, the explained variance on every batch, its range and the mean over
the last half of the batches, and the seconds the critic took.
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

from creditgym.agents.factory import load_policy  # noqa: E402
from creditgym.credit import CreditContext, compute_advantages  # noqa: E402
from creditgym.credit.estimators.ppo import PPOEstimator  # noqa: E402
from creditgym.rollout.collect import (  # noqa: E402
    PromptFormat,
    collect_episodes,
    group_tasks,
    make_envs,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="creditgym/HouseholdEasy-v0")
    parser.add_argument("--agent", default="expert:eps=0.6")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--groups", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument(
        "--settings",
        default="1e-3:4,3e-3:4,1e-2:4,1e-2:32:10",
        help="comma-separated critic_lr:critic_epochs[:value_clip]",
    )
    parser.add_argument("--name", default="ppo_critic_learning", help="results file name")
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)
    torch.set_num_threads(1)

    policy = load_policy(args.agent)
    envs = make_envs(args.env, args.groups * args.group_size, split="train")
    batches = []
    for index in range(args.batches):
        seeds = np.random.default_rng(index).integers(0, 2**31 - 1, size=args.groups).tolist()
        tasks = group_tasks(seeds, args.group_size, split="train")
        batches.append(
            collect_episodes(envs, policy, tasks, env_id=args.env, prompt_format=PromptFormat())
        )
    success = float(np.mean([ep.success for batch in batches for ep in batch]))
    turns = float(np.mean([sum(len(ep.turns) for ep in batch) for batch in batches]))
    title = (
        f"{args.env}, {args.agent}: {args.batches} batches, {turns:.0f} turns each, "
        f"success {success:.1%}"
    )
    print(title)
    data = {"env": args.env, "agent": args.agent, "turns": turns, "success": success}
    data["settings"], rows = [], []

    for setting in args.settings.split(","):
        lr, epochs, *clip = setting.split(":")
        spec = {
            "name": "ppo",
            "critic_lr": float(lr),
            "critic_epochs": int(epochs),
            "value_clip": float(clip[0]) if clip else 0.2,
        }
        module = PPOEstimator()
        context = CreditContext(modules={"ppo": module})
        explained = []
        start = time.perf_counter()
        for batch in batches:
            compute_advantages(batch, ["env"], spec, context=context)
            explained.append(float(module.metrics()["explained_variance"]))
        seconds = time.perf_counter() - start
        last_half = float(np.mean(explained[len(explained) // 2 :]))
        print(
            f"lr {lr} epochs {epochs} clip {spec['value_clip']}: explained variance "
            + " ".join(f"{x:+.2f}" for x in explained)
            + f" | last half mean {last_half:+.3f} ({seconds:.1f} s)"
        )
        data["settings"].append({**spec, "explained_variance": explained, "seconds": seconds})
        rows.append(
            [
                f"{lr} : {epochs}, value_clip {spec['value_clip']}",
                f"{min(explained):+.2f} .. {max(explained):+.2f}",
                f"{last_half:+.3f}",
                f"{seconds:.1f}",
            ]
        )
    columns = ["critic_lr : critic_epochs", "range", "mean of the last half", "seconds"]
    path = write_results(args.name, stamp, data, f"{title}\n\n" + markdown_table(columns, rows))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
