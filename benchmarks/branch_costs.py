"""What branch rollouts spend per iteration: env steps, policy tokens, replay steps and rollout
wall time with ``rollout.branch.mode`` none, tree and vine.

    python benchmarks/branch_costs.py

Each mode is ``creditgym train configs/quickstart_rl.yaml`` (HouseholdEasy, the untrained tiny
model) for 2 iterations of 4 groups x 4 episodes with K = 4 continuations per branch point and
the mode's estimator (grpo, tree, vine), in a child process on one thread. Writes
``results/branch_costs.{json,md}``, stamped with `provenance`: per mode, iteration 1's counts
(from the run's ``metrics.jsonl``) and both iterations' rollout seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from credit_reports import run_creditgym  # noqa: E402
from provenance import ROOT, markdown_table, stamp_or_exit, write_results  # noqa: E402
from run_store import read_metrics  # noqa: E402

MODES = {"none": "grpo", "tree": "tree", "vine": "vine"}  # branch mode -> its estimator
TRAIN = (
    "train", str(ROOT / "configs" / "quickstart_rl.yaml"), "rollout.groups=4",
    "rollout.group_size=4", "train.iterations=2", "eval.every=0", "eval.episodes=8",
    "run.threads=1", "rollout.branch.k=4", "run.progress=false", "run.tensorboard=false",
)  # fmt: skip
COUNTS = (
    "env_steps", "rollout/policy_tokens", "rollout/branch_env_steps",
    "rollout/branch_episodes", "rollout/replay_steps",
)  # fmt: skip


def iteration_rows(mode: str, out: Path) -> list[dict]:
    """The metrics rows of the two training iterations of `mode`'s run."""
    run_creditgym(
        *TRAIN,
        f"rollout.branch.mode={mode}",
        f"credit.estimator={{name: {MODES[mode]}}}",
        f"run.output_dir={out}",
    )
    rows = read_metrics(out)
    return [row for row in rows if "time/rollout" in row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    stamp = stamp_or_exit(parser.parse_args().allow_dirty)
    data, rows = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            iterations = iteration_rows(mode, Path(tmp) / mode)
            first = iterations[0]
            data[mode] = {
                **{key: first.get(key, 0.0) for key in COUNTS},
                "rollout_seconds": [row["time/rollout"] for row in iterations],
            }
            seconds = " / ".join(f"{row['time/rollout']:.1f} s" for row in iterations)
            rows.append([mode, *(f"{data[mode][key]:,.0f}" for key in COUNTS), seconds])
    columns = [
        "rollout.branch.mode", "env steps", "policy tokens", "of which branch steps",
        "continuations trained on", "replay steps", "rollout time (iterations 1 / 2)",
    ]  # fmt: skip
    table = markdown_table(columns, rows)
    path = write_results("branch_costs", stamp, data, "Iteration 1's counts.\n\n" + table)
    print(table, f"\nwritten: {path}", sep="\n")


if __name__ == "__main__":
    main()
