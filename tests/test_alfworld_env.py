"""ALFWorld through its own engine: the generated games, the official-data discovery, the
expert, determinism, events and anchors, and the oracle hooks it cannot offer.

The contract test (tests/test_env_contract.py) covers ``creditgym/ALFWorldOffline-v0``; here
``creditgym/ALFWorld-v0`` is also put through it on generated games laid out as ALFWorld's data.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("alfworld", reason="needs creditgym[alfworld]")
pytest.importorskip("fast_downward", reason="needs creditgym[alfworld] (textworld[pddl])")

import creditgym  # noqa: E402
from creditgym.envs import oracle  # noqa: E402
from creditgym.envs.alfworld import offline  # noqa: E402
from creditgym.envs.alfworld.games import official_games  # noqa: E402
from creditgym.envs.checks import check_text_env  # noqa: E402
from creditgym.envs.optional import MissingGameData  # noqa: E402

VALID_SEEN_GAMES = 6  # one per task type: game n has task type TASK_TYPES[n % 6]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A creditgym cache holding the first valid_seen games, generated once for the module."""
    root = tmp_path_factory.mktemp("creditgym-cache")
    for index in range(VALID_SEEN_GAMES):
        offline.offline_game("valid_seen", index, root / "alfworld")
    return root


@pytest.fixture(scope="module")
def env(cache):
    env = creditgym.make(
        "creditgym/ALFWorldOffline-v0",
        split="valid_seen",
        num_games=VALID_SEEN_GAMES,
        cache_dir=cache,
    )
    yield env
    env.close()


def _play_expert(env, seed):
    obs, info = env.reset(seed=seed)
    transcript, events = [obs], []
    done = False
    while not done:
        action = env.unwrapped.expert_action()
        obs, reward, terminated, truncated, info = env.step(action)
        transcript += [action, obs, info["anchor"]]
        events += info["events"]
        done = terminated or truncated
    return info, transcript, events, reward


# -- The expert --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def expert_games(env):
    """The expert's play of a lamp, a cleaning and a two-object game (all six task types:
    benchmarks/alfworld_expert.py)."""
    played = {}
    for seed in (1, 2, 5):
        info, _, events, reward = _play_expert(env, seed)
        played[info["task_type"]] = (info["won"], reward, events)
    return played


def test_the_handcoded_expert_wins_the_games(expert_games):
    assert sorted(expert_games) == [
        "look_at_obj_in_light",
        "pick_clean_then_place_in_recep",
        "pick_two_obj_and_place",
    ]
    assert all(won and reward == 1.0 for won, reward, _ in expert_games.values()), expert_games


def test_events_are_the_goals_conjuncts_as_they_first_hold(expert_games):
    for task_type, (_, _, events) in expert_games.items():
        assert events[-1] == "won", task_type
        assert events[0].startswith("took "), task_type
    clean = expert_games["pick_clean_then_place_in_recep"][2]
    assert [e.split()[0] for e in clean] == ["took", "cleaned", "placed", "won"]
    two = expert_games["pick_two_obj_and_place"][2]
    assert sum(e.startswith("placed ") for e in two) == 2 and len(set(two)) == len(two)
    assert any(e.startswith("turned on ") for e in expert_games["look_at_obj_in_light"][2])


def test_same_seed_same_game_and_same_transcript(env):
    first = _play_expert(env, 1)[1]
    random.seed(12345)  # the expert's random choices must not depend on the global RNG
    assert _play_expert(env, 1)[1] == first
    obs, info = env.reset(seed=1 + VALID_SEEN_GAMES)  # seeds wrap around the split's games
    assert obs == first[0] and info["game_index"] == 1


# -- Anchors, validity, the text ---------------------------------------------------------------
def test_anchor_is_the_true_state_looking_around_leaves_it_moving_changes_it(env):
    _, info = env.reset(seed=0)
    start = info["anchor"]
    _, _, _, _, info = env.step("look")
    assert info["valid"] and info["anchor"] == start  # `checked` facts are left out
    go = next(a for a in info["admissible_actions"] if a.startswith("go to "))
    _, _, _, _, info = env.step(go)
    assert info["anchor"] != start
    _, other = env.reset(seed=1)
    assert other["anchor"] != start  # another game, another state


def test_a_command_that_is_not_admissible_changes_nothing(env):
    _, info = env.reset(seed=0)
    obs, reward, terminated, _, after = env.step("take the moon from the sky")
    assert obs == "Nothing happens." and not after["valid"] and reward == 0.0
    assert after["anchor"] == info["anchor"] and not terminated
    action = info["admissible_actions"][0]
    _, _, _, _, after = env.step(f"  {action.upper()}. ")
    assert after["valid"]


def test_task_and_task_type_come_from_the_game(env):
    obs, info = env.reset(seed=2)
    assert info["task_type"] == "pick_clean_then_place_in_recep"
    assert info["task"] and f"Your task is to: {info['task']}" in obs
    assert info["task"].startswith(("put a clean", "clean some"))


# -- Generated games ---------------------------------------------------------------------------
def test_generated_games_are_the_same_files_wherever_they_are_made(tmp_path, cache):
    again = offline.offline_game("valid_seen", 4, tmp_path)
    first = offline.offline_game("valid_seen", 4, cache / "alfworld")
    for name in ("game.tw-pddl", "traj_data.json"):
        assert (again.folder / name).read_bytes() == (first.folder / name).read_bytes()


def test_valid_unseen_games_come_from_floor_plans_train_never_uses():
    unseen, train = offline.floor_plans("valid_unseen"), offline.floor_plans("train")
    assert set(unseen) == {10, 219, 308, 424} and not set(unseen) & set(train)


