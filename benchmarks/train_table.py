"""Held-out success of `creditgym train` runs over seeds and settings, as one stamped table.

    python benchmarks/train_table.py --name NAME CONFIG [--seeds 0,1,2]
        [--setting 'LABEL: key=value key=value' ...] [--metric KEY ...] [--returns]
        [--threads 1] [--code KEY] [key=value ...]

Each (setting, seed) is `creditgym train CONFIG` with the overrides given on the command line,
then the setting's own, then ``run.seed=SEED`` (a setting without overrides is the config as it
is). Per run the table has held-out success per split of the random agent, the model before
training, after the supervised warm start (when the config has one) and after the last
iteration (with ``--returns``, their mean returns too: WebShop's score is 100 x the return);
the env steps, the training-rollout success over the first and the last quarter of the
iterations, the wall time (start-up, evaluations and warm start included), and for each
``--metric`` (any key of the run's ``metrics.jsonl``, e.g. ``ppo/explained_variance``) its
range over the iterations and its last value. Per setting with several seeds, a row of the
means over the seeds and their standard deviation; below the table, paired by seed (a seed's
runs share their tasks, initial weights and warm start), each later setting's final success
minus the first setting's and each setting's final success minus its warm start's, with 95%
t intervals over the seeds (`paired_stats`).

Writes ``benchmarks/results/NAME.{md,json}``, stamped with `provenance`. Each finished run is
stored under ``results/runs/train_table/``, keyed by the training code (`run_store.code_key`)
and the resolved config (so tables share the runs they have in common, whatever their labels):
a rerun loads it, an interrupted run resumes from its last checkpoint, and processes given
different seeds or settings fill the store on different cores (``taskset -c 0 ... --seeds 0``,
``taskset -c 1 ... --seeds 1``) before one command with every seed assembles the table.
``--code KEY`` assembles a table from the runs stored under another training code's key (e.g.
runs trained before a commit that changed only a benchmark's table) and trains nothing. Wall
times are of this machine at the time: on a shared CPU they move with the load, so read them as
rough.
"""

from __future__ import annotations

import argparse
import re
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paired_stats import paired_difference  # noqa: E402
from provenance import RESULTS, ROOT, markdown_table, stamp_or_exit, write_results  # noqa: E402
from run_store import code_key_or_exit, config_hash, read_metrics, split_success, stored_run  # noqa: E402

from creditgym.config import Config, ConfigError, load_config  # noqa: E402
from creditgym.train.trainer import train  # noqa: E402

STORE = RESULTS / "runs" / "train_table"  # one folder per run, shared by every table


class MissingRun(LookupError):
    """A table assembled from stored runs (``--code``) lacks one of its runs."""


def parse_setting(text: str) -> tuple[str, list[str]]:
    """``'LABEL: key=value key=value'`` -> (label, overrides), the overrides split as a shell
    would (quote one that holds spaces: ``'GiGPO: "credit.estimator={name: gigpo}"'``); a bare
    ``LABEL`` has none."""
    label, _, overrides = text.partition(":")
    if not label.strip():
        raise ValueError(f"--setting {text!r} has no label: write 'LABEL: key=value ...'")
    return label.strip(), shlex.split(overrides)


def run_one(
    args: argparse.Namespace, label: str, overrides: list[str], seed: int, code: str
) -> dict[str, Any]:
    """One (setting, seed) run's summary: stored once finished, loaded by a rerun of the same
    training code (`code`) and resolved config."""
    options = [
        f"run.threads={args.threads}",
        "run.progress=false",
        "run.tensorboard=false",
        "run.resume=true",
    ]
    config = load_config(args.config, [*options, *args.overrides, *overrides, f"run.seed={seed}"])
    # keyed by the config alone, not the table or the label: tables share the runs they have
    # in common (the main job's seeds are also a table's GRPO setting)
    run_dir = STORE / f"seed{seed}-{code}-{config_hash(config)}"
    if args.code and not (run_dir / "summary.json").is_file():
        raise MissingRun(
            f"--code {code}: no finished run of setting {label!r}, seed {seed} is stored "
            f"({run_dir.name}); --code reads stored runs only, drop it to train them"
        )
    summary = stored_run(run_dir, lambda out: _train(config, out))
    # read from the stored run's log at table time, so a table may ask for any logged metric
    logged = _iteration_rows(run_dir)
    metrics = {key: [row[key] for row in logged if key in row] for key in args.metric}
    return {"setting": label, "overrides": overrides, "seed": seed, **summary, "metrics": metrics}


