"""benchmarks/credit_curves.py keeps each finished run, keyed by the training code and the
resolved config, so a rerun of the campaign continues where the last one stopped."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import credit_curves  # noqa: E402


def _args(**overrides) -> argparse.Namespace:
    values = dict(iterations=2, eval_every=1, eval_episodes=4, set=["run.threads=1"])
    return argparse.Namespace(**{**values, **overrides})


def _fake_train(calls: list[str]):
    """Stands in for `train`: writes the metrics a run would, two evaluations."""

    def train(config):
        calls.append(config.run.output_dir)
        out = Path(config.run.output_dir)
        out.mkdir(parents=True)
        rows = [
            {"env_steps": 0, "eval/valid_seen/success": 0.1, "eval/valid_unseen/success": 0.0},
            {"env_steps": 90, "credit/step_grouped_turn_share": 0.5},
            {"env_steps": 100, "eval/valid_seen/success": 0.3, "eval/valid_unseen/success": 0.2},
        ]
        (out / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        return SimpleNamespace(seconds=120.0)

    return train


def test_a_finished_run_is_loaded_not_trained_again(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(credit_curves, "STORE", tmp_path)
    monkeypatch.setattr(credit_curves, "train", _fake_train(calls))
    first = credit_curves.run("easy", "grpo", 0, _args(), code="abc")
    again = credit_curves.run("easy", "grpo", 0, _args(), code="abc")
    assert len(calls) == 1 and again == first
    assert first == {
        "steps": [0, 100],
        "success": {"valid_seen": [0.1, 0.3], "valid_unseen": [0.0, 0.2]},
        "step_grouped_share": 0.5,
        "minutes": 2.0,
    }


def test_other_code_another_seed_or_another_config_trains_anew(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(credit_curves, "STORE", tmp_path)
    monkeypatch.setattr(credit_curves, "train", _fake_train(calls))
    credit_curves.run("easy", "grpo", 0, _args(), code="abc")
    credit_curves.run("easy", "grpo", 0, _args(), code="def")  # the training code changed
    credit_curves.run("easy", "grpo", 1, _args(), code="abc")
    credit_curves.run("easy", "grpo", 0, _args(iterations=3), code="abc")
    credit_curves.run("easy", "gigpo", 0, _args(), code="abc")
    assert len(set(calls)) == len(calls) == 5


def test_a_run_another_process_trains_is_waited_for_not_trained_twice(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(credit_curves, "STORE", tmp_path)
    monkeypatch.setattr(credit_curves, "train", _fake_train(calls))
    first = credit_curves.run("easy", "grpo", 0, _args(), code="abc")
    (run_dir,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    summary = (run_dir / "summary.json").read_text()
    (run_dir / "summary.json").unlink()  # as if the run were still training ...
    lock = tmp_path / f"{run_dir.name}.lock"
    lock.write_text(str(os.getpid()))  # ... in a live process

    def other_process_finishes(seconds):
        (run_dir / "summary.json").write_text(summary)
        lock.unlink()

    monkeypatch.setattr(credit_curves.time, "sleep", other_process_finishes)
    assert credit_curves.run("easy", "grpo", 0, _args(), code="abc") == first
    assert len(calls) == 1 and not lock.exists()
