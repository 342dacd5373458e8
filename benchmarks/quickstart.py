"""The README's main job, timed: `creditgym train configs/quickstart.yaml` as a person runs it.

Runs the command in a fresh process (a fresh output directory, so nothing is resumed), and
writes its wall time and its final results table to benchmarks/results/quickstart.{md,json},
stamped with the commit, the command and the machine's load (see provenance.py):

    python benchmarks/quickstart.py
    python benchmarks/quickstart.py run.seed=1      # any override of the config
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import ROOT, stamp_or_exit, write_results  # noqa: E402

COMMAND = ["creditgym", "train", "configs/quickstart.yaml"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="config overrides, as `creditgym train`")
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)
    with tempfile.TemporaryDirectory(prefix="quickstart_") as out:
        command = [*COMMAND, *args.overrides, f"run.output_dir={out}"]
        started = time.perf_counter()
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "120"},
            check=False,
        )
        minutes = (time.perf_counter() - started) / 60
    if done.returncode != 0:
        print(done.stdout[-2000:] + done.stderr[-2000:], file=sys.stderr)
        return done.returncode
    table = done.stdout[done.stdout.rfind("held-out success") :].strip()
    table = re.sub(rf"{re.escape(out)}", "runs/quickstart", table)
    print(table)
    print(f"\nwall time: {minutes:.1f} min")
    data = {"minutes": round(minutes, 2), "output": table}
    write_results("quickstart", stamp, data, f"```\n{table}\n```\n\nwall time {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
