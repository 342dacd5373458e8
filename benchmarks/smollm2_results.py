"""SmolLM2-135M-Instruct on the CPU: held-out success of random, untrained, warm-started,
GRPO and GiGPO.

    python benchmarks/smollm2_results.py [--seeds 0] [--iterations N] [--eval-episodes N]
                                         [--methods grpo,gigpo] [key=value ...]

Each (method, seed) is one `creditgym train configs/smollm2_household.yaml` run (conversation
mode, constrained to the admissible actions, LoRA) with `credit.estimator` set to the method, on
one torch thread. A seed's supervised warm start (`train.sft_warmup`) is trained once, as the
config run for 0 iterations: it evaluates the random agent and the untrained model on the
held-out tasks (tasks 0..N-1 of each held-out split, so every row of the table is scored on the
same tasks), trains on the expert's demonstrations and evaluates the model again. Each method's
run at that seed starts from a copy of it (its iteration-0 checkpoint, optimizer and RNG states
included: the trainer resumes it exactly as if the run had trained the warm start itself), then
trains and evaluates the model after its last iteration. Without a warm start in the config,
the first method's runs give the random and untrained rows.

Writes `benchmarks/results/smollm2_household.md` (the table) and `.json` (every number, per
run), stamped with `provenance`, and prints the table. Wall times are of this machine at the
time of the run: on a shared CPU they move with the load, so read them as rough.

Each finished run (warm starts included) is stored under `results/runs/smollm2/`, keyed by the
training code (`run_store.code_key`) and the resolved config: a rerun of the command loads it,
an interrupted run resumes from its last checkpoint (its wall time then covers the resumed
part only, and the JSON says so), and processes for different seeds can fill the store on
different cores (`taskset -c 0 ... --seeds 0`, `taskset -c 1 ... --seeds 1`) before the
README's command assembles the table from it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from provenance import RESULTS, ROOT, stamp_or_exit, write_results  # noqa: E402
from run_store import (  # noqa: E402
    code_key_or_exit,
    config_hash,
    copy_run,
    read_metrics,
    split_success,
    stored_run,
)

from creditgym.config import Config, load_config  # noqa: E402
from creditgym.envs.registry import eval_splits  # noqa: E402
from creditgym.train.trainer import train  # noqa: E402

CONFIG = ROOT / "configs" / "smollm2_household.yaml"
STORE = RESULTS / "runs" / "smollm2"  # one directory per run, its summary.json once done
ESTIMATORS = {"grpo": "{name: grpo}", "gigpo": "{name: gigpo}"}
LABELS = {"grpo": "GRPO", "gigpo": "GiGPO"}
WARM = "warm"  # the name of a seed's shared warm start in the store


def warm_start(seed: int, args: argparse.Namespace, code: str) -> dict[str, Any] | None:
    """The seed's supervised warm start (the config trained for 0 iterations: the random agent,
    the untrained model, the warm start and its evaluation), trained once and stored, so every
    method's run at `seed` continues from the same model; None when the config has none."""
    config = _config(seed, args, final=["train.iterations=0"])  # whatever the command line says
    if config.train.sft_warmup.episodes == 0:
        return None
    run_dir = STORE / f"{WARM}-seed{seed}-{code}-{config_hash(config)}"
    return stored_run(run_dir, lambda out: _train_warm_start(config, out, seed))


def run_one(
    method: str, seed: int, args: argparse.Namespace, code: str, warm: dict[str, Any] | None
) -> dict[str, Any]:
    """One (method, seed) run's evaluations, budget and timings, continued from the seed's
    warm start `warm` (if any): stored once finished, so a rerun of the same code (`code`) and
    config loads them."""
    overrides = [f"credit.estimator={ESTIMATORS[method]}"]
    if args.iterations is not None:
        overrides.append(f"train.iterations={args.iterations}")
    config = _config(seed, args, overrides)
    run_dir = STORE / f"{method}-seed{seed}-{code}-{config_hash(config)}"
    return stored_run(run_dir, lambda out: _train(config, out, method, seed, warm))


def _config(
    seed: int, args: argparse.Namespace, overrides: Sequence[str] = (), final: Sequence[str] = ()
) -> Config:
    """The SmolLM2 config at `seed` with this script's run options, `overrides`, the command
    line's own, then `final` (which nothing on the command line can undo)."""
    options = [
        f"run.seed={seed}",
        f"run.threads={args.threads}",
        "run.progress=false",
        "run.tensorboard=false",
        "run.resume=true",
    ]
    if args.eval_episodes is not None:
        options.append(f"eval.episodes={args.eval_episodes}")
    return load_config(CONFIG, [*options, *overrides, *args.overrides, *final])


