"""Held-out success of trained runs at other evaluation temperatures, paired by run.

    python benchmarks/eval_temperatures.py TABLE [--setting LABEL] [--temperatures 1,0.5,0]
        [--threads 1] [--name NAME]

TABLE is a `train_table.py` results file (``benchmarks/results/TABLE.json``); its runs of one
setting (default: its first) are scored again from their stored directories: each run's latest
checkpoint, by ``creditgym eval`` as a person would run it, on the run's env and held-out
splits with as many episodes per split as the run's own evaluations, once per temperature (0 is
greedy decoding). A checkpoint's sampler starts from the same seed in every evaluation and the
tasks are the splits' first ones, so every temperature sees the same tasks. The first
temperature is the baseline: below the table each other temperature's success minus it, paired
by run, with 95% t intervals (`paired_stats`). The first temperature re-evaluated here is not
the run's own final figure: the trainer samples its evaluations from the training sampler's
state at the time.

Writes ``benchmarks/results/NAME.{md,json}`` (default: TABLE_temperatures), stamped with
`provenance`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired_stats import paired_difference  # noqa: E402
from provenance import RESULTS, ROOT, markdown_table, stamp_or_exit, write_results  # noqa: E402


def table_runs(table: str, setting: str | None) -> list[dict[str, Any]]:
    """The runs of `setting` (default: the first) in results/TABLE.json; SystemExit with one line
    when the file or the setting is not there."""
    path = RESULTS / f"{table}.json"
    try:
        runs = json.loads(path.read_text())["data"]
        settings = list(dict.fromkeys(run["setting"] for run in runs))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"error: {path} is not a train_table.py results file ({error})") from None
    wanted = setting or settings[0]
    if wanted not in settings:
        raise SystemExit(f"error: {table} has no setting {wanted!r}; it has {settings}")
    chosen = [run for run in runs if run["setting"] == wanted]
    missing = [run["output_dir"] for run in chosen if not (ROOT / run["output_dir"]).is_dir()]
    if missing:
        raise SystemExit(
            f"error: run directory {missing[0]} is not here; rerun `{table}`'s command to train it"
        )
    return chosen


def evaluate_run(run: dict[str, Any], temperature: float, threads: int) -> dict[str, float]:
    """Held-out success per split of `run`'s latest checkpoint at `temperature`."""
    config = yaml.safe_load((ROOT / run["output_dir"] / "config.yaml").read_text())
    env = config["env"]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "eval.json"
        command = [
            *("creditgym", "eval", "--env", env["id"], "--agent", run["output_dir"]),
            *("--episodes", str(run["eval_episodes"]), "--splits", ",".join(run["final"])),
            *("--temperature", str(temperature), "--json", str(out)),
            *(arg for item in (env.get("kwargs") or {}).items() for arg in _env_kwarg(*item)),
        ]
        environment = os.environ | {"OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            raise SystemExit(f"error: `{' '.join(command)}` failed: {' '.join(tail)}")
        return {row["split"]: row["success"] for row in json.loads(out.read_text())}


def _env_kwarg(key: str, value: Any) -> tuple[str, str]:
    """``--env-kwarg key=value``, the value in YAML's flow style as `creditgym eval` parses it."""
    return "--env-kwarg", f"{key}={json.dumps(value) if isinstance(value, dict | list) else value}"


def render(runs: list[dict[str, Any]], temperatures: list[float], scores: dict) -> str:
    """Per run and temperature the success per split, the means, and the paired differences
    against the first temperature."""
    splits = list(runs[0]["final"])
    columns = ["temperature", "seed", *splits]
    rows = []
    for t in temperatures:
        for run in runs:
            cells = [f"{scores[t][run['seed']][split]:.1%}" for split in splits]
            rows.append((f"{t:g}", str(run["seed"]), *cells))
        if len(runs) > 1:
            means = [statistics.mean(scores[t][r["seed"]][s] for r in runs) for s in splits]
            rows.append((f"**{t:g}**", "mean", *(f"**{m:.1%}**" for m in means)))
    text = markdown_table(columns, rows, align="ll" + "r" * len(splits))
    if len(runs) > 1:
        differences = [
            (
                f"{t:g} minus {temperatures[0]:g}",
                *(
                    paired_difference(
                        [scores[t][r["seed"]][split] for r in runs],
                        [scores[temperatures[0]][r["seed"]][split] for r in runs],
                    ).in_points()
                    for split in splits
                ),
            )
            for t in temperatures[1:]
        ]
        text += (
            "\n\nPaired by run, in points (95% t interval; * where it excludes 0):\n\n"
            + markdown_table(["difference", *splits], differences)
        )
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", help="a train_table.py results name, e.g. quickstart_seeds")
    parser.add_argument("--setting", help="the setting whose runs to score (default: the first)")
    parser.add_argument("--temperatures", default="1,0.5,0", help="comma-separated, first = base")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per evaluation")
    parser.add_argument("--name", help="results file name (default: TABLE_temperatures)")
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    try:
        temperatures = [float(t) for t in args.temperatures.split(",")]
    except ValueError:
        parser.error(f"--temperatures must be comma-separated numbers, got {args.temperatures!r}")
    if any(t < 0 for t in temperatures):
        parser.error(f"--temperatures must be >= 0 (0 = greedy), got {args.temperatures!r}")
    stamp = stamp_or_exit(args.allow_dirty)
    runs = table_runs(args.table, args.setting)
    scores = {
        t: {run["seed"]: evaluate_run(run, t, args.threads) for run in runs} for t in temperatures
    }
    text = render(runs, temperatures, scores)
    print(text)
    data = [
        {
            "temperature": t,
            "seed": run["seed"],
            "output_dir": run["output_dir"],
            **scores[t][run["seed"]],
        }
        for t in temperatures
        for run in runs
    ]
    write_results(args.name or f"{args.table}_temperatures", stamp, data, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
