"""Credit methods' learning curves: the same model, env and env-step budget, several seeds.

    python benchmarks/credit_curves.py                   # HouseholdEasy, GRPO vs GiGPO, 3 seeds
    python benchmarks/credit_curves.py --preset search   # SearchQAEasy, GRPO vs IGPO (+ GiGPO)
    python benchmarks/credit_curves.py --preset keyroom  # MiniHack KeyRoom, GRPO vs CALM (+ GiGPO)
    python benchmarks/credit_curves.py --preset coop     # CoopHousehold, GRPO vs LaRe vs GiGPO
    python benchmarks/credit_curves.py --preset medium --iterations 15 --eval-every 5

Each run is `creditgym train configs/quickstart_rl.yaml` with `credit` set to the method and
`run.seed` to the seed (the `medium` preset adds an expert warm start, since
RL from scratch never sees a success there). Held-out success on the env's two held-out splits is
measured every `--eval-every` iterations. Writes, under `benchmarks/results/` (`--name` for
another name than `credit_curves_<preset>`):
  credit_curves_<preset>.png   mean +- std of held-out success against environment steps
  credit_curves_<preset>.md    the final table (also printed), with the share of turns in
                               non-singleton step groups (how much GiGPO's step level acts)
  credit_curves_<preset>.json  every run's curve, stamped with `provenance`
Each finished run is stored under `results/runs/credit_curves/`, keyed by the training code
(`run_store.code_key`) and the resolved config, so a rerun continues where the last one stopped
and an interrupted run resumes from its last checkpoint. Processes may share the store (e.g.
`--methods grpo` on one core, `--methods gigpo` on the other): a run one of them trains is
locked, and another that needs it waits for its summary instead of training it twice.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from provenance import RESULTS, ROOT, markdown_table, stamp_or_exit, write_results  # noqa: E402
from run_store import code_key_or_exit, config_hash, read_metrics, stored_run  # noqa: E402

from creditgym.config import load_config  # noqa: E402
from creditgym.envs.registry import eval_splits  # noqa: E402
from creditgym.train.trainer import train  # noqa: E402

CONFIG = str(ROOT / "configs" / "quickstart_rl.yaml")
STORE = RESULTS / "runs" / "credit_curves"  # one directory per run, its summary.json once done

# method -> (turn-reward shapers, advantage estimator)
METHODS = {
    "grpo": ("[env]", "{name: grpo}"),
    "gigpo": ("[env]", "{name: gigpo}"),
    "igpo": ("[env, info_gain]", "{name: discounted_group}"),
    "igpo+gigpo": ("[env, info_gain]", "{name: gigpo}"),
    "calm": ("[env, calm]", "{name: grpo}"),
    "calm+gigpo": ("[env, calm]", "{name: gigpo}"),
    "lare": ("[lare]", "{name: discounted_group}"),
}
# preset -> (config overrides, methods compared)
PRESETS = {
    "easy": (["env.id=creditgym/HouseholdEasy-v0"], ["grpo", "gigpo"]),
    "medium": (
        [
            "env.id=creditgym/HouseholdMedium-v0",
            "train.sft_warmup.episodes=300",
            "train.sft_warmup.epochs=3",
            "train.lr=0.0003",
        ],
        ["grpo", "gigpo"],
    ),
    "search": (["env.id=creditgym/SearchQAEasy-v0"], ["grpo", "igpo", "igpo+gigpo"]),
    # CALM with the oracle judge (the game's events); credit.judge=smollm2 for an LLM judge.
    # 20-step episodes (the expert needs ~10; random play wins 1.7% in 40), no history in the
    # prompt (each observation is a map plus the inventory), and an expert warm start
    "keyroom": (
        [
            "env.id=creditgym/MiniHackKeyRoom-v0",
            "env.kwargs.max_steps=20",
            "policy.history_length=0",
            "train.sft_warmup.episodes=60",
            "train.sft_warmup.epochs=6",
            "credit.judge=oracle",
        ],
        ["grpo", "calm", "calm+gigpo"],
    ),
    # team reward only; LaRe with the hand-written factors. A small house (random play wins 2.5%)
    # and an expert warm start (~15% success): from scratch the tiny model never sees a team win
    "coop": (
        [
            "env.id=creditgym/CoopHousehold-v0",
            "env.kwargs.receptacles=3",
            "env.kwargs.distractors=0",
            "env.kwargs.max_steps=12",
            "train.sft_warmup.episodes=100",
            "train.sft_warmup.epochs=3",
            "train.lr=0.0003",
            "credit.lare_factors=hand",
        ],
        ["grpo", "lare", "gigpo"],
    ),
}


def run(preset: str, method: str, seed: int, args: argparse.Namespace, code: str) -> dict:
    """One (method, seed) run's summary, stored in its run directory once finished: a rerun of
    the same code (`code`) and config loads it, and a run stopped halfway resumes from its last
    checkpoint."""
    shapers, estimator = METHODS[method]
    overrides = PRESETS[preset][0] + [
        f"credit.shapers={shapers}",
        f"credit.estimator={estimator}",
        f"run.seed={seed}",
        f"train.iterations={args.iterations}",
        f"eval.every={args.eval_every}",
        f"eval.episodes={args.eval_episodes}",
        "run.progress=false",
        "run.tensorboard=false",
        "run.resume=true",
        *args.set,
    ]
    config = load_config(CONFIG, overrides)
    output_dir = STORE / f"{preset}-{method}-seed{seed}-{code}-{config_hash(config)}"
    summary = stored_run(output_dir, lambda run_dir: _train(config, run_dir))
    return {**summary, **rollout_figures(output_dir)}


def rollout_figures(output_dir: Path) -> dict:
    """What the run's training rollouts did (its ``metrics.jsonl``): turns per episode over the
    last quarter of the iterations, success over the first and the last quarter, env steps."""
    rows = read_metrics(output_dir)
    iterations = [row for row in rows if "rollout/turns" in row]
    quarter = max(1, len(iterations) // 4)
    first, last = iterations[:quarter], iterations[-quarter:]
    return {
        "turns_last_quarter": float(np.mean([row["rollout/turns"] for row in last])),
        "train_success_first_quarter": float(np.mean([row["rollout/success"] for row in first])),
        "train_success_last_quarter": float(np.mean([row["rollout/success"] for row in last])),
        "env_steps": iterations[-1]["env_steps"],
    }


def _train(config: Any, output_dir: Path) -> dict:
    """Train the run in `output_dir` (resuming from its last checkpoint): its summary."""
    config.run.output_dir = str(output_dir)  # outside the key: `config_hash` leaves it out
    result = train(config)
    splits = config.env.eval_splits or eval_splits(config.env.id)
    rows = read_metrics(output_dir)
    grouped = [
        row["credit/step_grouped_turn_share"]
        for row in rows
        if "credit/step_grouped_turn_share" in row
    ]
    evals = [row for row in rows if any(key.startswith("eval/") for key in row)]
    # the last eval row per env-step count (a warm start logs two at step 0)
    by_steps = {row["env_steps"]: row for row in evals}
    return {
        "steps": sorted(by_steps),
        "success": {
            split: [by_steps[s][f"eval/{split}/success"] for s in sorted(by_steps)]
            for split in splits
        },
        "step_grouped_share": float(np.mean(grouped)) if grouped else 0.0,
        "minutes": result.seconds / 60,
    }


def plot(results: dict[str, list[dict]], title: str, path: Path) -> None:
    """Mean +- std of held-out success against environment steps, one panel per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(next(iter(results.values()))[0]["success"])
    fig, axes = plt.subplots(
        1, len(splits), figsize=(max(7, 5 * len(splits)), 4), sharey=True, squeeze=False
    )
    axes = axes[0]
    for ax, split in zip(axes, splits):
        for method, runs in results.items():
            # runs share eval points by iteration; env steps differ slightly, so average them
            length = min(len(r["success"][split]) for r in runs)
            steps = np.mean([r["steps"][:length] for r in runs], axis=0)
            success = np.array([r["success"][split][:length] for r in runs])
            mean, std = success.mean(0), success.std(0)
            ax.plot(steps, mean, marker="o", label=method)
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        ax.set_title(split)
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"held-out success (mean +- std, {len(next(iter(results.values())))} seeds)")
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def final_table(results: dict[str, list[dict]]) -> str:
    """Final held-out success per method (mean +- std over the seeds), the share of turns in
    non-singleton step groups, the minutes per run and what the training rollouts did: turns
    per episode in the last quarter of the iterations (per seed), success from the first to the
    last quarter (mean over the seeds) and env steps per run."""
    splits = list(next(iter(results.values()))[0]["success"])
    rows = []
    for method, runs in results.items():
        finals = [np.array([r["success"][split][-1] for r in runs]) for split in splits]
        rows.append(
            [method, *(f"{f.mean():.1%} +- {f.std():.1%}" for f in finals)]
            + [f"{np.mean([r['step_grouped_share'] for r in runs]):.1%}"]
            + [f"{np.mean([r['minutes'] for r in runs]):.1f}"]
            + [" / ".join(f"{r['turns_last_quarter']:.2f}" for r in runs)]
            + [
                f"{np.mean([r['train_success_first_quarter'] for r in runs]):.1%} -> "
                f"{np.mean([r['train_success_last_quarter'] for r in runs]):.1%}"
            ]
            + [
                f"{min(r['env_steps'] for r in runs) / 1000:.1f}k-"
                f"{max(r['env_steps'] for r in runs) / 1000:.1f}k"
            ]
        )
    columns = [
        "method", *splits, "turns in step groups", "minutes/run",
        "turns per episode, last quarter (per seed)", "training success, first -> last quarter",
        "env steps per run",
    ]  # fmt: skip
    return markdown_table(columns, rows, align="l" * len(splits) + "lrrlll")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="easy")
    parser.add_argument("--name", help="results file name (default: credit_curves_<preset>)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--methods",
        default="",
        help=f"comma-separated, of {', '.join(METHODS)} (default: the preset's)",
    )
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--eval-episodes", type=int, default=64)
    parser.add_argument(
        "--set", nargs="*", default=[], help="extra config overrides, e.g. run.threads=1"
    )
    parser.add_argument(
        "--replot", action="store_true", help="redraw plot and table from the saved results"
    )
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    name = args.name or f"credit_curves_{args.preset}"
    saved = RESULTS / f"{name}.json"

    if args.replot:
        stored = json.loads(saved.read_text())
        stamp, results = stored["provenance"], stored["data"]
    else:
        stamp = stamp_or_exit(args.allow_dirty)
        code = code_key_or_exit(args.allow_dirty)
        seeds = [int(s) for s in args.seeds.split(",")]
        methods = args.methods.split(",") if args.methods else PRESETS[args.preset][1]
        results = {
            method: [run(args.preset, method, seed, args, code) for seed in seeds]
            for method in methods
        }
    env_id = PRESETS[args.preset][0][0].split("=")[1]
    plot(results, f"{' vs '.join(results)}, {env_id}, tiny model", RESULTS / f"{name}.png")
    table = final_table(results)
    write_results(name, stamp, results, table)
    print(table)


if __name__ == "__main__":
    main()