def _train_warm_start(config: Config, out: Path, seed: int) -> dict[str, Any]:
    """Train the 0-iteration run in `out`: held-out success before and after the warm start."""
    config.run.output_dir = str(out)  # outside the key: `config_hash` leaves it out
    start = time.perf_counter()
    result = train(config)
    return {
        "method": WARM,
        "seed": seed,
        "output_dir": _relative(out),
        "random": split_success(result.random_baseline),
        "untrained": split_success(result.initial),
        "warm_start": split_success(result.final),  # the last evaluation: after the warm start
        "warm_start_demonstrations": config.train.sft_warmup.episodes,
        "eval_episodes": config.eval.episodes,
        "wall_seconds": time.perf_counter() - start,
    }


def _train(
    config: Config, out: Path, method: str, seed: int, warm: dict[str, Any] | None
) -> dict[str, Any]:
    """Train (or resume) the run in `out`, from a copy of the warm start's directory (its
    iteration-0 checkpoint) when it starts anew: its evaluations, budget and timings."""
    config.run.output_dir = str(out)  # outside the key: `config_hash` leaves it out
    resumed = (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir())
    if warm is not None and not resumed:
        copy_run(ROOT / warm["output_dir"], out)
    start = time.perf_counter()
    result = train(config)
    seconds = time.perf_counter() - start
    rows = read_metrics(out)
    iterations = [row for row in rows if "time/rollout" in row]
    per_iteration = [
        row["time/rollout"] + row["time/credit"] + row["time/update"] for row in iterations
    ]
    splits = config.env.eval_splits or eval_splits(config.env.id)
    evals = [row for row in rows if any(key.startswith("eval/") for key in row)]
    return {
        "method": method,
        "seed": seed,
        "output_dir": _relative(out),
        "resumed": resumed,
        "warm_start_run": warm["output_dir"] if warm else None,
        "env": config.env.id,
        "env_kwargs": config.env.kwargs,
        "iterations": result.iterations,
        "episodes_per_iteration": config.rollout.groups * config.rollout.group_size,
        "groups": config.rollout.groups,
        "group_size": config.rollout.group_size,
        "env_steps": result.env_steps,
        "eval_episodes": config.eval.episodes,
        "random": split_success(result.random_baseline),
        # the untrained model: the run's first eval row (iteration 0), also after a resume
        "untrained": {split: evals[0][f"eval/{split}/success"] for split in splits},
        "warm_start": split_success(result.after_warm_start) or None,
        "warm_start_demonstrations": config.train.sft_warmup.episodes,
        "trained": split_success(result.final),
        "curve": [
            {"iteration": row["iteration"], **{s: row[f"eval/{s}/success"] for s in splits}}
            for row in evals
        ],
        "train_success": [row["rollout/success"] for row in iterations],
        "update_steps": [row["update/steps"] for row in iterations],
        "shaped_return": shaped_returns(out),
        "wall_seconds": seconds,
        "iteration_seconds_mean": statistics.mean(per_iteration) if per_iteration else 0.0,
    }


def shaped_returns(out: Path) -> list[float]:
    """Mean shaped return (the sum of turn rewards the estimator saw: env + shapers) of each
    iteration's logged training episodes, from the run's `episodes.jsonl`."""
    per_iteration: dict[int, list[float]] = {}
    log = out / "episodes.jsonl"
    for line in log.read_text().splitlines() if log.exists() else []:
        record = json.loads(line)
        if record.get("source") == "train":
            total = sum(turn["turn_reward"] for turn in record["turns"])
            per_iteration.setdefault(record["iteration"], []).append(total)
    return [statistics.mean(v) for _, v in sorted(per_iteration.items())]


def _relative(path: Path) -> str:
    """`path` relative to the repository when it is inside it (results name no machine paths),
    as written (a store reached through a symbolic link is still inside) or resolved."""
    for candidate in (path.absolute(), path.resolve()):
        if candidate.is_relative_to(ROOT):
            return str(candidate.relative_to(ROOT))
    return str(path)


