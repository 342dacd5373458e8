"""ScienceWorld and TextWorldExpress through their own engines: the expert's gold paths win,
the admissible list is built honestly from the engine's, TextWorldExpress clones by replay,
ScienceWorld refuses to clone up front, and a missing extra or Java is one clear line.

One engine per env is shared by the whole module (each starts a JVM); the envs a test makes
besides give their engines back to the process's pool, where the next one finds them."""

from __future__ import annotations

import random
import shutil
import sys

import pytest

import creditgym
from creditgym.envs import oracle
from creditgym.envs.sciworld.actions import admissible_actions
from creditgym.envs.sciworld.state import canonical_tree, state_anchor, subgoals

# ---- pure parts: no Java --------------------------------------------------------------------


def _record(action: str, template: int, *objects: int) -> dict:
    return {"action": action, "template_id": template, "obj_ids": list(objects)}


def test_admissible_list_keeps_one_name_per_action_and_drops_reset_task():
    records = [
        _record("open kitchen door", 0, 7),
        _record("open door to kitchen", 0, 7),  # the same action under another name
        _record("look at air", 1, 3),
        _record("look at air", 1, 4),  # two objects of one name: one text
        _record("reset task", 9),
        _record("look around", 2),
    ]
    offered, distinct = admissible_actions(records, None, "state")
    assert offered == ["look around", "look at air", "open door to kitchen"]
    assert distinct == 3


def test_capped_list_keeps_zero_and_one_object_actions_and_samples_the_rest_by_state():
    records = [_record("wait", 0), _record("pick up cup", 1, 1)] + [
        _record(f"move cup to box {i}", 2, 1, 10 + i) for i in range(50)
    ]
    offered, distinct = admissible_actions(records, 12, "state-a")
    assert distinct == 52 and len(offered) == 12
    assert offered[:2] == ["wait", "pick up cup"]
    assert offered == admissible_actions(list(reversed(records)), 12, "state-a")[0]
    others = {tuple(admissible_actions(records, 12, f"state-{i}")[0]) for i in range(5)}
    assert len(others) > 1  # another state, another sample


def test_anchor_ignores_engine_ids_and_temperatures_but_not_places():
    def tree(uuid: int, where: str, temperature: float) -> dict:
        cup = {"uuid": str(uuid), "name": "cup", "propMaterial": {"temperatureC": temperature}}
        room = {"uuid": str(uuid + 1), "name": where, "contents": {f"cup-{uuid}": cup}}
        return {"uuid": "1", "name": "universe", "contents": {f"{where}-{uuid + 1}": room}}

    assert state_anchor("boil", tree(100, "kitchen", 10.01)) == state_anchor(
        "boil", tree(900, "kitchen", 10.07)
    )
    assert state_anchor("boil", tree(100, "kitchen", 10.0)) != state_anchor(
        "boil", tree(100, "hallway", 10.0)
    )
    assert "uuid" not in canonical_tree(tree(5, "kitchen", 1.0))


def test_subgoals_are_read_from_the_engines_goal_progress():
    progress = (
        "Sequential Subgoals:\n---\n0\ttrue\t     GoalFind\tfocus on substance\n"
        "1\tfalse\t  GoalChangeStateOfMatter\tsubstance is in a liquid state\n"
        "Unordered and Optional Subgoals:\n0\tfalse\t  GoalInRoomWithObject\tbe near water\n"
    )
    assert subgoals(progress) == [
        ("focus on substance", True),
        ("substance is in a liquid state", False),
        ("be near water", False),
    ]


