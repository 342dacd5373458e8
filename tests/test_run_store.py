"""The benchmarks' run store: a finished run is loaded, never trained twice, whether a rerun or
another process asks for it; a run that fails stores nothing."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import run_store  # noqa: E402
import smollm2_results  # noqa: E402

from creditgym.measure.evaluate import SplitResult  # noqa: E402


def _counting_train(calls: list[Path]):
    def train(run_dir: Path) -> dict:
        calls.append(run_dir)
        run_dir.mkdir()
        return {"success": 0.5}

    return train


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
    monkeypatch.setattr(smollm2_results, "code_key", lambda allow_dirty: "code")
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
