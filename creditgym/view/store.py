"""Episode files for the viewer: a line-offset index, filters and pages, records on demand.

The files are never loaded whole: indexing reads them line by line once, keeping for each episode
its byte offset, length and the few fields the list shows and filters on (about 300 bytes an
episode); a full record is read back from its offset when a page asks for it. A file that grows
(a run still training) is indexed from where the last look stopped; one that shrank or was
replaced (rotated) is indexed again. Lines that are not JSON objects of a known schema version
are counted and skipped; a last line without its newline (a run killed mid-write) is left for
later, as the writer may still be finishing it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from creditgym.episode_log import EPISODES_FILE, SCHEMA_VERSION

__all__ = ["EpisodeStore", "episode_summary", "matches", "MAX_PAGE", "TASK_TEXT_LIMIT"]

MAX_PAGE = 500  # episodes per list page at most
TASK_TEXT_LIMIT = 300  # characters of the task kept in the index for search and the list
METRICS_FILE = "metrics.jsonl"
MAX_METRIC_ROWS = 100_000
#: Longest line read; a longer one is skipped unparsed (an episode record is kilobytes, a
#: hostile line could be gigabytes).
MAX_LINE_BYTES = 8 * 1024 * 1024
#: Deepest nesting of a record's lists and objects; a deeper one is skipped (the page, the
#: export and `jsonable` walk records recursively).
MAX_DEPTH = 64


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests lists and objects more than `limit` levels (iteratively: no
    recursion of our own on hostile input)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def record_problem(record: Any) -> str | None:
    """Why a parsed line is not an episode record the viewer can show, or None.

    The fields the list sorts, filters and counts on must have their types (an iteration
    that is a list, or a string in one record and a number in the next, would break sorting
    for every episode), and turns must be objects.
    """
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    turns = record.get("turns")
    if not isinstance(turns, list) or not all(isinstance(turn, dict) for turn in turns):
        return "'turns' is not a list of objects"
    iteration = record.get("iteration")
    if iteration is not None and not (isinstance(iteration, int) and _is_number(iteration)):
        return f"'iteration' is {type(iteration).__name__}, not an integer"
    for key in ("return", "length"):
        if record.get(key) is not None and not _is_number(record[key]):
            return f"'{key}' is {type(record[key]).__name__}, not a number"
    for key in ("success", "failed"):
        if record.get(key) is not None and not isinstance(record[key], bool):
            return f"'{key}' is {type(record[key]).__name__}, not true or false"
    if _too_deep(record):
        return f"nested more than {MAX_DEPTH} levels deep"
    return None


def read_lines(f: Any, limit: int = MAX_LINE_BYTES) -> Any:
    """The lines of binary file `f` as ``(line, skipped)``: a line over `limit` bytes comes
    back as ``(b"", its length)`` after being read past in pieces, never held whole. A last
    line without its newline is returned as it is (the caller decides what a torn line is)."""
    while True:
        line = f.readline(limit + 1)
        if len(line) <= limit or line.endswith(b"\n"):
            if not line:
                return
            yield line, 0
            continue
        skipped = len(line)
        while not line.endswith(b"\n"):
            line = f.readline(1 << 20)
            if not line:
                break
            skipped += len(line)
        yield b"", skipped


def episode_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the episode list shows and filters on, from a full record."""
    return {
        "iteration": record.get("iteration"),
        "source": str(record.get("source", "")),
        "policy": str(record.get("policy", "")),
        "env_id": str(record.get("env_id", "")),
        "task_id": str(record.get("task_id", "")),
        "agent_id": str(record.get("agent_id", "")),
        "task": str(record.get("task", ""))[:TASK_TEXT_LIMIT],
        "task_type": str(record.get("task_type", "")),
        "success": bool(record.get("success")),
        "failed": bool(record.get("failed")),
        # why (crash, timeout, ...): a reason word, cut short in case the file is hostile
        "failure": str(record.get("failure") or ("error" if record.get("failed") else ""))[:40],
        "return": record.get("return"),
        "length": record.get("length"),
        # the G episodes of one task in one iteration; in eval, every agent's on that task
        "group": json.dumps(
            [record.get("source"), record.get("iteration"), record.get("group_id")]
        ),
    }


