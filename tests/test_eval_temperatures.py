"""`benchmarks/eval_temperatures.py`: a training table's runs scored again at other evaluation
temperatures, paired by run (`creditgym eval` is stood in for; each real one plays 128
episodes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import eval_temperatures  # noqa: E402

RUNS = [
    {"setting": "GRPO", "seed": s, "output_dir": f"runs/seed{s}", "eval_episodes": 64,
     "final": {"valid_seen": 0.5, "valid_unseen": 0.4}}
    for s in (0, 1, 2)
]  # fmt: skip


def _scores(shift: float) -> dict:
    """Temperature 1 at 0.50/0.40 + seed/100; greedy `shift` lower on valid_seen on every seed."""
    base = {s: {"valid_seen": 0.5 + s / 100, "valid_unseen": 0.4 + s / 100} for s in (0, 1, 2)}
    greedy = {
        s: {"valid_seen": v["valid_seen"] - shift - s / 200, "valid_unseen": v["valid_unseen"]}
        for s, v in base.items()
    }
    return {1.0: base, 0.0: greedy}


def test_render_pairs_each_temperature_with_the_first_by_run():
    text = eval_temperatures.render(RUNS, [1.0, 0.0], _scores(0.2))
    assert "| **1** | mean | **51.0%** | **41.0%** |" in text
    assert "| **0** | mean | **30.5%** | **41.0%** |" in text
    # valid_seen: -20.0, -20.5, -21.0 points: mean -20.5, interval -21.7 .. -19.3, excludes 0
    assert "| 0 minus 1 | -20.5 [-21.7, -19.3] * | +0.0 [+0.0, +0.0] |" in text


def test_one_run_has_nothing_to_pair():
    text = eval_temperatures.render(RUNS[:1], [1.0, 0.0], _scores(0.2))
    assert "Paired" not in text and "mean" not in text
    assert "| 0 | 0 | 30.0% | 40.0% |" in text


@pytest.fixture
def table(tmp_path, monkeypatch):
    """A results file `t.json` of three runs, their directories present, under tmp_path."""
    monkeypatch.setattr(eval_temperatures, "RESULTS", tmp_path)
    monkeypatch.setattr(eval_temperatures, "ROOT", tmp_path)
    (tmp_path / "t.json").write_text(json.dumps({"provenance": {}, "data": RUNS}))
    for run in RUNS:
        (tmp_path / run["output_dir"]).mkdir(parents=True)
        (tmp_path / run["output_dir"] / "config.yaml").write_text(
            "env:\n  id: creditgym/HouseholdEasy-v0\n  kwargs: {expert: search, rooms: [1, 2]}\n"
        )
    return tmp_path


def test_table_runs_names_a_missing_file_setting_or_run_in_one_line(table):
    assert [r["seed"] for r in eval_temperatures.table_runs("t", None)] == [0, 1, 2]
    with pytest.raises(SystemExit, match=r"not a train_table.py results file"):
        eval_temperatures.table_runs("absent", None)
    with pytest.raises(SystemExit, match=r"t has no setting 'GiGPO'; it has \['GRPO'\]"):
        eval_temperatures.table_runs("t", "GiGPO")
    (table / "runs/seed1/config.yaml").unlink()
    (table / "runs/seed1").rmdir()
    with pytest.raises(SystemExit, match=r"run directory runs/seed1 is not here"):
        eval_temperatures.table_runs("t", "GRPO")


def test_evaluate_run_calls_creditgym_eval_with_the_runs_env_and_budget(table, monkeypatch):
    seen = {}

    def fake_run(command, cwd, env, **kwargs):
        seen.update(command=command, threads=env["OMP_NUM_THREADS"])
        out = Path(command[command.index("--json") + 1])
        out.write_text(json.dumps([{"split": "valid_seen", "success": 0.25}]))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(eval_temperatures.subprocess, "run", fake_run)
    assert eval_temperatures.evaluate_run(RUNS[1], 0.5, threads=1) == {"valid_seen": 0.25}
    command = seen["command"]
    assert command[:6] == ["creditgym", "eval", "--env", "creditgym/HouseholdEasy-v0", "--agent",
                           "runs/seed1"]  # fmt: skip
    assert command[command.index("--episodes") + 1] == "64"
    assert command[command.index("--splits") + 1] == "valid_seen,valid_unseen"
    assert command[command.index("--temperature") + 1] == "0.5"
    kwargs = [command[i + 1] for i, arg in enumerate(command) if arg == "--env-kwarg"]
    assert kwargs == ["expert=search", "rooms=[1, 2]"]  # YAML reads both back
    assert seen["threads"] == "1"


def test_a_failed_evaluation_is_one_line_naming_the_command(table, monkeypatch):
    monkeypatch.setattr(
        eval_temperatures.subprocess,
        "run",
        lambda command, **k: subprocess.CompletedProcess(
            command, 2, "", "Traceback ...\nerror: no checkpoint in runs/seed0\n"
        ),
    )
    with pytest.raises(SystemExit) as raised:
        eval_temperatures.evaluate_run(RUNS[0], 1.0, threads=1)
    message = str(raised.value)
    assert message.startswith("error: `creditgym eval --env")
    assert message.endswith("failed: error: no checkpoint in runs/seed0")
    assert "\n" not in message
