"""Does an offline instruct model write LaRe's factor function? SmolLM2-135M on the cooperative
household, through `creditgym train` as a user runs it.

    python benchmarks/lare_code_writer.py              # seeds 0, 1, 2 (~5 minutes each)
    python benchmarks/lare_code_writer.py --seeds 0

Each seed runs ``creditgym train configs/quickstart_rl.yaml`` with the credit curves' ``coop``
preset and LaRe (``credit.shapers=[lare]``), its factors from ``credit.lare_factors=llm:smollm2``,
in a child process on one thread, with an empty creditgym cache (so the model writes anew and
is converted from the wheel's GGUF again, inside the timed run). The code writer drafts 5
candidates, merges them and runs up to 5 verify-and-repair rounds in the sandbox; if no round
passes, training stops with one line naming the log (``<run dir>/latent_factors.json``). Writes
``results/lare_smollm2_coop.{json,md}``, stamped: per seed, the exit status, the trainer's
message, whether code was accepted, each round's error and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from credit_curves import CONFIG, METHODS, PRESETS  # noqa: E402
from provenance import ROOT, markdown_table, stamp_or_exit, write_results  # noqa: E402

MODEL = "llm:smollm2"


def train_argv(seed: int, output_dir: Path, model: str = MODEL) -> list[str]:
    """The `creditgym train` command of one seed: the coop preset with LaRe's factors written
    by `model`; no warm start and no iterations, since the run is over once the factors exist."""
    shapers, estimator = METHODS["lare"]
    return [
        "train",
        str(CONFIG),
        *PRESETS["coop"][0],
        f"credit.shapers={shapers}",
        f"credit.estimator={estimator}",
        f"credit.lare_factors={model}",  # after the preset's `hand`: the last override wins
        "train.sft_warmup.episodes=0",
        "train.iterations=0",
        f"run.seed={seed}",
        f"run.output_dir={output_dir}",
        "run.progress=false",
        "run.tensorboard=false",
    ]


def write_once(seed: int, model: str = MODEL) -> dict:
    """One seed's attempt: the trainer's exit status and last stderr line, and the writer's log."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "CREDITGYM_CACHE": str(Path(tmp) / "cache")}
        output_dir = Path(tmp) / "run"
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "creditgym", *train_argv(seed, output_dir, model)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        log_path = output_dir / "latent_factors.json"
        if not log_path.is_file():
            raise SystemExit(
                f"error: seed {seed}: the run left no {log_path.name} (exit {done.returncode}):\n"
                + done.stderr[-2000:]
            )
        log = json.loads(log_path.read_text())
    # the trainer's one-line stop; a run that got working code trains on, and its last line is
    # not about the factors
    failed = done.returncode != 0 and done.stderr.strip()
    message = done.stderr.strip().splitlines()[-1] if failed else ""
    return {
        "seed": seed,
        "exit_code": done.returncode,
        "message": message.replace(tmp, "<tmp>"),
        "seconds": round(seconds, 1),
        **log,
    }


def _cell(text: str) -> str:
    """`text` on one line of a markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def table(runs: list[dict]) -> str:
    """A row per seed: whether code was accepted, the rounds, the minutes, each round's error."""
    rows = []
    for run in runs:
        errors = "; ".join(f"{r['stage']}: {_cell(r['error']) or 'passed'}" for r in run["rounds"])
        accepted = "yes" if run["code"] is not None else "no"
        rows.append(
            [run["seed"], accepted, len(run["rounds"]), f"{run['seconds'] / 60:.1f}", errors]
        )
    return markdown_table(
        ["seed", "code accepted", "rounds", "minutes", "each round"], rows, "rlrrl"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        runs.append(write_once(seed))
        print(f"seed {seed}: {runs[-1]['message'] or 'code accepted'}", flush=True)
    text = table(runs)
    path = write_results("lare_smollm2_coop", stamp, {"model": MODEL, "runs": runs}, text)
    print(text, f"\nwritten: {path}", sep="\n")


if __name__ == "__main__":
    main()