@pytest.mark.parametrize(
    ("env_id", "missing", "extra"),
    [
        ("creditgym/ScienceWorld-v0", "scienceworld", "scienceworld"),
        ("creditgym/TWX-Coin-v0", "textworld_express", "twx"),
    ],
)
def test_a_missing_engine_package_names_the_extra(monkeypatch, env_id, missing, extra):
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` fail
    with pytest.raises(ImportError, match=rf"pip install creditgym\[{extra}\]"):
        creditgym.make(env_id)


@pytest.mark.parametrize("env_id", ["creditgym/ScienceWorld-v0", "creditgym/TWX-TWC-v0"])
def test_missing_java_names_the_apt_package(monkeypatch, env_id):
    pytest.importorskip("scienceworld" if "Science" in env_id else "textworld_express")
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    with pytest.raises(ImportError, match=r"apt-get install openjdk-17-jre-headless"):
        creditgym.make(env_id)


def test_the_cli_says_missing_java_in_one_line(monkeypatch, capsys):
    pytest.importorskip("textworld_express")
    from creditgym.cli import main

    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    assert main(["eval", "--env", "creditgym/TWX-Coin-v0", "--agent", "random"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "apt-get install openjdk-17-jre-headless" in error


# ---- the engines ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twx_envs():
    pytest.importorskip("textworld_express", reason="needs creditgym[twx]")
    envs = {
        game: creditgym.make(f"creditgym/TWX-{game}-v0", split="test")
        for game in ("TWC", "CookingWorld", "Coin")
    }
    yield envs
    for env in envs.values():
        env.close()


@pytest.fixture(scope="module")
def sciworld_env():
    pytest.importorskip("scienceworld", reason="needs creditgym[scienceworld]")
    env = creditgym.make(
        "creditgym/ScienceWorld-v0",
        task=["find-non-living-thing", "lifespan-shortest-lived"],
        split="test",
    )
    yield env
    env.close()


def _play_expert(env, seed: int) -> tuple[dict, float, int]:
    _, info = env.reset(seed=seed)
    total, steps = 0.0, 0
    while True:
        _, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        total, steps = total + reward, steps + 1
        if terminated or truncated:
            return info, total, steps


@pytest.mark.parametrize("game", ["TWC", "CookingWorld", "Coin"])
def test_twx_expert_plays_the_gold_path_to_a_win(twx_envs, game):
    info, total, steps = _play_expert(twx_envs[game], seed=1)
    assert info["won"] and info["score"] == 100.0
    assert total == pytest.approx(1.0)
    assert steps <= info["gold_length"]


def test_sciworld_expert_wins_with_dense_score_rewards(sciworld_env):
    info, total, _ = _play_expert(sciworld_env, seed=1)  # lifespan-shortest-lived
    assert info["won"] and info["score"] == 100.0
    assert total == pytest.approx(1.0)
    assert "won" in info["events"]


def test_sciworld_offers_the_engines_actions_without_reset_task(sciworld_env):
    _, info = sciworld_env.reset(seed=0)
    offered = info["admissible_actions"]
    assert "reset task" not in offered and "look around" in offered
    assert len(offered) == len(set(offered)) <= 256
    assert info["symbolic_state"]["num_valid"] >= len(offered)
    _, _, _, _, info = sciworld_env.step("reset task")
    assert not info["valid"]


def test_branch_rollouts_on_sciworld_are_refused_before_training(tmp_path, sciworld_env):
    from conftest import TINY

    from creditgym.config import ConfigError, load_config
    from creditgym.rollout.branching import check_branching

    config = load_config(
        None,
        TINY
        + [
            "env.id=creditgym/ScienceWorld-v0",
            "env.kwargs={task: find-non-living-thing}",
            "rollout.branch.mode=tree",
            f"run.output_dir={tmp_path / 'run'}",
        ],
    )
    with pytest.raises(ConfigError, match="ScienceWorld-v0 cannot clone its state"):
        check_branching(config)


def test_sciworld_refuses_cloning_and_credit_that_needs_it_says_so_up_front(sciworld_env):
    from creditgym.measure.monte_carlo import monte_carlo_advantages

    assert not oracle.supports_cloning(sciworld_env)
    with pytest.raises(NotImplementedError, match="ScienceWorld-v0 cannot clone"):
        sciworld_env.unwrapped.clone_state()
    with pytest.raises(ValueError, match="cannot clone its state"):
        monte_carlo_advantages(
            "creditgym/ScienceWorld-v0",
            [],
            [],
            policy=None,
            continuations=2,
            env_kwargs={"task": "find-non-living-thing"},
        )


def test_twx_restore_replays_to_the_same_state_in_another_env(twx_envs):
    env = twx_envs["CookingWorld"]
    rng = random.Random(0)
    _, info = env.reset(seed=3)
    for _ in range(4):
        _, _, _, _, info = env.step(rng.choice(info["admissible_actions"]))
    snapshot = env.unwrapped.clone_state()
    tail = [rng.choice(info["admissible_actions"]) for _ in range(3)]
    first = [env.step(action) for action in tail]

    other = creditgym.make("creditgym/TWX-CookingWorld-v0", split="test")
    try:
        other.reset(seed=0)  # another game: restore must replace it
        observation, restored = oracle.restore_state(other, snapshot)
        assert restored["anchor"] == info["anchor"]
        assert restored["admissible_actions"] == info["admissible_actions"]
        again = [other.step(action) for action in tail]
        assert [(o, r, t, i["anchor"]) for o, r, t, _, i in again] == [
            (o, r, t, i["anchor"]) for o, r, t, _, i in first
        ]
    finally:
        other.close()
    assert oracle.supports_cloning(env)


def test_twx_same_seed_same_game_and_folds_differ(twx_envs):
    env = twx_envs["TWC"]
    first = env.reset(seed=5)
    again = env.reset(seed=5)
    assert first[0] == again[0] and first[1]["anchor"] == again[1]["anchor"]
    assert first[1]["game_seed"] == 20005  # test fold: the engine's seeds 20000-20999
