"""The benchmarks' run store: a finished run is loaded, never trained twice, whether a rerun or
another process asks for it; a run that fails stores nothing; runs are keyed on the committed
training code, and uncommitted training code is refused in one line unless allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance  # noqa: E402
import run_store  # noqa: E402
import smollm2_results  # noqa: E402

from creditgym.measure.evaluate import SplitResult  # noqa: E402


def _counting_train(calls: list[Path]):
    def train(run_dir: Path) -> dict:
        calls.append(run_dir)
        run_dir.mkdir()
        return {"success": 0.5}

    return train


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A git repository holding every path of the training code, committed, as the key's root."""
    for path in (
        "creditgym/train.py",
        "configs/a.yaml",
        "pyproject.toml",
        "benchmarks/train_runs.py",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(f"# {path}\n")
    (tmp_path / "README.md").write_text("readme\n")
    _git(tmp_path, "init", "-q")
    _commit(tmp_path, "first")
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    monkeypatch.setattr(run_store, "ROOT", tmp_path)
    return tmp_path


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def _commit(root: Path, message: str) -> None:
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)


def test_the_key_follows_the_committed_training_code_only(repo):
    key = run_store.code_key(allow_dirty=False)
    assert len(key) == 12
    (repo / "README.md").write_text("another readme\n")
    _commit(repo, "docs")
    assert run_store.code_key(allow_dirty=False) == key
    (repo / "creditgym" / "train.py").write_text("# changed\n")
    _commit(repo, "code")
    assert run_store.code_key(allow_dirty=False) != key


def test_uncommitted_training_code_is_refused_unless_allowed_and_then_keyed_apart(repo):
    clean = run_store.code_key(allow_dirty=False)
    (repo / "creditgym" / "train.py").write_text("# edited\n")
    with pytest.raises(provenance.DirtyTree):
        run_store.code_key(allow_dirty=False)
    edited = run_store.code_key(allow_dirty=True)
    assert edited.startswith(f"{clean}+dirty-")
    assert run_store.code_key(allow_dirty=True) == edited  # a rerun finds its runs
    (repo / "creditgym" / "train.py").write_text("# edited again\n")
    assert run_store.code_key(allow_dirty=True) not in (edited, clean)


def test_a_training_module_git_does_not_track_yet_is_named_in_one_line(repo, capsys):
    clean = run_store.code_key(allow_dirty=False)
    (repo / "creditgym" / "new_module.py").write_text("x = 1\n")
    with pytest.raises(SystemExit) as exit_info:
        run_store.code_key_or_exit(allow_dirty=False)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "creditgym/new_module.py" in err and "--allow-dirty" in err
    # allowed, its content is in the key: another version of the new file is another key
    first = run_store.code_key(allow_dirty=True)
    assert first.startswith(f"{clean}+dirty-")
    (repo / "creditgym" / "new_module.py").write_text("x = 2\n")
    assert run_store.code_key(allow_dirty=True) != first


def test_a_finished_run_is_loaded_and_a_failed_one_trained_again(tmp_path):
    calls: list[Path] = []
    run_dir = tmp_path / "grpo-seed0-code-hash"

    def crash(run_dir):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        run_store.stored_run(run_dir, crash)
    assert not run_dir.with_name(f"{run_dir.name}.lock").exists()  # released by the crash

    assert run_store.stored_run(run_dir, _counting_train(calls)) == {"success": 0.5}
    assert run_store.stored_run(run_dir, _counting_train(calls)) == {"success": 0.5}
    assert calls == [run_dir]
    assert json.loads((run_dir / "summary.json").read_text()) == {"success": 0.5}


def test_a_run_another_live_process_holds_is_waited_for(tmp_path, monkeypatch):
    run_dir = tmp_path / "grpo-seed0-code-hash"
    lock = run_dir.with_name(f"{run_dir.name}.lock")
    lock.write_text(str(os.getpid()))  # a live process trains it
    waits: list[float] = []

    def other_process_finishes_after_two_polls(seconds):
        waits.append(seconds)
        if len(waits) == 2:
            run_dir.mkdir()
            (run_dir / "summary.json").write_text(json.dumps({"success": 0.25}))
            lock.unlink()

    monkeypatch.setattr(run_store.time, "sleep", other_process_finishes_after_two_polls)
    calls: list[Path] = []
    assert run_store.stored_run(run_dir, _counting_train(calls)) == {"success": 0.25}
    assert calls == [] and waits == [run_store.LOCK_POLL_SECONDS] * 2


def _evals(success: float) -> dict[str, float]:
    return {"eval/valid_seen/success": success, "eval/valid_unseen/success": success}


def _results(success: float) -> list[SplitResult]:
    return [
        SplitResult("policy", s, 32, success, success, 4.0) for s in ("valid_seen", "valid_unseen")
    ]