def _cell(values: list[float]) -> str:
    """Mean success over seeds, with the per-seed values when there are several."""
    if len(values) == 1:
        return f"{values[0]:.1%}"
    mean = statistics.mean(values)
    return f"{mean:.1%} ({', '.join(f'{v:.0%}' for v in values)})"


def _minutes(runs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['wall_seconds'] / 60:.0f}" for r in runs) + " min"


def table(runs: list[dict[str, Any]], warm_starts: list[dict[str, Any]]) -> str:
    """The markdown table: random, untrained, warm start (the seeds' shared `warm_starts`,
    when the config has one), then one row per trained method."""
    splits = list(runs[0]["random"])
    first = runs[0]["method"]
    base = warm_starts or [r for r in runs if r["method"] == first]
    lines = [
        f"| agent | {' | '.join(splits)} | seeds | budget | wall time |",
        "|---" * (len(splits) + 4) + "|",
    ]
    seeds = ", ".join(str(r["seed"]) for r in base)
    evals = f"{runs[0]['eval_episodes']} tasks per split"
    inside = "(inside the warm start)" if warm_starts else "(inside each run)"
    rows = [
        ("random agent", "random", evals, inside),
        ("SmolLM2, untrained", "untrained", evals, inside),
    ]
    if warm_starts:
        demos = f"{base[0]['warm_start_demonstrations']} expert demonstrations"
        rows.append(("SmolLM2, warm start only", "warm_start", demos, _minutes(warm_starts)))
    for name, key, budget, minutes in rows:
        cells = " | ".join(_cell([r[key][s] for r in base]) for s in splits)
        lines.append(f"| {name} | {cells} | {seeds} | {budget} | {minutes} |")
    for method in dict.fromkeys(r["method"] for r in runs):
        mine = [r for r in runs if r["method"] == method]
        cells = " | ".join(_cell([r["trained"][s] for r in mine]) for s in splits)
        r0 = mine[0]
        budget = (
            f"{r0['iterations']} it x {r0['groups']} tasks x {r0['group_size']} episodes "
            f"({r0['env_steps']} env steps)"
        )
        after = " after the warm start" if warm_starts else ""
        lines.append(
            f"| SmolLM2{' + warm start' if warm_starts else ''} + {LABELS[method]} | "
            f"{cells} | "
            f"{', '.join(str(r['seed']) for r in mine)} | {budget} | {_minutes(mine)}{after} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0", help="comma-separated run seeds")
    parser.add_argument("--methods", default="grpo,gigpo", help=f"of {', '.join(ESTIMATORS)}")
    parser.add_argument("--iterations", type=int, default=None, help="default: the config's")
    parser.add_argument("--eval-episodes", type=int, default=None, help="default: the config's")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    parser.add_argument("overrides", nargs="*", help="more config overrides, key=value")
    args = parser.parse_args()
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(ESTIMATORS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {sorted(ESTIMATORS)}")
    seeds = [int(s) for s in args.seeds.split(",")]

    stamp = stamp_or_exit(args.allow_dirty)
    code = code_key_or_exit(args.allow_dirty)
    warm_starts, runs = [], []
    for seed in seeds:  # a seed's warm start, then its methods: an interruption keeps whole seeds
        warm = warm_start(seed, args, code)
        warm_starts += [warm] if warm is not None else []
        runs += [run_one(method, seed, args, code, warm) for method in methods]
    text = "\n".join(
        [
            f"# SmolLM2-135M-Instruct on {runs[0]['env']} {runs[0]['env_kwargs']}",
            "",
            table(runs, warm_starts),
            "",
            *[
                f"- {r['method']} seed {r['seed']}: held-out success after iterations "
                + ", ".join(
                    f"{c['iteration']}: "
                    + " / ".join(f"{v:.1%}" for k, v in c.items() if k != "iteration")
                    for c in r["curve"]
                )
                + "; training-rollout success per iteration "
                + ", ".join(f"{s:.0%}" for s in r["train_success"])
                + "; mean shaped return (env + shapers) per iteration "
                + ", ".join(f"{v:.2f}" for v in r.get("shaped_return", []))
                + f"; {r['iteration_seconds_mean']:.0f} s per iteration"
                + (" (resumed: wall time covers the resumed part)" if r["resumed"] else "")
                for r in runs
            ],
        ]
    )
    write_results("smollm2_household", stamp, {"warm_starts": warm_starts, "runs": runs}, text)
    print(text)


if __name__ == "__main__":
    main()
