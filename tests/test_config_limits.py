"""Configs that cannot run are refused before work starts, through the command line as a
person runs it: sizes no machine finishes, non-finite numbers, model names that are neither
on disk nor reachable, optional back-ends that are not installed. Each is one line on stderr
naming the key (and the limit or the fix), exit code 2, no traceback, within seconds."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 45  # a refusal takes ~3 s (importing torch); a run that starts would take minutes


def _train(tmp_path, *overrides: str) -> tuple[subprocess.CompletedProcess, float]:
    command = [sys.executable, "-m", "creditgym.cli", "train", "configs/quickstart.yaml"]
    started = time.monotonic()
    done = subprocess.run(
        command + [f"run.output_dir={tmp_path / 'run'}", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, time.monotonic() - started


def _assert_refused(done: subprocess.CompletedProcess, elapsed: float, *words: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    assert elapsed < SECONDS, f"refused after {elapsed:.0f}s"


@pytest.mark.parametrize(
    "override, limit",
    [
        ("rollout.groups=100000", "<= 4096"),
        ("eval.episodes=1000000000", "<= 100000"),
        ("policy.tiny.vocab_size=100000000", "<= 262144"),
        ("run.threads=100000", "<= 1024"),
        ("train.iterations=1000000000000", "<= 10000000"),
        ("policy.max_new_tokens=1000000000", "<= 131072"),
        ("run.seed=100000000000000000000", "<= 4294967295"),
    ],
)
def test_sizes_that_cannot_finish_are_refused_naming_the_key_and_limit(tmp_path, override, limit):
    done, elapsed = _train(tmp_path, override)
    _assert_refused(done, elapsed, f"'{override.split('=')[0]}'", limit)


def test_groups_times_group_size_past_the_limit_is_refused(tmp_path):
    done, elapsed = _train(tmp_path, "rollout.groups=4096", "rollout.group_size=1024")
    _assert_refused(done, elapsed, "'rollout.groups' x 'rollout.group_size'", "65536")


@pytest.mark.parametrize(
    "override", ["train.lr=inf", "policy.temperature=inf", "train.clip_eps=-inf"]
)
def test_infinite_numbers_are_refused(tmp_path, override):
    done, elapsed = _train(tmp_path, override)
    _assert_refused(done, elapsed, f"'{override.split('=')[0]}'")


@pytest.mark.parametrize(
    "model", ["nonexistent-org/no-such-model-xyz", "creditgym-tests/absent-0123456789"]
)
def test_a_model_name_neither_on_disk_nor_reachable_fails_in_seconds(tmp_path, monkeypatch, model):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty cache
    done, elapsed = _train(tmp_path, f"policy.model={model}")
    _assert_refused(done, elapsed, "'policy.model'", model)
    assert elapsed < 20, f"took {elapsed:.0f}s"


@pytest.mark.parametrize(
    "override, module",
    [
        ("rollout.engine=vllm", "vllm"),
        ("run.report_to=[wandb]", "wandb"),
        ("run.report_to=[tensorboard,trackio]", "trackio"),
    ],
)
def test_an_optional_backend_that_is_not_installed_is_one_line_exit_2(tmp_path, override, module):
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    done, elapsed = _train(tmp_path, override)
    _assert_refused(done, elapsed, f"'{override.split('=')[0]}'", "pip install")
