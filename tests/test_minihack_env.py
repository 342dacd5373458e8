"""MiniHack tasks as creditgym text envs: text commands to NLE actions, text observations of
the map, seeded levels, game-state events, and the search-based expert on every preset."""

import pytest

pytest.importorskip("minihack", reason="needs minihack and nle: pip install creditgym[minihack]")

import creditgym
from creditgym.envs import info as keys
from creditgym.envs.nethack import view

PRESETS = ["Room", "KeyRoom", "MazeWalk", "River"]


def make(name, **kwargs):
    return creditgym.make(f"creditgym/MiniHack{name}-v0", **kwargs)


def play_expert(env, seed):
    env.reset(seed=seed)
    events = []
    while True:
        _, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        events += info[keys.EVENTS]
        if terminated or truncated:
            return info, reward, events


@pytest.mark.parametrize("name", PRESETS)
def test_the_expert_solves_each_preset(name):
    env = make(name)
    for seed in range(3):
        info, reward, events = play_expert(env, seed)
        assert info[keys.WON], f"seed {seed}: {info['end_status']}"
        assert reward == 1.0 and events[-1] == "reached the staircase down"


def test_the_same_seed_gives_the_same_level_and_another_seed_another():
    env = make("KeyRoom")
    obs_a, info_a = env.reset(seed=4)
    obs_b, info_b = env.reset(seed=4)
    _, info_c = env.reset(seed=5)
    assert obs_a == obs_b and info_a[keys.ANCHOR] == info_b[keys.ANCHOR]
    assert info_c[keys.ANCHOR] != info_a[keys.ANCHOR]


def test_keyroom_events_follow_the_key_and_the_door():
    _, _, events = play_expert(make("KeyRoom"), 0)
    picked = [e for e in events if e.startswith("picked up") and "key" in e]
    assert picked and events.index(picked[0]) < events.index("door opened") < events.index(
        "reached the staircase down"
    )


def test_river_events_report_the_water_filled():
    _, _, events = play_expert(make("River"), 0)
    assert events.count("water filled by a boulder") >= 2


def test_the_observation_shows_the_map_nearby_things_and_inventory():
    obs, info = make("Room").reset(seed=0)
    assert "@" in obs and ">" in obs
    assert "staircase down: " in obs and "Inventory: a) " in obs
    assert info[keys.SYMBOLIC_STATE]["stairs_visible"] == 1.0


def test_aliases_name_the_same_action():
    env = make("Room")
    results = []
    for command in ["move east", "go east", "East.", "e"]:
        env.reset(seed=1)
        obs, *_, info = env.step(command)
        results.append((obs, info[keys.ANCHOR], info[keys.VALID]))
    assert all(result == results[0] for result in results)


def test_an_unknown_command_is_refused_without_a_game_step():
    env = make("Room")
    _, start = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("dance wildly")
    assert not info[keys.VALID] and reward == 0.0 and not (terminated or truncated)
    assert "Unknown command 'dance wildly'" in obs and "move north" in obs
    assert info[keys.ANCHOR] == start[keys.ANCHOR] and info[keys.SYMBOLIC_STATE]["steps"] == 1.0


def test_walking_into_a_wall_is_understood_but_not_valid():
    env = make("Room")
    _, start = env.reset(seed=0)
    x, y = start[keys.SYMBOLIC_STATE]["x"], start[keys.SYMBOLIC_STATE]["y"]
    for direction in ("north", "west", "south", "east"):
        *_, info = env.step(f"move {direction}")
        moved = (info[keys.SYMBOLIC_STATE]["x"], info[keys.SYMBOLIC_STATE]["y"]) != (x, y)
        assert info[keys.VALID] == moved
        if moved:
            return
    pytest.fail("the agent could move nowhere")


def test_apply_key_diagonally_to_the_door_is_refused_instead_of_hanging():
    env = make("KeyRoom")
    for seed in range(10):
        env.reset(seed=seed)
        while env.unwrapped.expert_action() != "apply key":
            env.step(env.unwrapped.expert_action())
        frame = env.unwrapped._frame
        kinds = view.glyph_tables().kind
        door = next(
            (frame.x + dx, frame.y + dy)
            for dx, dy in ((0, 1), (0, -1), (1, 0), (-1, 0))
            if kinds[frame.glyphs[frame.y + dy, frame.x + dx]] == view.CLOSED_DOOR
        )
        side = "east" if door[0] == frame.x else "south"  # step along the door's wall
        *_, info = env.step(f"move {side}")
        if (info[keys.SYMBOLIC_STATE]["x"], info[keys.SYMBOLIC_STATE]["y"]) == (frame.x, frame.y):
            continue  # blocked: try another level
        obs, _, _, _, info = env.step("apply key")
        assert not info[keys.VALID] and "diagonally" in obs
        return
    pytest.fail("no level let the agent stand diagonally to the door")


def test_the_step_budget_truncates():
    env = make("Room", max_steps=2)
    env.reset(seed=0)
    assert env.step("move north")[3] is False
    assert env.step("move north")[3] is True


def test_an_unknown_task_lists_the_registered_ones():
    with pytest.raises(ValueError, match="MiniHack-Room-5x5-v0"):
        creditgym.make("creditgym/MiniHack-v0", task="MiniHack-Roomm-v0")