def _fake_train(calls: list[str]):
    """Stands in for `train` on the SmolLM2 config: the warm start (0 iterations) evaluates the
    model before (0%) and after (25%) it; a method's run resumes from the warm start's metrics
    and checkpoint and adds one iteration, evaluated after (50%)."""

    def train(config):
        calls.append(config.run.output_dir)
        out = Path(config.run.output_dir)
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        metrics = out / "metrics.jsonl"
        if config.train.iterations == 0:
            rows = [{"iteration": 0, **_evals(0.0)}, {"iteration": 0, **_evals(0.25)}]
        else:
            rows = [json.loads(line) for line in metrics.read_text().splitlines()]
            assert len(rows) == 2, "a method's run continues from the warm start's rows"
            rows += [
                {"iteration": 1, "time/rollout": 3.0, "time/credit": 1.0, "time/update": 2.0}
                | {"rollout/success": 0.75, "update/steps": 2},
                {"iteration": 1, **_evals(0.5)},
            ]
        metrics.write_text("".join(json.dumps(row) + "\n" for row in rows))
        (out / "checkpoints" / f"iter_{config.train.iterations:06d}").mkdir()
        return SimpleNamespace(
            iterations=config.train.iterations,
            env_steps=40 * config.train.iterations,
            random_baseline=_results(0.125),
            initial=_results(0.0),
            after_warm_start=_results(0.25) if config.train.iterations else [],
            final=_results(0.5 if config.train.iterations else 0.25),
        )

    return train


def test_the_smollm2_table_is_assembled_from_stored_runs_and_stamped(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(smollm2_results, "STORE", tmp_path / "runs")
    monkeypatch.setattr(smollm2_results, "train", _fake_train(calls))
    written = {}
    monkeypatch.setattr(
        smollm2_results, "write_results", lambda name, stamp, data, text: written.update(locals())
    )
    monkeypatch.setattr(smollm2_results, "code_key_or_exit", lambda allow_dirty: "code")
    argv = [
        str(ROOT / "benchmarks" / "smollm2_results.py"),
        "--seeds",
        "0,1",
        "--methods",
        "grpo,gigpo",
        "--allow-dirty",
        "train.iterations=6",  # the methods' budget; the warm starts still train 0 iterations
    ]
    monkeypatch.setattr(sys, "argv", argv)
    smollm2_results.main()
    smollm2_results.main()  # the second time from the store

    # one warm start per seed, shared by both methods; nothing trained the second time
    assert [Path(c).name.split("-code-")[0] for c in calls] == [
        "warm-seed0",
        "grpo-seed0",
        "gigpo-seed0",
        "warm-seed1",
        "grpo-seed1",
        "gigpo-seed1",
    ]
    assert written["name"] == "smollm2_household"
    assert written["stamp"]["command"] == "python benchmarks/smollm2_results.py " + " ".join(
        argv[1:]
    )
    runs = written["data"]["runs"]
    assert [(r["method"], r["seed"], r["train_success"]) for r in runs] == [
        ("grpo", 0, [0.75]),
        ("gigpo", 0, [0.75]),
        ("grpo", 1, [0.75]),
        ("gigpo", 1, [0.75]),
    ]
    assert [Path(r["warm_start_run"]).name.split("-code-")[0] for r in runs] == [
        "warm-seed0",
        "warm-seed0",
        "warm-seed1",
        "warm-seed1",
    ]
    text = written["text"]
    assert "| random agent | 12.5% (12%, 12%) | 12.5% (12%, 12%) | 0, 1 |" in text
    assert "| SmolLM2, untrained | 0.0% (0%, 0%) | 0.0% (0%, 0%) | 0, 1 |" in text
    assert "| SmolLM2, warm start only | 25.0% (25%, 25%) | 25.0% (25%, 25%) | 0, 1 |" in text
    assert "| SmolLM2 + warm start + GiGPO | 50.0% (50%, 50%) | 50.0% (50%, 50%) | 0, 1 |" in text


def test_a_run_in_a_store_linked_from_elsewhere_is_named_relative_to_the_repository(
    tmp_path, monkeypatch
):
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    (repo / "benchmarks" / "results").mkdir(parents=True)
    elsewhere.mkdir()
    (repo / "benchmarks" / "results" / "runs").symlink_to(elsewhere)  # a shared run store
    monkeypatch.setattr(smollm2_results, "ROOT", repo)
    run = repo / "benchmarks" / "results" / "runs" / "warm-seed0"
    assert smollm2_results._relative(run) == "benchmarks/results/runs/warm-seed0"
    assert smollm2_results._relative(tmp_path / "other") == str(tmp_path / "other")
