"""`benchmarks/igpo_overhead.py`: the untrained policy's information gains, as the README
quotes them (mean, mean size, share below zero), from the rollout the trainer would score."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import igpo_overhead  # noqa: E402


def test_gain_stats_count_average_and_sign_the_gains():
    stats = igpo_overhead.gain_stats([-1e-5, 2e-5, -3e-5, -4e-5])
    assert stats["gains"] == 4
    assert stats["gain_mean"] == pytest.approx(-1.5e-5)
    assert stats["gain_abs_mean"] == pytest.approx(2.5e-5)
    assert stats["gain_negative"] == 0.75
    assert igpo_overhead.gain_stats([])["gains"] == 0


def test_a_small_rollout_scores_a_gain_for_every_turn_but_each_episodes_last():
    row = igpo_overhead.measure("creditgym/SearchQAEasy-v0", batch=8, group_size=4, repeats=1)
    episodes = 8
    assert row["turns"] > episodes  # some episodes searched before answering
    # one gain per turn but each episode's last
    assert row["turns"] - row["gains"] == episodes
    assert 0.0 <= row["gain_negative"] <= 1.0 and row["gain_abs_mean"] >= abs(row["gain_mean"])
