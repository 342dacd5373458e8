"""Window vs conversation context, side by side on the quickstart: tokens and seconds.

    python benchmarks/context_modes.py [--iterations 3] [--threads 1] [key=value ...]

Both modes train the quickstart config (`configs/quickstart_rl.yaml`, overrides allowed) from the
same seed for `--iterations` iterations in one process, and report per iteration:

- prompt tokens prefilled per env step (`HFPolicy.prefilled_tokens`): a window prompt is
  encoded whole every turn, a conversation prefills only what its KV cache lacks;
- tokens the update reads per iteration (prompt + response of every turn in window mode, one
  sequence per episode in conversation mode: every turn is scored, even where its advantage is
  0 and training would skip it, so the workload does not depend on the returns);
- rollout and update seconds per iteration (mean over iterations after the first, which warms
  up; wall time, so on a shared machine they move with the load).

Held-out success is not measured here: a few iterations say nothing about it.

What conversation mode saves depends on how much of a window prompt repeats every turn. The
quickstart's compact prompt repeats little; an instruct model's verl-agent prompt in its chat
template repeats a lot. For SmolLM2-135M-Instruct in that setting:

    python benchmarks/context_modes.py --iterations 2 --threads 2 policy.model=smollm2 \
        policy.lora.enabled=true policy.template=verl-agent policy.chat_template=true \
        rollout.groups=4 rollout.group_size=4 train.micro_batch_turns=16 train.lr=3e-4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from creditgym.config import load_config
from creditgym.credit import compute_advantages
from creditgym.rollout.collect import collect_episodes, group_tasks, make_envs, prompt_format_for
from creditgym.train.models import build_policy
from creditgym.train.update import flatten_sequences, flatten_turns, ppo_update

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import markdown_table, stamp_or_exit, write_results  # noqa: E402

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart_rl.yaml"


def measure(context: str, iterations: int, overrides: list[str]) -> dict[str, float]:
    config = load_config(QUICKSTART, [*overrides, f"policy.context={context}"])
    torch.manual_seed(config.run.seed)
    policy = build_policy(config)
    optimizer = torch.optim.AdamW(
        [p for p in policy.model.parameters() if p.requires_grad], lr=config.train.lr
    )
    prompt_format = prompt_format_for(config.policy)
    roll = config.rollout
    envs = make_envs(
        config.env.id,
        roll.groups * roll.group_size,
        split=config.env.train_split,
        **config.env.kwargs,
    )
    task_rng = np.random.default_rng(config.run.seed)
    rows = []
    for _ in range(iterations):
        seeds = task_rng.integers(0, 2**31 - 1, size=roll.groups).tolist()
        tasks = group_tasks(seeds, roll.group_size, split=config.env.train_split)
        prefilled = policy.prefilled_tokens
        start = time.perf_counter()
        episodes = collect_episodes(
            envs, policy, tasks, env_id=config.env.id, prompt_format=prompt_format
        )
        rollout_seconds = time.perf_counter() - start
        steps = sum(len(ep) for ep in episodes)
        advantages = compute_advantages(
            episodes, shapers=config.credit.shapers, estimator=config.credit.estimator
        )
        if context == "conversation":
            units = flatten_sequences(episodes, advantages)
            read = sum(len(u.ids) for u in units)
        else:
            units = flatten_turns(episodes, advantages)
            read = sum(len(u.prompt_ids) + len(u.response_ids) for u in units)
        start = time.perf_counter()
        ppo_update(
            policy,
            optimizer,
            units,
            micro_batch_turns=config.train.micro_batch_turns,
            clip_eps=config.train.clip_eps,
            max_grad_norm=config.train.max_grad_norm,
            skip_zero_advantage=False,  # every turn, whatever the returns: a fixed workload
        )
        rows.append(
            {
                "prefilled_per_step": (policy.prefilled_tokens - prefilled) / steps,
                "update_tokens": read,
                "rollout_s": rollout_seconds,
                "update_s": time.perf_counter() - start,
                "success": float(np.mean([ep.success for ep in episodes])),
            }
        )
    timed = rows[1:] or rows
    return {
        "prefilled_per_step": statistics.mean(r["prefilled_per_step"] for r in rows),
        "update_tokens": statistics.mean(r["update_tokens"] for r in rows),
        "rollout_s": statistics.mean(r["rollout_s"] for r in timed),
        "update_s": statistics.mean(r["update_s"] for r in timed),
        "success": statistics.mean(r["success"] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--name", default="context_modes", help="results file name (one per setting measured)"
    )
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)
    torch.set_num_threads(args.threads)
    results = {mode: measure(mode, args.iterations, args.overrides) for mode in CONTEXTS}
    window, conversation = results["window"], results["conversation"]

    def ratio(key: str) -> float:
        return conversation[key] / window[key]

    seconds = (conversation["rollout_s"] + conversation["update_s"]) / (
        window["rollout_s"] + window["update_s"]
    )
    ratios = {
        "prefilled_per_step": ratio("prefilled_per_step"),
        "update_tokens": ratio("update_tokens"),
        "update_s": ratio("update_s"),
        "iteration_s": seconds,
    }
    columns = [
        "context",
        "prompt tokens prefilled / env step",
        "tokens the update reads / iteration",
        "rollout s / iteration",
        "update s / iteration",
        "training success",
    ]
    rows = [
        (
            f"`{mode}`",
            f"{r['prefilled_per_step']:.0f}",
            f"{r['update_tokens']:,.0f}",
            f"{r['rollout_s']:.1f}",
            f"{r['update_s']:.1f}",
            f"{r['success']:.1%}",
        )
        for mode, r in results.items()
    ]
    setting = " ".join(["quickstart", *args.overrides])
    text = (
        f"{setting}, {args.iterations} iterations per mode, {args.threads} torch thread(s)\n\n"
        f"{markdown_table(columns, rows)}\n\n"
        f"conversation / window: prefill {ratios['prefilled_per_step']:.2f}x, update tokens "
        f"{ratios['update_tokens']:.2f}x, update time {ratios['update_s']:.2f}x, iteration time "
        f"{seconds:.2f}x ({1 / seconds:.2f}x the iteration speed)"
    )
    print(text)
    write_results(args.name, stamp, {"modes": results, "conversation_over_window": ratios}, text)


CONTEXTS = ("window", "conversation")

if __name__ == "__main__":
    main()
