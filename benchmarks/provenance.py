"""Where a benchmark's figures came from: the commit, the command, the date and the machine.

Every runner that writes a results file the README cites stamps it with `provenance()`:

- ``commit``: the clean commit the code was at. A tree with uncommitted changes is refused
  (`DirtyTree`), since no one could rerun what produced the figures, unless the runner was
  told ``--allow-dirty``; then the commit is recorded as ``<sha>+dirty``.
- ``command``: the command line as the README prints it (``python benchmarks/NAME.py ...``).
- ``date`` (UTC), ``load`` (the 1/5/15-minute load averages when it started: a figure from a
  machine busy with other jobs is not a measurement), ``cores``, ``python``.

A runner takes the stamp with `stamp_or_exit` before it measures anything, builds its table
with `markdown_table`, and writes both with `write_results`.

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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

__all__ = [
    "RESULTS",
    "DirtyTree",
    "markdown_table",
    "git",
    "provenance",
    "stamp_existing",
    "stamp_or_exit",
    "write_results",
]


class DirtyTree(RuntimeError):
    """The working tree has uncommitted changes and the runner was not told to allow them."""


def git(*args: str) -> str:
    """The output of ``git ARGS`` run in the repository (trailing whitespace stripped)."""
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.rstrip()


def commit(allow_dirty: bool = False) -> str:
    """The current commit; ``<sha>+dirty`` when allowed, `DirtyTree` when not."""
    sha = git("rev-parse", "--short=12", "HEAD")
    # results files being written are the one change a rerun may leave behind
    changes = [
        line
        for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
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


def stamp_or_exit(allow_dirty: bool = False, argv: list[str] | None = None) -> dict[str, Any]:
    """`provenance()` for a runner's ``main``: on a dirty tree that was not allowed, one
    ``error: ...`` line on stderr and exit status 2 (`SystemExit`), not a traceback."""
    try:
        return provenance(argv, allow_dirty=allow_dirty)
    except DirtyTree as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def markdown_table(
    columns: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None
) -> str:
    """A markdown table of `rows` (each cell shown with ``str``) under the header `columns`;
    `align` has one letter per column, ``l`` or ``r`` (default: the first column left and the
    rest right, as numbers read)."""
    align = align or "l" + "r" * (len(columns) - 1)
    if len(align) != len(columns):
        raise ValueError(f"{len(columns)} columns but {len(align)} alignments ({align!r})")
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "".join("---:|" if a == "r" else "---|" for a in align),
    ]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def write_results(
    name: str, stamp: dict[str, Any], data: Any, table: str, directory: Path = RESULTS
) -> Path:
    """Write ``results/NAME.json`` (the stamp and the data) and ``results/NAME.md`` (the
    command, the stamp and `table`) into `directory`; returns the JSON path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"provenance": stamp, "data": data}, indent=2) + "\n")
    (directory / f"{name}.md").write_text(_header(stamp) + table.rstrip() + "\n")
    return path


def stamp_existing(stamp: dict[str, Any], json_path: Path, markdown_path: Path) -> None:
    """Stamp results another program wrote (a JSON object and its markdown): the JSON gains a
    ``provenance`` key, the markdown the stamp's header above its own text."""
    data = json.loads(json_path.read_text())
    if not isinstance(data, dict):
        raise TypeError(f"{json_path} holds a {type(data).__name__}, not a JSON object")
    json_path.write_text(json.dumps({"provenance": stamp, **data}, indent=2) + "\n")
    markdown_path.write_text(_header(stamp) + markdown_path.read_text())


def _header(stamp: dict[str, Any]) -> str:
    return (
        f"`{stamp['command']}`\n\ncommit {stamp['commit']}, {stamp['date']}, load "
        f"{' / '.join(map(str, stamp['load']))} on {stamp['cores']} cores, Python "
        f"{stamp['python']}\n\n"
    )
