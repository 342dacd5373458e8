"""How much of HouseholdEasy the searching expert solves within the learning benchmark's 8-step
budget (its "tight" setting): the ceiling the task sets, against which a policy's success reads.

    python benchmarks/expert_ceiling.py

Runs ``creditgym eval --env creditgym/HouseholdEasy-v0 --agent expert --episodes 256
--env-kwarg max_steps=8 --env-kwarg expert=search`` on both held-out splits in a child process
(one thread, seconds) and writes ``results/expert_easy_8_steps.{json,md}`` stamped with
`provenance`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from credit_reports import run_creditgym  # noqa: E402
from provenance import markdown_table, stamp_or_exit, write_results  # noqa: E402

EVAL = (
    "eval", "--env", "creditgym/HouseholdEasy-v0", "--agent", "expert", "--episodes", "256",
    "--env-kwarg", "max_steps=8", "--env-kwarg", "expert=search",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    stamp = stamp_or_exit(parser.parse_args().allow_dirty)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "eval.json"
        run_creditgym(*EVAL, "--json", str(out))
        splits = json.loads(out.read_text())
    rows = [
        (s["split"], s["episodes"], f"{s['success']:.1%}", f"{s['mean_steps']:.2f}", s["failed"])
        for s in splits
    ]
    table = markdown_table(["split", "episodes", "success", "mean steps", "failed"], rows)
    path = write_results("expert_easy_8_steps", stamp, splits, table)
    print(table, f"\nwritten: {path}", sep="\n")


if __name__ == "__main__":
    main()