def _iteration_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The run's metrics rows of its training iterations (not its evaluations)."""
    rows = read_metrics(run_dir)
    return [row for row in rows if "rollout/success" in row]


def _train(config: Config, out: Path) -> dict[str, Any]:
    """Train (or resume) the run in `out`: its held-out success, budget and wall time."""
    config.run.output_dir = str(out)  # outside the key: `config_hash` leaves it out
    resumed = (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir())
    start = time.perf_counter()
    result = train(config)
    seconds = time.perf_counter() - start
    success = [row["rollout/success"] for row in _iteration_rows(out)]
    quarter = max(1, len(success) // 4)
    return {
        "output_dir": str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out),
        "resumed": resumed,
        "eval_episodes": config.eval.episodes,
        "demonstrations": config.train.sft_warmup.episodes,
        "random": split_success(result.random_baseline),
        "untrained": split_success(result.initial),
        "warm_start": split_success(result.after_warm_start),
        "final": split_success(result.final),
        # per split, the mean return: the trainer logs no graded score for its own evaluations,
        # so the one quantity every row has (WebShop's score is 100 x it)
        "returns": {
            key: {r.split: r.mean_return for r in results}
            for key, results in (
                ("random", result.random_baseline),
                ("untrained", result.initial),
                ("warm_start", result.after_warm_start),
                ("final", result.final),
            )
        },
        "iterations": result.iterations,
        "env_steps": result.env_steps,
        "train_success_first_quarter": statistics.mean(success[:quarter]) if success else None,
        "train_success_last_quarter": statistics.mean(success[-quarter:]) if success else None,
        "minutes": seconds / 60,
    }


def _pair(run: dict[str, Any], key: str, returns: bool = False) -> str:
    """``70.3% / 50.0%``: the run's `key` success per held-out split, in the env's split order;
    with `returns`, its mean returns after it: ``1.6% / 0.0% (return 0.247 / 0.286)``."""
    if not run[key]:
        return ""
    text = " / ".join(f"{v:.1%}" for v in run[key].values())
    if returns:
        text += f" (return {' / '.join(f'{v:.3f}' for v in run['returns'][key].values())})"
    return text


def _mean_pair(runs: list[dict[str, Any]], key: str) -> str:
    """Per split, the mean over the runs' `key` success +- the standard deviation over seeds."""
    splits = list(runs[0][key])
    cells = []
    for split in splits:
        values = [r[key][split] for r in runs]
        sd = f" +- {statistics.stdev(values):.1%}" if len(values) > 1 else ""
        cells.append(f"**{statistics.mean(values):.1%}**{sd}")
    return " / ".join(cells)


def _quarters(run: dict[str, Any]) -> str:
    first, last = run["train_success_first_quarter"], run["train_success_last_quarter"]
    return "" if first is None else f"{first:.0%} -> {last:.0%}"


def table(runs: list[dict[str, Any]], returns: bool = False) -> str:
    """One row per run and, per setting with several seeds, the means over them (of success;
    with `returns`, each run's cells also give its mean returns)."""
    splits = " / ".join(runs[0]["final"])
    iterations = runs[0]["iterations"]
    columns = [
        "setting",
        "seed",
        f"random agent ({splits})",
        "before training",
        "after the warm start",
        "after training",
        "iterations",
        "env steps",
        "training success, first -> last quarter",
        "wall time",
        *(f"{key}: min .. max (last)" for key in runs[0]["metrics"]),
    ]
    rows = []
    for label in dict.fromkeys(r["setting"] for r in runs):
        mine = [r for r in runs if r["setting"] == label]
        for i, r in enumerate(mine):
            rows.append(
                [
                    label if i == 0 else "",
                    r["seed"],
                    _pair(r, "random", returns),
                    _pair(r, "untrained", returns),
                    _pair(r, "warm_start", returns),
                    _pair(r, "final", returns),
                    r["iterations"],
                    f"{r['env_steps']:,}",
                    _quarters(r),
                    f"{r['minutes']:.1f} min" + (" (resumed part)" if r["resumed"] else ""),
                    *(_range(values) for values in r["metrics"].values()),
                ]
            )
        if len(mine) > 1:
            warm = _mean_pair(mine, "warm_start") if mine[0]["warm_start"] else ""
            blank = [""] * (len(columns) - 6)
            rows.append(["", "mean", "", "", warm, _mean_pair(mine, "final"), *blank])
    episodes = runs[0]["eval_episodes"]
    note = (
        f"Held-out success on tasks 0..{episodes - 1} of each split ({splits}); "
        f"{iterations} iterations unless the column says otherwise."
    )
    align = "llllllrrll" + "l" * len(runs[0]["metrics"])
    return markdown_table(columns, rows, align) + "\n\n" + note


