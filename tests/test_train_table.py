"""`benchmarks/train_table.py`: the README's training tables, one stored run per (setting,
seed), assembled and stamped with the command that made them."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import train_table  # noqa: E402

from creditgym.measure.evaluate import SplitResult  # noqa: E402


def _results(success: float, score: float | None = None) -> list[SplitResult]:
    return [
        SplitResult("policy", s, 8, success, success, 4.0, score)
        for s in ("valid_seen", "valid_unseen")
    ]


def _fake_train(calls: list[str]):
    """Stands in for `train`: held-out success 0.5 + lr (so settings differ), four iterations
    whose training success climbs from 0.25 to 1.0 by the seed."""

    def train(config):
        calls.append(config.run.output_dir)
        out = Path(config.run.output_dir)
        out.mkdir(parents=True)
        success = [0.25, 0.5, 0.75, 1.0 - 0.125 * config.run.seed]
        rows = [
            {"iteration": i + 1, "rollout/success": s, "ppo/explained_variance": 0.1 * i - 0.1}
            for i, s in enumerate(success)
        ]
        rows.insert(2, {"iteration": 2, "eval/valid_seen/success": 0.5})  # not an iteration's
        (out / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        return SimpleNamespace(
            random_baseline=_results(0.0625),
            initial=_results(0.0),
            after_warm_start=_results(0.25),
            final=_results(0.5 + config.train.lr + config.run.seed / 8, score=24.7),  # unused
            iterations=4,
            env_steps=1234,
        )

    return train


@pytest.fixture
def fake(tmp_path, monkeypatch):
    calls: list[str] = []
    written: dict = {}
    monkeypatch.setattr(train_table, "STORE", tmp_path / "runs")
    monkeypatch.setattr(train_table, "train", _fake_train(calls))
    monkeypatch.setattr(train_table, "code_key_or_exit", lambda allow_dirty: "code")
    monkeypatch.setattr(
        train_table, "write_results", lambda name, stamp, data, text: written.update(locals())
    )
    return calls, written


def _main(monkeypatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", [str(ROOT / "benchmarks" / "train_table.py"), *argv])
    train_table.main()


def test_each_setting_and_seed_is_trained_once_and_tabled_with_means(fake, monkeypatch):
    calls, written = fake
    argv = [
        "configs/quickstart.yaml",
        "--name",
        "demo",
        "--seeds",
        "0,1",
        "--setting",
        "low lr: train.lr=0.125",
        "--setting",
        "high lr: train.lr=0.25",
        "--allow-dirty",
        "eval.episodes=8",
        "--metric",
        "ppo/explained_variance",
        "--metric",
        "never/logged",
    ]
    _main(monkeypatch, *argv)
    _main(monkeypatch, *argv)  # the second time from the store

    assert len(calls) == len(set(calls)) == 4  # each (setting, seed) once, not per command
    assert written["name"] == "demo"
    assert written["stamp"]["command"] == shlex.join(["python", "benchmarks/train_table.py", *argv])
    runs = written["data"]
    assert [(r["setting"], r["seed"], r["final"]["valid_seen"]) for r in runs] == [
        ("low lr", 0, 0.625),
        ("low lr", 1, 0.75),
        ("high lr", 0, 0.75),
        ("high lr", 1, 0.875),
    ]
    assert runs[0]["eval_episodes"] == 8  # the shared override reached every run
    text = written["text"]
    assert (
        "| low lr | 0 | 6.2% / 6.2% | 0.0% / 0.0% | 25.0% / 25.0% | 62.5% / 62.5% | 4 | 1,234 "
        "| 25% -> 100% | 0.0 min | -0.1 .. +0.2 (+0.2) | not logged |" in text
    )
    assert "|  | 1 | " in text and "| 25% -> 88% |" in text  # seed 1's last quarter
    # the means of the two seeds with their standard deviation (0.125 / sqrt(2) = 8.8%)
    assert "| **25.0%** +- 0.0% / **25.0%** +- 0.0% | **68.8%** +- 8.8% / **68.8%** +- 8.8% |" in (
        text
    )
    assert "| **81.2%** +- 8.8% / **81.2%** +- 8.8% |" in text
    # paired by seed: high lr is 12.5 points above low lr at both seeds (no spread: an interval
    # of one point that excludes 0), and each setting's gain over its warm start (37.5, 50)
    assert (
        "| high lr minus low lr, after training | 2 | +12.5 [+12.5, +12.5] * "
        "| +12.5 [+12.5, +12.5] * |" in text
    )
    assert "| low lr: after training minus after the warm start | 2 | +43.8 [-35.7, +123.2] |" in (
        text
    )
    assert "| high lr: after training minus after the warm start | 2 | +56.2 [-23.2, +135.7] |" in (
        text
    )


def test_one_seed_has_nothing_to_pair(fake, monkeypatch):
    _, written = fake
    argv = ["configs/quickstart.yaml", "--name", "t", "--seeds", "0", "--allow-dirty"]
    _main(monkeypatch, *argv, "--setting", "a: train.lr=0.125", "--setting", "b: train.lr=0.25")
    assert "| a | 0 |" in written["text"] and "paired by seed" not in written["text"]


def test_code_assembles_the_runs_stored_under_another_key_and_trains_none(fake, monkeypatch):
    calls, written = fake
    monkeypatch.setattr(train_table, "code_key_or_exit", lambda allow_dirty: "0123456789ab")
    base = ["configs/quickstart.yaml", "--name", "t", "--allow-dirty"]
    _main(monkeypatch, *base, "--seeds", "0")  # trained under the current key
    assert len(calls) == 1
    # another commit's key stands in for the current one: a table of its stored runs
    monkeypatch.setattr(train_table, "code_key_or_exit", lambda allow_dirty: "ba9876543210")
    _main(monkeypatch, *base, "--seeds", "0", "--code", "0123456789ab")
    assert len(calls) == 1 and written["data"][0]["seed"] == 0
    with pytest.raises(SystemExit) as stopped:  # seed 1 was never trained: named, not trained
        _main(monkeypatch, *base, "--seeds", "0,1", "--code", "0123456789ab")
    assert "no finished run of setting 'config', seed 1" in str(stopped.value.code)
    assert "--code reads stored runs only" in str(stopped.value.code) and len(calls) == 1


def test_a_malformed_code_is_one_line(fake, monkeypatch, capsys):
    calls, _ = fake
    with pytest.raises(SystemExit) as stopped:
        _main(monkeypatch, "configs/quickstart.yaml", "--name", "t", "--code", "HEAD")
    assert stopped.value.code == 2 and calls == []
    assert "--code 'HEAD': a stored run's training-code key" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--setting", ": train.lr=1"], "--setting ': train.lr=1' has no label"),
        (["--seeds", "0,a"], "--seeds '0,a': comma-separated integers"),
        (["--name", "../x"], "--name '../x': use letters"),
    ],
)
def test_bad_arguments_are_one_line_that_names_them(fake, monkeypatch, capsys, argv, message):
    calls, _ = fake
    with pytest.raises(SystemExit) as stopped:
        _main(monkeypatch, "configs/quickstart.yaml", "--name", "t", "--allow-dirty", *argv)
    assert stopped.value.code == 2 and calls == []
    assert message in capsys.readouterr().err


def test_a_bad_override_is_one_error_line_and_trains_nothing(fake, monkeypatch):
    calls, written = fake
    with pytest.raises(SystemExit) as stopped:
        _main(monkeypatch, "configs/quickstart.yaml", "--name", "t", "--allow-dirty", "train.lr=x")
    assert str(stopped.value).startswith("error: ") and "train.lr" in str(stopped.value)
    assert calls == [] and written == {}


def test_a_real_tiny_run_through_the_command_line(tmp_path):
    """The runner on the real trainer: one iteration of the quickstart at toy scale, in a
    child process as a person runs it, with the results written to a scratch folder."""
    argv = [
        *("configs/quickstart.yaml", "--name", "tiny", "--seeds", "0", "--allow-dirty"),
        *("train.iterations=1", "rollout.groups=2", "rollout.group_size=2", "eval.episodes=2"),
        *("train.sft_warmup.episodes=2", "train.sft_warmup.epochs=1"),
    ]
    script = "\n".join(
        [
            "import functools, sys",
            "from pathlib import Path",
            "sys.path.insert(0, 'benchmarks')",
            "import provenance, train_table",
            f"sys.argv = sys.argv[:1] + {argv!r}",
            f"train_table.STORE = Path({str(tmp_path / 'runs')!r})",
            "train_table.write_results = functools.partial(",
            f"    provenance.write_results, directory=Path({str(tmp_path / 'results')!r}))",
            "train_table.main()",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads((tmp_path / "results" / "tiny.json").read_text())["data"]
    (run,) = data
    assert run["iterations"] == 1 and run["env_steps"] > 0 and run["demonstrations"] == 2
    assert set(run["final"]) == set(run["warm_start"]) == {"valid_seen", "valid_unseen"}
    assert len(list((tmp_path / "runs").glob("seed0-*/summary.json"))) == 1  # stored
    assert "| config | 0 |" in done.stdout


def test_tables_share_the_runs_whose_configs_are_the_same(fake, monkeypatch):
    calls, written = fake
    base = ["configs/quickstart.yaml", "--name", "a", "--seeds", "0", "--allow-dirty"]
    _main(monkeypatch, *base, "--setting", "low lr: train.lr=0.125")
    # another table, another label, the same config: loaded; a quoted override with a space
    _main(
        monkeypatch,
        *base,
        "--setting",
        "the low lr again: train.lr=0.125",
        "--setting",
        "GiGPO: 'credit.estimator={name: gigpo}'",
        "--returns",
    )
    assert len(calls) == 2
    assert [(r["setting"], r["overrides"]) for r in written["data"]] == [
        ("the low lr again", ["train.lr=0.125"]),
        ("GiGPO", ["credit.estimator={name: gigpo}"]),
    ]
    # every row's mean return, never the env's graded score (the trainer's evaluations log none,
    # so a score beside returns would mix two scales in one table)
    assert (
        "| the low lr again | 0 | 6.2% / 6.2% (return 0.062 / 0.062) | 0.0% / 0.0% (return 0.000 / "
        "0.000) | 25.0% / 25.0% (return 0.250 / 0.250) | 62.5% / 62.5% (return 0.625 / 0.625) |"
    ) in written["text"]
