"""benchmarks/remote_env.py runs end to end on a tiny budget (the lead runs the full one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("openenv")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_remote_env_benchmark_prints_its_table_on_a_tiny_budget():
    done = subprocess.run(
        [sys.executable, "benchmarks/remote_env.py", "--sessions", "1,2", "--seconds", "0.2"]
        + ["--memory-steps", "40", "--no-save"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 1 |")]
    assert rows and "x |" in rows[0]
    assert "server RSS over 4" in done.stdout and "MiB after warm-up" in done.stdout
