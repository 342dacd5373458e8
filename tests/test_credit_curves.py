"""benchmarks/credit_curves.py keeps each finished run, keyed by the training code and the
resolved config, so a rerun of the campaign continues where the last one stopped."""

from __future__ import annotations

import argparse
import json
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
            {"env_steps": 40, "rollout/turns": 4.0, "rollout/success": 0.0},
            {"env_steps": 90, "credit/step_grouped_turn_share": 0.5}
            | {"rollout/turns": 6.0, "rollout/success": 0.5},
            {"env_steps": 100, "eval/valid_seen/success": 0.3, "eval/valid_unseen/success": 0.2},
        ]
        (out / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        return SimpleNamespace(seconds=120.0)

    return train


# what `run` returns for `_fake_train`'s run: its summary and its rollouts' figures
SUMMARY = {
    "steps": [0, 100],
    "success": {"valid_seen": [0.1, 0.3], "valid_unseen": [0.0, 0.2]},
    "step_grouped_share": 0.5,
    "minutes": 2.0,
    "turns_last_quarter": 6.0,
    "train_success_first_quarter": 0.0,
    "train_success_last_quarter": 0.5,
    "env_steps": 90,
}


def test_a_finished_run_is_loaded_not_trained_again(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(credit_curves, "STORE", tmp_path)
    monkeypatch.setattr(credit_curves, "train", _fake_train(calls))
    first = credit_curves.run("easy", "grpo", 0, _args(), code="abc")
    again = credit_curves.run("easy", "grpo", 0, _args(), code="abc")
    assert len(calls) == 1 and again == first
    assert first == SUMMARY


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


def test_the_table_shows_each_methods_rollouts_beside_its_held_out_success():
    run = SUMMARY | {"env_steps": 1500}
    other = run | {"turns_last_quarter": 1.05, "train_success_last_quarter": 0.25, "env_steps": 900}
    table = credit_curves.final_table({"grpo": [run, other]})
    row = table.splitlines()[-1]
    assert row == (
        "| grpo | 30.0% +- 0.0% | 20.0% +- 0.0% | 50.0% | 2.0 | 6.00 / 1.05 | 0.0% -> 37.5% "
        "| 0.9k-1.5k |"
    )