def matches(summary: Mapping[str, Any], filters: Mapping[str, str]) -> bool:
    """Whether an episode passes the list's filters (the page's JavaScript does the same).

    Filters (all optional, "" = any): ``iteration`` (a number, or "eval"), ``outcome``
    (``success``, ``failure`` or ``failed``), ``task_type``, ``env``, ``agent``, ``policy``,
    and ``q``: case-insensitive text that the task or the task id must contain.
    """
    iteration = filters.get("iteration", "")
    if iteration:
        shown = "eval" if summary["iteration"] is None else str(summary["iteration"])
        if shown != iteration:
            return False
    outcome = filters.get("outcome", "")
    if outcome == "success" and not summary["success"]:
        return False
    if outcome == "failure" and (summary["success"] or summary["failed"]):
        return False
    if outcome == "failed" and not summary["failed"]:
        return False
    for key, name in (("task_type", "task_type"), ("env", "env_id"), ("agent", "agent_id")):
        if filters.get(key, "") and summary[name] != filters[key]:
            return False
    if filters.get("policy", "") and summary["policy"] != filters["policy"]:
        return False
    query = filters.get("q", "").strip().lower()
    if query and query not in summary["task"].lower() and query not in summary["task_id"].lower():
        return False
    return True


@dataclass
class _Indexed:
    """Where indexing of one file stands."""

    path: Path
    inode: int = -1
    offset: int = 0  # bytes indexed so far (always at a line start)
    line: int = 0  # lines indexed so far


@dataclass
class _Entry:
    file: int
    offset: int
    size: int
    summary: dict[str, Any]


