"""`benchmarks/mutation.py --recheck`: an earlier pass's survivors rerun by name, and what
became of each (mutmut itself is stood in for: a pass takes an hour)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import mutation  # noqa: E402
import provenance  # noqa: E402

PREVIOUS = {
    "provenance": {"commit": "dfc2b82ac3ff", "command": "mutation.py", "date": "2026-12-06"},
    "data": {"not_caught": ["m.f__mutmut_1", "m.f__mutmut_2", "m.g__mutmut_7", "m.h__mutmut_3"]},
}
FOUND = {
    "creditgym/m.py": {
        "m.f__mutmut_1": "killed",
        "m.f__mutmut_2": "equivalent",
        "m.g__mutmut_7": "survived",
        "m.f__mutmut_9": "survived",  # not one of the pass's survivors: not counted
    }
}


def test_recheck_table_gives_each_survivors_status_now():
    text, data = mutation.recheck_table(PREVIOUS, FOUND)
    assert data["mutants"] == {
        "m.f__mutmut_1": "killed",
        "m.f__mutmut_2": "equivalent",
        "m.g__mutmut_7": "survived",
        "m.h__mutmut_3": "gone",  # no longer generated
    }
    assert data["counts"] == {"killed": 1, "equivalent": 1, "survived": 1, "gone": 1}
    assert "4 mutants not caught by the pass at commit dfc2b82ac3ff" in text
    assert "**2 caught**" in text  # killed and equivalent; not survived or gone
    assert "| `m.g__mutmut_7` | survived |" in text


def _ran(command: list[str]) -> subprocess.CompletedProcess:
    """What `subprocess.run` gives back for a command that succeeded."""
    return subprocess.CompletedProcess(command, 0)


def _previous_file(tmp_path: Path, content: dict | str) -> Path:
    path = tmp_path / "mutation.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_recheck_runs_mutmut_on_exactly_the_survivors_and_writes_the_table(tmp_path, monkeypatch):
    calls, written = [], {}
    monkeypatch.setattr(mutation, "changed_since", lambda commit, modules: [])
    monkeypatch.setattr(mutation, "statuses", lambda modules: FOUND)
    monkeypatch.setattr(mutation.subprocess, "run", lambda cmd, **_: calls.append(cmd) or _ran(cmd))
    monkeypatch.setattr(
        mutation, "write_results", lambda name, stamp, data, text: written.update(name=name)
    )
    assert mutation.recheck(_previous_file(tmp_path, PREVIOUS), 2, {}) == 0
    assert calls == [["mutmut", "run", "--max-children", "2", *PREVIOUS["data"]["not_caught"]]]
    assert written == {"name": "mutation_recheck"}


@pytest.mark.parametrize("content", ["{not json", {"data": {}}, {"provenance": {}, "data": []}])
def test_recheck_of_a_file_that_is_not_a_results_file_is_one_line(tmp_path, capsys, content):
    assert mutation.recheck(_previous_file(tmp_path, content), 1, {}) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a mutation results file" in err
    assert err.count("\n") == 1


def test_recheck_refuses_modules_changed_since_the_pass(tmp_path, capsys, monkeypatch):
    """mutmut numbers mutants within a function: after an edit, a name may be another mutant."""
    changed = ["creditgym/train/units.py"]
    monkeypatch.setattr(mutation, "changed_since", lambda commit, modules: changed)
    monkeypatch.setattr(mutation.subprocess, "run", pytest.fail)  # mutmut never starts
    assert mutation.recheck(_previous_file(tmp_path, PREVIOUS), 1, {}) == 2
    err = capsys.readouterr().err
    assert "creditgym/train/units.py changed since commit dfc2b82ac3ff" in err


def test_changed_since_names_an_edited_module_and_an_unknown_commit_in_one_line(
    tmp_path, monkeypatch
):
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True)
        return done.stdout.strip()

    git("init", "-q")
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    commit = git("rev-parse", "HEAD")
    monkeypatch.setattr(provenance, "ROOT", tmp_path)  # where git runs
    assert mutation.changed_since(commit, ["a.py", "b.py"]) == []
    (tmp_path / "b.py").write_text("x = 2\n")
    assert mutation.changed_since(commit, ["a.py", "b.py"]) == ["b.py"]
    with pytest.raises(SystemExit, match="cannot compare with commit 0{12}"):
        mutation.changed_since("0" * 12, ["a.py"])


@pytest.mark.parametrize(
    ("args", "written"),
    [
        (["--modules", "creditgym/credit/estimators/grpo.py"], None),  # a subset: printed only
        (["--modules", "creditgym/credit/estimators/grpo.py", "--name", "part"], "part"),
        ([], "mutation"),  # every module: the README's table
    ],
)
def test_report_writes_a_results_file_for_every_module_or_a_named_subset(
    monkeypatch, args, written
):
    names = []
    monkeypatch.setattr(mutation, "statuses", lambda modules: {m: {} for m in modules})
    monkeypatch.setattr(mutation, "write_results", lambda name, *rest: names.append(name))
    argv = ["mutation.py", "--report-only", "--allow-dirty", *args]
    monkeypatch.setattr(sys, "argv", argv)
    assert mutation.main() == 0
    assert names == ([written] if written else [])


def test_recheck_writes_under_the_name_given(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(mutation, "changed_since", lambda commit, modules: [])
    monkeypatch.setattr(mutation, "statuses", lambda modules: FOUND)
    monkeypatch.setattr(mutation.subprocess, "run", lambda cmd, **kw: _ran(cmd))
    monkeypatch.setattr(mutation, "write_results", lambda name, *rest: written.append(name))
    previous = _previous_file(tmp_path, PREVIOUS)
    monkeypatch.setattr(sys, "argv", ["mutation.py", "--recheck", str(previous), "--name", "again"])
    monkeypatch.setattr(mutation, "stamp_or_exit", lambda allow_dirty: {})
    assert mutation.main() == 0
    assert written == ["again"]
