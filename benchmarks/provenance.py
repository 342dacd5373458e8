"""Where a benchmark's figures came from: the commit, the command, the date and the machine.

Every runner that writes a results file the README cites stamps it with `provenance()`:

- ``commit``: the clean commit the code was at. A tree with uncommitted changes is refused
  (`DirtyTree`), since no one could rerun what produced the figures, unless the runner was
  told ``--allow-dirty``; then the commit is recorded as ``<sha>+dirty``.
- ``command``: the command line as the README prints it (``python benchmarks/NAME.py ...``).
- ``date`` (UTC), ``load`` (the 1/5/15-minute load averages when it started: a figure from a
  machine busy with other jobs is not a measurement), ``cores``, ``python``.

`tests/test_readme_figures.py` checks that every results file the README cites exists and
that the command it recorded is one the README prints.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

__all__ = ["RESULTS", "DirtyTree", "provenance", "write_results"]


class DirtyTree(RuntimeError):
    """The working tree has uncommitted changes and the runner was not told to allow them."""


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.rstrip()


def commit(allow_dirty: bool = False) -> str:
    """The current commit; ``<sha>+dirty`` when allowed, `DirtyTree` when not."""
    sha = _git("rev-parse", "--short=12", "HEAD")
    # results files being written are the one change a rerun may leave behind
    changes = [
        line
        for line in _git("status", "--porcelain", "--untracked-files=no").splitlines()
        if not line[3:].startswith("benchmarks/results/")
    ]
    if not changes:
        return sha
    if not allow_dirty:
        raise DirtyTree(
            f"the working tree has uncommitted changes ({len(changes)} files, e.g. "
            f"{changes[0][3:]}); commit them so the figures can be rerun, or pass "
            "--allow-dirty to record the commit as dirty"
        )
    return sha + "+dirty"


def provenance(argv: list[str] | None = None, allow_dirty: bool = False) -> dict[str, Any]:
    """The stamp a results file carries (see the module docstring)."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else Path(argv[0])
    return {
        "commit": commit(allow_dirty),
        "command": shlex.join(["python", str(shown), *argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def write_results(
    name: str, stamp: dict[str, Any], data: Any, table: str, directory: Path = RESULTS
) -> Path:
    """Write ``results/NAME.json`` (the stamp and the data) and ``results/NAME.md`` (the
    command, the stamp and `table`) into `directory`; returns the JSON path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"provenance": stamp, "data": data}, indent=2) + "\n")
    header = (
        f"`{stamp['command']}`\n\ncommit {stamp['commit']}, {stamp['date']}, load "
        f"{' / '.join(map(str, stamp['load']))} on {stamp['cores']} cores, Python "
        f"{stamp['python']}\n\n"
    )
    (directory / f"{name}.md").write_text(header + table.rstrip() + "\n")
    return path