def test_generated_game_is_in_alfworlds_format(cache):
    game = offline.offline_game("valid_seen", 0, cache / "alfworld")
    data = json.loads(game.game_file.read_text())
    assert {"pddl_domain", "grammar", "pddl_problem", "solvable"} <= set(data)
    assert "UNKNOWN GOAL" not in data["grammar"] and "(:goal" in data["pddl_problem"]
    traj = json.loads((game.folder / "traj_data.json").read_text())
    assert traj["task_type"] == "pick_and_place_simple"
    assert set(traj["pddl_params"]) >= {"object_target", "parent_target", "toggle_target"}


# -- Official data -----------------------------------------------------------------------------
def test_official_id_plays_the_games_it_finds_in_alfworld_data(cache, tmp_path, monkeypatch):
    generated = offline.offline_root(cache / "alfworld") / "json_2.1.1" / "valid_seen"
    for game in sorted(generated.iterdir())[:2]:  # ALFWorld's layout: <task>/<trial>/
        shutil.copytree(game, tmp_path / "json_2.1.1" / "valid_seen" / game.name)
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path))
    env = creditgym.make("creditgym/ALFWorld-v0", split="valid_seen")
    try:
        games = env.unwrapped._games
        assert [g.parent.parent.name for g in games] == [
            "look_at_obj_in_light-00001",
            "pick_and_place_simple-00000",
        ]
        check_text_env(env, steps=5)
    finally:
        env.close()


def test_missing_official_data_is_one_line_naming_alfworld_download(tmp_path, monkeypatch):
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(MissingGameData) as caught:
        creditgym.make("creditgym/ALFWorld-v0", split="valid_unseen")
    message = str(caught.value)
    assert "\n" not in message
    assert "alfworld-download" in message and "ALFWORLD_DATA" in message
    assert str(tmp_path / "nowhere") in message and "ALFWorldOffline-v0" in message


def test_the_cli_says_missing_data_in_one_line(tmp_path, monkeypatch, capsys):
    from creditgym.cli import main

    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path))
    code = main(["eval", "--env", "creditgym/ALFWorld-v0", "--agent", "random", "--episodes", "1"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "alfworld-download" in err


def test_unsolvable_unsupported_and_broken_games_are_left_out(tmp_path, cache):
    source = offline.offline_game("valid_seen", 0, cache / "alfworld")
    split = tmp_path / "json_2.1.1" / "train"
    kinds = {
        "pick_and_place_simple-A-None-B-1/trial_ok": None,
        "pick_and_place_simple-A-None-B-2/trial_unsolvable": {"solvable": False},
        "pick_and_place_with_movable_recep-A-C-B-3/trial_x": None,
        "pick_and_place_simple-ASliced-None-B-4/trial_x": None,
        "pick_and_place_simple-A-None-B-5/trial_broken": "not json",
    }
    for folder, change in kinds.items():
        (split / folder).mkdir(parents=True)
        traj = (source.folder / "traj_data.json").read_bytes()
        (split / folder / "traj_data.json").write_bytes(traj)
        data = json.loads(source.game_file.read_text())
        text = "{oops" if change == "not json" else json.dumps({**data, **(change or {})})
        (split / folder / "game.tw-pddl").write_text(text)
    games = official_games("train", tmp_path)
    assert [g.parent.name for g in games] == ["trial_ok"]


# -- Oracle hooks and extras -------------------------------------------------------------------
def test_cloning_is_refused_up_front_by_branch_rollouts(env):
    from creditgym.config import ConfigError, load_config
    from creditgym.rollout.branching import check_branching

    assert not oracle.supports_cloning(env)
    with pytest.raises(NotImplementedError, match="cannot clone its state"):
        env.unwrapped.clone_state()
    config = load_config(None, ["env.id=creditgym/ALFWorldOffline-v0", "rollout.branch.mode=tree"])
    with pytest.raises(ConfigError, match="ALFWorldOffline-v0 cannot clone.*branch.mode=none"):
        check_branching(config)


def test_closing_leaves_fast_downwards_library_loaded(monkeypatch):
    import fast_downward

    def unload(library):  # cleanup + dlclose crashed the interpreter after 40 closed envs
        raise AssertionError("close() must not unload Fast Downward's library")

    monkeypatch.setattr(fast_downward, "close_lib", unload)
    creditgym.make("creditgym/ALFWorldOffline-v0").close()


def test_steps_to_go_is_unknown_until_won(env):
    env.reset(seed=0)
    assert oracle.cost_to_go(env) is None


def test_importing_creditgym_registers_the_ids_without_importing_alfworld():
    code = (
        "import sys, creditgym; ids = creditgym.list_envs(); "
        "print('creditgym/ALFWorld-v0' in ids, 'creditgym/ALFWorldOffline-v0' in ids, "
        "sorted(m for m in ('alfworld', 'textworld', 'fast_downward') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "True True []", result.stderr[-500:]


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "alfworld", None)
    with pytest.raises(ImportError, match=r"pip install creditgym\[alfworld\]"):
        creditgym.make("creditgym/ALFWorldOffline-v0")


def test_bad_arguments_are_refused_naming_them():
    with pytest.raises(ValueError, match="split"):
        creditgym.make("creditgym/ALFWorldOffline-v0", split="test")
    with pytest.raises(ValueError, match="task type"):
        creditgym.make("creditgym/ALFWorldOffline-v0", task_types=["pick_and_juggle"])
