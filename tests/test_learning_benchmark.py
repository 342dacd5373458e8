"""benchmarks/learning.py and its tables (learning_report.py): paired statistics worked by
hand, the tables' verdicts, and a tiny end-to-end run that is killed after its first run and
resumed without redoing it."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from learning_report import diagnostics_table, gain_table, gate_table, results_table  # noqa: E402
from paired_stats import mean_interval, paired_difference, t_critical  # noqa: E402
from run_store import take_lock  # noqa: E402


def test_t_critical_values_come_from_the_table_then_the_expansion():
    assert t_critical(2) == 4.303
    assert t_critical(30) == 2.042
    assert t_critical(31) == pytest.approx(2.0395, abs=2e-4)  # Student's t, df 31
    assert t_critical(1000) == pytest.approx(1.9623, abs=2e-4)
    with pytest.raises(ValueError, match="degree of freedom"):
        t_critical(0)


def test_paired_difference_of_three_seeds_worked_by_hand():
    # d = (1, 2, 3): mean 2, sd 1, half-width t(2) x 1 / sqrt(3) = 4.303 / 1.732 = 2.4843
    d = paired_difference([1.5, 2.5, 3.5], [0.5, 0.5, 0.5])
    assert (d.n, d.mean) == (3, pytest.approx(2.0))
    assert (d.t_low, d.t_high) == (
        pytest.approx(-0.4843, abs=1e-4),
        pytest.approx(4.4843, abs=1e-4),
    )
    assert not d.excludes_zero
    assert 1.0 <= d.boot_low < 2.0 < d.boot_high <= 3.0  # means of resamples of (1, 2, 3)


def test_a_consistent_difference_excludes_zero_and_one_seed_has_no_interval():
    assert paired_difference([0.6, 0.7, 0.65, 0.62], [0.5, 0.55, 0.52, 0.5]).excludes_zero
    single = paired_difference([0.6], [0.5])
    assert single.mean == pytest.approx(0.1) and single.t_low != single.t_low  # nan
    assert mean_interval([0.5])[1] != mean_interval([0.5])[1]
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference([0.1, 0.2], [0.1])


def _result(final: float, auc: float, corr: float | None = None) -> dict:
    return {
        "final": {"valid_seen": final, "valid_unseen": final},
        "initial": {"valid_seen": 0.5, "valid_unseen": 0.5},
        "train_auc": auc,
        "curve": {"rollout_success": [auc, auc]},
        "first_batch": {
            "grpo_corr": corr,
            "grpo_sign_agreement": 0.99,
            "grpo_beyond_scale_share": 0.01,
        },
    }


def test_the_table_pairs_each_method_with_grpo_by_seed():
    results = {
        "grpo": {0: _result(0.5, 0.4), 1: _result(0.6, 0.5), 2: _result(0.55, 0.45)},
        # seeds 0 and 1 only: paired on those two, +10 and +20 points
        "gigpo": {0: _result(0.6, 0.4), 1: _result(0.8, 0.5)},
    }
    table = results_table(results, ["grpo", "gigpo"]).splitlines()
    gigpo = next(line for line in table if line.startswith("| gigpo"))
    # d = (0.10, 0.20): mean +15.0, half-width 12.706 x 0.0707 / 1.414 = 0.6353 (63.5 points)
    assert "| 2 |" in gigpo and "+15.0 [-48.5, +78.5]" in gigpo
    assert "+0.0 [+0.0, +0.0]" in gigpo  # the same AUC on both seeds


def test_the_gain_table_pairs_each_run_with_its_own_start_per_split():
    results = {"grpo": {0: _result(0.5, 0.4), 1: _result(0.6, 0.5), 2: _result(0.55, 0.45)}}
    results["grpo"][1]["initial"] = {"valid_seen": 0.5, "valid_unseen": 0.4}
    (row,) = gain_table(results, ["grpo", "gigpo"]).splitlines()[2:]  # no gigpo runs: no row
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # valid_seen: starts (0.5, 0.5, 0.5), gains (0, 10, 5) points: mean 5, sd 5, half-width
    # 4.303 x 5 / sqrt(3) = 12.42
    assert cells[:3] == ["grpo", "3", "50.0% +- 0.0%"]
    assert cells[3].startswith("+5.0 [-7.4, +17.4]")
    # valid_unseen: starts (0.5, 0.4, 0.5): gains (0, 20, 5): mean 8.3, sd 10.41, half 25.9
    assert cells[4] == "46.7% +- 14.3%" and cells[5].startswith("+8.3 [-17.5, +34.2]")


def test_the_gate_says_which_methods_cannot_differ_from_grpo():
    results = {
        "grpo": {0: _result(0.5, 0.5, 1.0)},
        "gigpo": {0: _result(0.5, 0.5, 0.96)},
        "turn_level": {0: _result(0.5, 0.5, 0.41)},
        "rloo": {0: _result(0.5, 0.5, None)},
    }
    rows = {
        line.split(" |")[0][2:]: line for line in gate_table(results, list(results)).split("\n")
    }
    assert "cannot differ here" in rows["gigpo"] and "0.960" in rows["gigpo"]
    assert "worth comparing" in rows["turn_level"]
    assert "undefined" in rows["rloo"]


def test_the_diagnostics_table_averages_iterations_then_seeds(tmp_path):
    rows = {  # seed -> the run's metrics rows (the MC check ran on iteration 2 only)
        0: [{"credit/grpo_corr": 0.9}, {"credit/grpo_corr": 0.7, "credit/mc_spearman": 0.4}],
        1: [{"credit/grpo_corr": 0.6}, {"credit/grpo_corr": 0.6, "credit/mc_spearman": 0.2}],
    }
    results = {"gigpo": {}}
    for seed, metrics in rows.items():
        run = tmp_path / f"gigpo-seed{seed}-code-hash{seed}"
        run.mkdir()
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
        results["gigpo"][seed] = {"code": "code", "config_hash": f"hash{seed}"}
    (row,) = [line for line in diagnostics_table(results, ["gigpo"], tmp_path).splitlines()[2:]]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:4] == ["gigpo", "2", "0.700", "0.300"]  # mean(0.8, 0.6); mean(0.4, 0.2)
    assert cells[4] == "-"  # a metric no run logged


def test_a_run_in_training_is_locked_and_a_dead_process_lock_taken_over(tmp_path):
    lock = tmp_path / "run.lock"
    assert take_lock(lock) and lock.read_text() == str(os.getpid())
    assert not take_lock(lock)  # held by a live process (this one): another process skips it
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(str(dead.pid))  # left by a process that died mid-run
    assert take_lock(lock) and lock.read_text() == str(os.getpid())


TINY_RUN = [
    "--setting", "scratch", "--methods", "gigpo", "--seeds", "0,1", "--iterations", "1",
    "--eval-episodes", "1", "--jobs", "1", "--allow-dirty", "--set",
    "policy.tiny.hidden_size=32", "policy.tiny.num_layers=1", "policy.tiny.num_heads=2",
    "policy.tiny.vocab_size=512", "rollout.groups=2", "rollout.group_size=2",
    "env.kwargs={max_steps: 4}",
]  # fmt: skip


def _benchmark(out: Path, *extra: str, background: bool = False, stderr=None):
    command = [sys.executable, "benchmarks/learning.py", "--out", str(out), *extra, *TINY_RUN]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if background:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_a_killed_benchmark_resumes_without_redoing_finished_runs(tmp_path):
    store = tmp_path / "learning_runs" / "scratch"
    log = tmp_path / "first.stderr"
    with log.open("w") as stderr:
        first = _benchmark(tmp_path, background=True, stderr=stderr)
    deadline = time.monotonic() + 600
    while not list(store.glob("*.json")) and time.monotonic() < deadline:
        # a benchmark that died at once (a bad install, a dirty-tree refusal) fails here, not
        # after the whole deadline
        assert first.poll() is None, log.read_text()[-2000:]
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)  # the benchmark and the run it was training
    first.wait()
    (finished,) = store.glob("*.json")
    stamp = finished.stat().st_mtime_ns

    done = _benchmark(tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("skipped") == 1 and done.stdout.count("trained ") == 3
    assert finished.stat().st_mtime_ns == stamp  # the finished run was not redone
    runs = [json.loads(path.read_text()) for path in store.glob("*.json")]
    assert sorted((r["method"], r["seed"]) for r in runs) == [
        ("gigpo", 0),
        ("gigpo", 1),
        ("grpo", 0),
        ("grpo", 1),
    ]
    assert all("+dirty" in r["code"] or len(r["code"]) == 12 for r in runs)
    assert "| gigpo | 2 |" in done.stdout  # the table, paired over both seeds
    assert (tmp_path / "learning_scratch_1it.png").is_file()  # named by its --iterations

    # --table --code: the stored runs of a given training code, read back, nothing trained
    (code,) = {r["code"] for r in runs}
    again = _benchmark(tmp_path, "--table", "--code", code)
    assert again.returncode == 0 and "trained " not in again.stdout
    assert "| gigpo | 2 |" in again.stdout
    other = _benchmark(tmp_path, "--table", "--code", "0123456789ab")
    assert other.returncode == 0 and "| gigpo | 0 |" in other.stdout
    refused = _benchmark(tmp_path, "--code", code)
    assert refused.returncode == 2 and "--code reads stored runs only" in refused.stderr
    assert "Traceback" not in refused.stderr

    # the gate's runs (one iteration, one eval episode) are these runs: nothing is retrained
    gate = _benchmark(tmp_path, "--gate")
    assert gate.returncode == 0, gate.stderr[-2000:]
    assert gate.stdout.count("skipped") == 4 and "trained " not in gate.stdout
    assert "| gigpo | 2 |" in gate.stdout and "verdict" in gate.stdout


@pytest.mark.slow
def test_methods_share_one_warm_start_and_equal_a_run_that_trains_it_itself(tmp_path):
    warm_setting = [
        "--setting", "main", "--methods", "gigpo", "--seeds", "0", "--iterations", "1",
        "--eval-episodes", "2", "--jobs", "1", "--allow-dirty", "--set",
        *TINY_RUN[TINY_RUN.index("--set") + 1 :],
        "train.sft_warmup.episodes=6", "train.sft_warmup.epochs=1",
    ]  # fmt: skip
    command = [sys.executable, "benchmarks/learning.py", "--out", str(tmp_path), *warm_setting]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("warm    seed 0") == 1  # trained once for both methods
    runs = {
        r["method"]: r
        for r in map(json.loads, map(Path.read_text, (tmp_path / "learning_runs").rglob("*.json")))
    }
    assert runs["grpo"]["warm_start"] == runs["gigpo"]["warm_start"] is not None
    assert runs["grpo"]["initial"] == runs["gigpo"]["initial"] == runs["warm"]["initial"]

    # the recorded command, run on its own (its warm start inside), gives the same run
    recorded = [a for a in shlex.split(runs["gigpo"]["command"]) if "run.output_dir=" not in a]
    alone = tmp_path / "alone"
    subprocess.run(
        [sys.executable, "-m", "creditgym", *recorded[1:], f"run.output_dir={alone}"],
        cwd=ROOT,
        env={**env, "OMP_NUM_THREADS": "1"},
        check=True,
        capture_output=True,
        timeout=900,
    )
    (shared,) = (tmp_path / "runs" / "learning" / "main").glob("gigpo-seed0-*[!g]")  # not .log
    assert _rows(alone) == _rows(shared)


def _rows(run_dir: Path) -> list[dict]:
    """Every metrics row of a run, wall times left out."""
    rows = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


def _training_rows(run_dir: Path) -> list[dict]:
    """A run's per-iteration metrics without the wall-clock ones."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [
        {k: v for k, v in r.items() if not k.startswith("time/") and "second" not in k}
        for r in rows
        if "rollout/success" in r
    ]


