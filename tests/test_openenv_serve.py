"""`creditgym serve-env` speaks OpenEnv's protocol, and `openenv:<url>` plays it back exactly."""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("openenv")

from _openenv import serve_env  # noqa: E402
from conftest import TINY  # noqa: E402

import creditgym  # noqa: E402
from creditgym.cli import main  # noqa: E402
from creditgym.config import load_config  # noqa: E402
from creditgym.envs import oracle  # noqa: E402

ENV_ID = "creditgym/HouseholdEasy-v0"
KWARGS = {"max_steps": 8}  # short enough that random play truncates


@pytest.fixture(scope="module")
def served():
    with serve_env(ENV_ID, "--env-kwarg", "max_steps=8") as (url, process):
        yield url, process


def play(env, seed: int, actions_seed: int, expert_every: int = 2) -> list[tuple]:
    """An episode as (reset, step, step, ...) results, mixing expert and random actions."""
    rng = random.Random(actions_seed)
    results = [env.reset(seed=seed)]
    info = results[0][1]
    turn = 0
    while True:
        if turn % expert_every == 0:
            action = env.unwrapped.expert_action()
        else:
            action = rng.choice(info["admissible_actions"] + ["dance wildly"])
        step = env.step(action)
        results.append(step)
        info, turn = step[4], turn + 1
        if step[2] or step[3]:
            return results


def test_served_env_passes_openenv_validator(served):
    from openenv.cli._validation import validate_running_environment

    report = validate_running_environment(served[0], timeout_s=30)
    assert report["passed"], [c for c in report["criteria"] if not c["passed"]]
    assert report["mode"] == "simulation"


def test_openenv_client_plays_an_episode_to_the_end(served):
    from openenv.core import GenericEnvClient

    local = creditgym.make(ENV_ID, **KWARGS)
    _, info = local.reset(seed=3)
    with GenericEnvClient(base_url=served[0]).sync() as client:
        result = client.reset(seed=3)
        assert result.observation["info"]["task"] == info["task"]
        while not result.done:
            action = local.unwrapped.expert_action()
            local.step(action)
            result = client.step({"text": action})
        assert result.reward == 1.0
        assert result.observation["info"]["won"] is True
        assert result.observation["terminated"] is True


def test_remote_episodes_equal_in_process_ones_under_the_same_seeds(served):
    remote = creditgym.make(f"openenv:{served[0]}")
    local = creditgym.make(ENV_ID, **KWARGS)
    endings = set()
    for seed in range(4):
        remote_episode = play(remote, seed, actions_seed=seed, expert_every=1 + seed)
        local_episode = play(local, seed, actions_seed=seed, expert_every=1 + seed)
        assert remote_episode == local_episode  # text, reward, flags and info (tuples too)
        assert isinstance(remote_episode[-1][4]["anchor"], tuple)
        endings.add("won" if remote_episode[-1][2] else "truncated")
    remote.close()
    assert endings == {"won", "truncated"}  # both ways an episode ends travel


def test_a_remote_env_passes_gymnasiums_check_env(served):
    from gymnasium.utils.env_checker import check_env

    env = creditgym.make(f"openenv:{served[0]}")
    check_env(env, skip_render_check=True)  # random actions of up to 64k chars included
    env.close()


def test_clone_and_restore_travel_and_replay_the_same_future(served):
    remote = creditgym.make(f"openenv:{served[0]}")
    other = creditgym.make(f"openenv:{served[0]}")
    remote.reset(seed=5)
    remote.step(remote.unwrapped.expert_action())
    assert oracle.supports_cloning(remote)
    snapshot = oracle.clone_state(remote)
    future = [remote.step(a) for a in ("look", remote.unwrapped.expert_action())]
    other.reset(seed=9)  # another session of the same server: a snapshot restores into it too
    for env in (remote, other):
        oracle.restore_state(env, snapshot)
        assert [env.step(a) for a in ("look", future[0][4]["admissible_actions"][0])][0] == (
            future[0]
        )
    assert oracle.cost_to_go(remote) is not None
    remote.close()
    other.close()


def test_eval_cli_runs_on_a_served_env(served, tmp_path):
    out = tmp_path / "results.json"
    code = main(
        ["eval", "--env", f"openenv:{served[0]}", "--agent", "expert", "--agent", "random"]
        + ["--episodes", "3", "--batch-size", "3", "--json", str(out)]
    )
    assert code == 0
    results = json.loads(out.read_text())
    rows = results if isinstance(results, list) else results["results"]
    assert {row["split"] for row in rows} == {"valid_seen", "valid_unseen"}  # from the server
    assert all(row["success"] == 1.0 for row in rows if row["agent"] == "expert")


def test_credit_report_with_monte_carlo_runs_on_a_served_env(served, tmp_path):
    out = tmp_path / "report.json"
    code = main(
        ["credit-report", "--env", f"openenv:{served[0]}", "--agent", "random"]
        + ["--methods", "grpo", "--groups", "2", "--group-size", "2", "--mc", "2"]
        + ["--mc-turns", "3", "--json", str(out)]
    )
    assert code == 0
    assert out.exists()


@pytest.mark.slow
def test_tiny_training_runs_on_a_served_env(served, tmp_path, one_thread):
    from creditgym.train.trainer import train

    config = load_config(
        None,
        TINY
        + [
            f"env.id=openenv:{served[0]}",
            "rollout.groups=2",
            "rollout.group_size=2",
            "train.iterations=1",
            "eval.episodes=1",
            "eval.every=0",
            f"run.output_dir={tmp_path / 'run'}",
        ],
    )
    result = train(config)
    assert result.iterations == 1 and result.env_steps > 0
    assert served[1].poll() is None


def test_the_trl_example_plays_a_served_env_without_trl(served):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "trl_served_env.py"
    spec = importlib.util.spec_from_file_location("trl_served_env", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    tools = example.HouseholdTools(served[0])
    local = creditgym.make(ENV_ID, **KWARGS)
    _, info = local.reset(seed=4)
    prompt = tools.reset(seed=4, prompt="ignored")
    assert info["task"] in prompt and "Admissible commands: " in prompt
    while not tools.done:
        action = local.unwrapped.expert_action()
        local.step(action)
        tools.act(action)
    assert tools.won and example.episode_reward([tools]) == [1.0]
    with pytest.raises(ValueError, match="episode is over"):
        tools.act("look")
    tools.env.close()