@dataclass
class EpisodeStore:
    """The episodes of a run directory (``episodes.1.jsonl`` then ``episodes.jsonl``) or of one
    episode file, and the run's ``metrics.jsonl`` beside them.

    Thread-safe: the server answers requests from several threads.
    """

    source: Path
    files: list[Path] = field(init=False)
    metrics_path: Path | None = field(init=False)
    bad_lines: int = field(init=False, default=0)
    unknown_version: int = field(init=False, default=0)
    bad_examples: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.source = Path(self.source)
        if self.source.is_dir():
            main = self.source / EPISODES_FILE
            self.metrics_path = self.source / METRICS_FILE
        elif self.source.is_file() or self.source.suffix == ".jsonl":
            main = self.source
            self.metrics_path = self.source.with_name(METRICS_FILE)
        else:
            raise FileNotFoundError(
                f"{self.source} is neither a run directory nor an episode file; give a run "
                f"directory (with {EPISODES_FILE}) or an episodes .jsonl file"
            )
        rotated = main.with_name(f"{main.stem}.1{main.suffix or '.jsonl'}")
        self.files = [rotated, main]
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._indexed = [_Indexed(path) for path in self.files]
        self._entries: list[_Entry] = []
        self.bad_lines = self.unknown_version = 0
        self.bad_examples = []
        self.bad_metric_rows = 0
        self.torn_tail = False

    # ---- indexing ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Index what was appended since the last look (everything again after a rotation)."""
        with self._lock:
            stats = [_stat(state.path) for state in self._indexed]
            replaced = any(
                state.inode not in (-1, inode) or size < state.offset
                for state, (inode, size) in zip(self._indexed, stats)
            )
            if replaced:
                self._reset()
            self.torn_tail = False
            for number, (state, (inode, size)) in enumerate(zip(self._indexed, stats)):
                if inode == -1:
                    continue
                state.inode = inode
                if size > state.offset:
                    self._index_file(number, state)

    def _index_file(self, number: int, state: _Indexed) -> None:
        with state.path.open("rb") as f:
            f.seek(state.offset)
            for line, skipped in read_lines(f):
                if skipped:
                    state.line += 1
                    state.offset += skipped
                    self._skip(state, f"longer than {MAX_LINE_BYTES // (1 << 20)} MiB")
                    continue
                if not line.endswith(b"\n"):  # torn or still being written: not yet
                    self.torn_tail = True
                    break
                state.line += 1
                self._index_line(number, state, line)
                state.offset += len(line)

    def _skip(self, state: _Indexed, why: str) -> None:
        self.bad_lines += 1
        if len(self.bad_examples) < 5:
            self.bad_examples.append(f"{state.path.name} line {state.line}: {why}")

    def _index_line(self, number: int, state: _Indexed, line: bytes) -> None:
        if not line.strip():
            return
        try:
            record = json.loads(line)
        except RecursionError:
            self._skip(state, "JSON nested too deeply to read")
            return
        except ValueError as error:  # invalid UTF-8 is a ValueError too
            self._skip(state, f"not JSON ({type(error).__name__})")
            return
        problem = record_problem(record)
        if problem is not None:
            self._skip(state, problem)
            return
        if record.get("schema_version") != SCHEMA_VERSION:
            self.unknown_version += 1
            return
        self._entries.append(_Entry(number, state.offset, len(line), episode_summary(record)))

    # ---- queries -----------------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        """Counts, the values each filter can take, and notices about skipped lines."""
        self.refresh()
        self.metrics()  # counts its bad lines
        with self._lock:
            summaries = [entry.summary for entry in self._entries]
            notices = []
            if self.bad_lines:
                notices.append(
                    f"{self.bad_lines} line(s) were not episode records and were skipped "
                    f"(first: {'; '.join(self.bad_examples)})"
                )
            if self.bad_metric_rows:
                notices.append(
                    f"{self.bad_metric_rows} line(s) of {METRICS_FILE} were not rows of numbers "
                    "and were skipped"
                )
            if self.unknown_version:
                notices.append(
                    f"{self.unknown_version} record(s) of a schema version other than "
                    f"{SCHEMA_VERSION} were skipped"
                )
            if self.torn_tail:
                notices.append("the last line is incomplete (a run still writing, or killed)")

        def values(key: str) -> list[Any]:
            return sorted({s[key] for s in summaries if s[key] not in ("", None)}, key=str)

        iterations = sorted({s["iteration"] for s in summaries if s["iteration"] is not None})
        return {
            "source": str(self.source),
            "episodes": len(summaries),
            "iterations": [str(i) for i in iterations]
            + (["eval"] if any(s["iteration"] is None for s in summaries) else []),
            "task_types": values("task_type"),
            "envs": values("env_id"),
            "agents": values("agent_id"),
            "policies": values("policy"),
            "has_metrics": bool(self.metrics_path and self.metrics_path.is_file()),
            "notices": notices,
            "schema_version": SCHEMA_VERSION,
        }

    def page(self, filters: Mapping[str, str], offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """One page of the episodes that pass `filters` (see `matches`), newest iteration first."""
        self.refresh()
        limit = max(1, min(int(limit), MAX_PAGE))
        offset = max(0, int(offset))
        with self._lock:
            hits = [
                (i, entry.summary)
                for i, entry in enumerate(self._entries)
                if matches(entry.summary, filters)
            ]
        hits.reverse()  # the latest episodes first
        rows = [{"id": i, **summary} for i, summary in hits[offset : offset + limit]]
        return {"total": len(hits), "offset": offset, "limit": limit, "episodes": rows}

    def episode(self, episode_id: int) -> dict[str, Any]:
        """The full record of an episode by its id (its place in the index)."""
        with self._lock:
            if not 0 <= episode_id < len(self._entries):
                raise KeyError(f"no episode {episode_id}")
            entry = self._entries[episode_id]
            path = self._indexed[entry.file].path
        with path.open("rb") as f:
            f.seek(entry.offset)
            line = f.read(entry.size)
        try:  # indexed as a good record; the file may have been rewritten since
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if record_problem(record) is not None:
            raise KeyError(f"episode {episode_id} changed on disk; reload the page")
        return {"id": episode_id, **record}

    def group(self, episode_id: int) -> list[dict[str, Any]]:
        """Every episode of the group `episode_id` belongs to, in file order (full records)."""
        with self._lock:
            if not 0 <= episode_id < len(self._entries):
                raise KeyError(f"no episode {episode_id}")
            key = self._entries[episode_id].summary["group"]
            members = [i for i, e in enumerate(self._entries) if e.summary["group"] == key]
        return [self.episode(i) for i in members]

    def summaries(self) -> list[dict[str, Any]]:
        """Every indexed episode's summary with its id (for an export)."""
        self.refresh()
        with self._lock:
            return [{"id": i, **entry.summary} for i, entry in enumerate(self._entries)]

    def metrics(self) -> list[dict[str, Any]]:
        """The rows of ``metrics.jsonl`` (bad lines skipped), or [] when there is none."""
        if self.metrics_path is None or not self.metrics_path.is_file():
            return []
        rows, bad = [], 0
        with self.metrics_path.open("rb") as f:
            for line, skipped in read_lines(f):
                row = None if skipped else _metric_row(line)
                if row is None:
                    bad += bool(skipped or line.strip())
                    continue
                rows.append(row)
                if len(rows) >= MAX_METRIC_ROWS:
                    break
        with self._lock:
            self.bad_metric_rows = bad
        return rows


def _metric_row(line: bytes) -> dict[str, Any] | None:
    """One row of ``metrics.jsonl``: an object of numbers (strings, booleans and nulls kept),
    with an integer ``iteration`` if any; None for anything else."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(row, dict):
        return None
    if not all(value is None or isinstance(value, (str, int, float)) for value in row.values()):
        return None
    iteration = row.get("iteration")
    if iteration is not None and (isinstance(iteration, bool) or not isinstance(iteration, int)):
        return None
    return row


def _stat(path: Path) -> tuple[int, int]:
    """(inode, size) of a file, (-1, 0) when it is not there."""
    try:
        stat = os.stat(path)
    except OSError:
        return -1, 0
    return stat.st_ino, stat.st_size
