"""Coin's omniscient cost-to-go: by hand on small maps, and in the engine, where following it
greedily wins in exactly the number of commands it first promised."""

from __future__ import annotations

import pytest

import creditgym
from creditgym.envs.twx.coin import coin_steps_to_go


def _room(name, contents=None, **exits):
    """A room as the engine's JSON has it; exits: direction=(neighbour, door open or None)."""
    room = {"name": name, "contents": contents or {}}
    for direction in ("North", "South", "East", "West"):
        neighbour, door = exits.get(direction.lower(), (None, None))
        room[f"location{direction}"] = neighbour
        room[f"door{direction}"] = None if door is None else {"name": "door", "isOpen": door}
    return room


def _map(**coin_in):
    """kitchen -(closed door)- pantry -(no door)- garden; the coin where `coin_in` says."""
    return {
        "kitchen": _room("kitchen", coin_in.get("kitchen"), north=("pantry", False)),
        "pantry": _room(
            "pantry", coin_in.get("pantry"), south=("kitchen", False), east=("garden", None)
        ),
        "garden": _room("garden", coin_in.get("garden"), west=("pantry", None)),
    }


COIN = {"coin": {"name": "coin", "contents": {}}}


def test_a_coin_in_the_agents_room_is_one_take_away():
    assert coin_steps_to_go(_map(kitchen=COIN), "kitchen") == 1


def test_a_closed_door_costs_an_open_and_a_doorless_exit_only_the_move():
    assert coin_steps_to_go(_map(garden=COIN), "kitchen") == 4  # open, move, move, take
    assert coin_steps_to_go(_map(kitchen=COIN), "garden") == 4  # move, open, move, take


def test_closed_containers_around_the_coin_are_opened_first():
    chest = {"chest": {"name": "chest", "isOpenable": True, "isOpen": False, "contents": COIN}}
    assert coin_steps_to_go(_map(pantry=chest), "pantry") == 2
    chest["chest"]["isOpen"] = True
    assert coin_steps_to_go(_map(pantry=chest), "pantry") == 1


def test_the_cheaper_of_two_routes_is_taken():
    rooms = _map(garden=COIN)
    rooms["kitchen"]["locationEast"], rooms["kitchen"]["doorEast"] = "garden", None
    rooms["garden"]["locationWest"], rooms["garden"]["doorWest"] = "kitchen", None
    assert coin_steps_to_go(rooms, "kitchen") == 2  # straight east, then take


def test_no_coin_anywhere_has_no_cost_to_go():
    assert coin_steps_to_go(_map(), "kitchen") is None


@pytest.mark.parametrize("seed", [4, 8])
def test_following_the_oracle_greedily_wins_in_exactly_its_first_promise(seed):
    env = creditgym.make("creditgym/TWX-Coin-v0", max_steps=60)
    try:
        _, info = env.reset(seed=seed)
        oracle = env.unwrapped
        promised = oracle.steps_to_go()
        assert promised is not None and promised > 0
        for taken in range(1, promised + 1):
            snapshot = oracle.clone_state()
            after = {}
            for action in info["admissible_actions"]:
                oracle.restore_state(snapshot)
                env.step(action)
                after[action] = oracle.steps_to_go()
            oracle.restore_state(snapshot)
            best = min(after, key=lambda a: after[a] if after[a] is not None else 10**6)
            assert after[best] == promised - taken  # one command closer, never more
            _, _, terminated, _, info = env.step(best)
        assert terminated and info["won"] and oracle.steps_to_go() == 0
    finally:
        env.close()