@pytest.mark.slow
def test_a_longer_run_continues_the_stored_shorter_one_and_equals_a_straight_run(tmp_path):
    tiny = list(TINY_RUN)
    del tiny[tiny.index("--iterations") : tiny.index("--iterations") + 2]
    tiny[tiny.index("0,1")] = "0"  # one seed: grpo and gigpo

    def benchmark(out: Path, iterations: int) -> subprocess.CompletedProcess:
        command = [sys.executable, "benchmarks/learning.py", "--out", str(out)]
        command += ["--iterations", str(iterations), *tiny]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)

    assert benchmark(tmp_path / "a", 1).returncode == 0
    longer = benchmark(tmp_path / "a", 2)
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert longer.stdout.count("trained ") == 2 and "skipped" not in longer.stdout
    straight = benchmark(tmp_path / "b", 2)
    assert straight.returncode == 0, straight.stderr[-2000:]

    def stored(out: Path) -> dict:
        results = map(json.loads, map(Path.read_text, (out / "learning_runs").rglob("*.json")))
        return {r["method"]: r for r in results if r["iterations"] == 2}

    continued, alone = stored(tmp_path / "a"), stored(tmp_path / "b")
    for method in ("grpo", "gigpo"):
        assert continued[method]["continued_from"] is not None
        assert alone[method]["continued_from"] is None
        for key in ("initial", "final", "env_steps", "curve"):
            assert continued[method][key] == alone[method][key], (method, key)
        runs = [out / "runs" / "learning" / "scratch" for out in (tmp_path / "a", tmp_path / "b")]
        name = f"{method}-seed0-{continued[method]['code']}-{continued[method]['config_hash']}"
        assert _training_rows(runs[0] / name) == _training_rows(runs[1] / name)