def paired(runs: list[dict[str, Any]]) -> str:
    """Differences paired by seed, per split, in points with their 95% t intervals: each later
    setting's final success minus the first setting's, and each setting's final success minus
    its warm start's; '' when no setting has two seeds to pair."""
    by_setting: dict[str, dict[int, dict[str, Any]]] = {}
    for run in runs:
        by_setting.setdefault(run["setting"], {})[run["seed"]] = run
    labels = list(by_setting)
    splits = list(runs[0]["final"])
    rows = []

    def row(name: str, pairs: list[tuple[dict[str, float], dict[str, float]]]) -> None:
        cells = []
        for split in splits:
            d = paired_difference([a[split] for a, _ in pairs], [b[split] for _, b in pairs])
            cells.append(d.in_points())
        rows.append([name, len(pairs), *cells])

    first = by_setting[labels[0]]
    for label in labels[1:]:
        seeds = sorted(set(first) & set(by_setting[label]))
        if len(seeds) > 1:
            pairs = [(by_setting[label][s]["final"], first[s]["final"]) for s in seeds]
            row(f"{label} minus {labels[0]}, after training", pairs)
    for label in labels:
        mine = [r for r in by_setting[label].values() if r["warm_start"]]
        if len(mine) > 1 and mine[0]["iterations"] > 0:
            row(
                f"{label}: after training minus after the warm start",
                [(r["final"], r["warm_start"]) for r in mine],
            )
    if not rows:
        return ""
    columns = ["paired by seed", "seeds", *(f"{split} (points)" for split in splits)]
    note = (
        "Mean difference over the seeds [95% t interval]; * where the interval excludes 0. "
        "With few seeds the interval is wide: a difference inside it is no difference."
    )
    return markdown_table(columns, rows, "lr" + "l" * len(splits)) + "\n\n" + note


def _range(values: list[float]) -> str:
    """``-0.014 .. +0.008 (+0.003)``: a logged metric's range over the iterations, and its last."""
    if not values:
        return "not logged"
    return f"{min(values):+.3g} .. {max(values):+.3g} ({values[-1]:+.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", help="a training config, e.g. configs/quickstart.yaml")
    parser.add_argument("--name", required=True, help="the results file: results/NAME.md")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated run seeds")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        help="'LABEL: key=value ...', repeatable (default: the config as it is)",
    )
    parser.add_argument(
        "--metric",
        action="append",
        default=[],
        help="a logged metric to tabulate per run (its range and last value), repeatable",
    )
    parser.add_argument(
        "--returns", action="store_true", help="give each run's mean returns beside its success"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    parser.add_argument(
        "--code",
        help="assemble the table from the runs stored under this training-code key; train none",
    )
    parser.add_argument("overrides", nargs="*", help="overrides for every setting, key=value")
    args = parser.parse_intermixed_args()  # overrides may follow the options
    if not re.fullmatch(r"[\w.-]+", args.name):
        parser.error(f"--name {args.name!r}: use letters, digits, '_', '-' and '.' only")
    try:
        settings = [parse_setting(text) for text in args.setting] or [("config", [])]
    except ValueError as error:
        parser.error(str(error))
    if not re.fullmatch(r"\d+(,\d+)*", args.seeds):
        parser.error(f"--seeds {args.seeds!r}: comma-separated integers, e.g. 0,1,2")
    seeds = [int(s) for s in args.seeds.split(",")]

    if args.code and not re.fullmatch(r"[0-9a-f]{12}(\+dirty-[0-9a-f]{8})?", args.code):
        parser.error(f"--code {args.code!r}: a stored run's training-code key, e.g. f518bbf36023")

    stamp = stamp_or_exit(args.allow_dirty)
    code = args.code or code_key_or_exit(args.allow_dirty)
    try:
        runs = [
            run_one(args, label, overrides, seed, code)
            for label, overrides in settings
            for seed in seeds
        ]
    except (ConfigError, MissingRun) as error:
        raise SystemExit(f"error: {error}") from None
    text = f"# `creditgym train {args.config}` over seeds\n\n{table(runs, args.returns)}"
    if differences := paired(runs):
        text += f"\n\n{differences}"
    write_results(args.name, stamp, runs, text)
    print(text)


if __name__ == "__main__":
    main()
