"""Training with isolated env workers: injected failures cost their episodes, never the run;
the run equals one with in-process envs and resumes exactly; with the option off, nothing of
it runs."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from _browser import browser_missing, chromium, serving, wait_ready
from _flaky_envs import ENV_ID, register_flaky
from conftest import TINY, household_config, training_rows
from safetensors.torch import load_file

from creditgym.config import load_config
from creditgym.rollout.failures import FAILURE_REASONS
from creditgym.rollout.isolation import IsolatedEnv
from creditgym.train.trainer import setup, train

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
ISOLATED = ["rollout.isolation=process", "rollout.env_step_timeout_s=1"]
INJECTED = {"kill": "crash", "hang": "timeout", "garbage": "garbage", "leak": "memory"}


@pytest.fixture(scope="module")
def flaky_run(tmp_path_factory):
    """Two iterations on an env whose workers are killed, hang, answer garbage, leak past the
    RSS limit and raise, once each, in the first iteration."""
    register_flaky()
    tmp = tmp_path_factory.mktemp("flaky")
    failures = [*INJECTED, "raise"]
    config = load_config(
        None,
        [
            *TINY,
            *ISOLATED,
            f"env.id={ENV_ID}",
            f"env.kwargs={{claims_dir: '{tmp}', failures: {json.dumps(failures)}, leak_mb: 96}}",
            "rollout.env_max_rss_mb=100",
            "rollout.groups=2",
            "rollout.group_size=4",
            "train.iterations=2",
            "eval.episodes=1",
            "eval.every=0",
            "run.log_episodes=100",
            f"run.output_dir={tmp / 'run'}",
        ],
    )
    return train(config), tmp / "run"


def test_training_goes_on_through_every_injected_failure(flaky_run):
    result, _ = flaky_run
    assert result.iterations == 2 and result.checkpoint is not None


def test_the_metrics_count_each_failure_by_its_reason(flaky_run):
    _, run = flaky_run
    rows = training_rows(run)
    assert all(f"rollout/failed/{reason}" in row for row in rows for reason in FAILURE_REASONS)
    totals = {
        reason: sum(row[f"rollout/failed/{reason}"] for row in rows) for reason in FAILURE_REASONS
    }
    assert totals == {"crash": 1, "timeout": 1, "garbage": 1, "memory": 1, "error": 1}
    assert [row["rollout/failed_episodes"] for row in rows] == [5, 0]


def test_nothing_is_lost_and_failed_episodes_stay_out_of_the_advantages(flaky_run):
    _, run = flaky_run
    records = [json.loads(line) for line in (run / "episodes.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 8  # every episode of both iterations, the failed ones included
    failed = [r for r in records if r["failed"]]
    assert sorted(r["failure"] for r in failed) == sorted([*INJECTED.values(), "error"])
    assert all(r["error"] for r in failed)
    assert all(turn["advantage"] == 0.0 for r in failed for turn in r["turns"])
    assert all(r["failure"] is None for r in records if not r["failed"])


def test_no_worker_outlives_the_run(flaky_run):
    assert multiprocessing.active_children() == []


# ---- the same run, in a worker or not; resumed or not ------------------------------------------


def _weights(result) -> dict[str, torch.Tensor]:
    return load_file(result.checkpoint / "model" / "model.safetensors")


def test_an_isolated_run_stopped_and_resumed_equals_one_run_in_process(tmp_path):
    """Workers play the same episodes with the same seeds, and hold nothing a checkpoint
    misses: one iteration, a resume for the second, gives the uninterrupted in-process run's
    metrics and weights exactly."""
    one = "eval.episodes=1"  # evaluation is not what is compared here
    train(household_config(tmp_path, "isolated", "train.iterations=1", one, *ISOLATED))
    isolated = train(household_config(tmp_path, "isolated", "train.iterations=2", one, *ISOLATED))
    in_process = train(household_config(tmp_path, "in_process", "train.iterations=2", one))
    assert isolated.iterations == 2
    isolated_rows, in_process_rows = (
        training_rows(tmp_path / "isolated"),
        training_rows(tmp_path / "in_process"),
    )
    assert [row["rollout/failed/crash"] for row in isolated_rows] == [0, 0]
    assert not any(key.startswith("rollout/failed/") for row in in_process_rows for key in row)
    without_counts = [
        {k: v for k, v in row.items() if not k.startswith("rollout/failed/")}
        for row in isolated_rows
    ]
    assert without_counts == in_process_rows
    ours, theirs = _weights(isolated), _weights(in_process)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_with_isolation_off_the_envs_stay_in_this_process(tmp_path):
    """The option off is today's code path: plain envs, no worker process, no new metrics."""
    run = setup(household_config(tmp_path, "off"))
    try:
        assert run.config.rollout.isolation == "none"
        assert all(isinstance(env, gym.Env) for env in run.train_envs)
        assert not any(isinstance(env, IsolatedEnv) for env in run.train_envs)
        assert multiprocessing.active_children() == []
    finally:
        for env in run.train_envs:
            env.close()


@pytest.mark.slow  # a headless Chromium
def test_the_viewer_shows_each_failed_episode_with_its_reason(flaky_run):
    missing = browser_missing()
    if missing and os.environ.get("CI", "").lower() != "true":
        pytest.skip(f"no browser: {missing}")
    from selenium.webdriver.support.ui import Select, WebDriverWait

    _, run = flaky_run
    with chromium() as browser, serving(run) as url:
        browser.get(url)
        wait_ready(browser)
        Select(browser.find_element("id", "f-outcome")).select_by_value("failed")
        WebDriverWait(browser, 10).until(
            lambda d: (
                d.find_element("css selector", "#count-text").get_attribute("data-total") == "5"
            )
        )
        shown = browser.find_elements("css selector", "tr.episode-row [data-testid=outcome]")
        expected = [f"failed: {reason}" for reason in [*INJECTED.values(), "error"]]
        assert sorted(cell.text for cell in shown) == sorted(expected)
        browser.find_elements("css selector", "tr.episode-row")[0].click()
        detail = WebDriverWait(browser, 10).until(
            lambda d: d.find_element("css selector", "[data-testid=episode] [data-testid=outcome]")
        )
        assert detail.text in expected
        assert "error: " in browser.find_element("css selector", "[data-testid=episode]").text


def test_the_isolation_cost_benchmark_runs_on_a_tiny_budget(capsys):
    import sys

    sys.path.insert(0, str(BENCHMARKS))
    import isolation_cost

    results = BENCHMARKS / "results" / "isolation_cost.json"
    before = results.read_bytes() if results.exists() else None
    small = [*TINY, "rollout.groups=1", "rollout.group_size=2", "env.kwargs={max_steps: 3}"]
    assert isolation_cost.main(["--dry-run", "--repetitions", "1", *small]) == 0
    shown = capsys.readouterr().out
    assert "| in-process |" in shown and "| isolated (1 process per env) |" in shown
    assert "isolation costs" in shown
    assert (
        results.read_bytes() if results.exists() else None
    ) == before  # a dry run writes nothing
