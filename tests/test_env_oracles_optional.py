"""Oracle hooks of the optional game envs (TextWorld, MiniHack): cost-to-go where the expert's
plan is known, and a clear refusal to clone."""

from __future__ import annotations

import random
import warnings

import pytest

import creditgym
from creditgym.envs import oracle


def _expert_run(env, info: dict) -> tuple[int, list[int | None]]:
    """Play the expert until the episode ends; its step count and `steps_to_go` before each."""
    base, seen, steps = env.unwrapped, [], 0
    while True:
        seen.append(base.steps_to_go())
        if info["won"]:
            return steps, seen
        _, _, terminated, truncated, info = env.step(base.expert_action())
        steps += 1
        if (terminated or truncated) and not info["won"]:
            return steps, seen


def _random_moves(env, info: dict, rng: random.Random, moves: int) -> dict:
    for _ in range(moves):
        _, _, terminated, truncated, info = env.step(rng.choice(info["admissible_actions"]))
        if terminated or truncated:
            break
    return info


# ---- TextWorld ------------------------------------------------------------------------------

TW_GAMES = [
    ("tw-coin_collector", {"level": 2}),
    ("tw-treasure_hunter", {"level": 1}),
    ("tw-cooking", {"recipe": 1, "take": 1, "go": 1, "cut": True}),
]


@pytest.mark.parametrize(("challenge", "settings"), TW_GAMES)
def test_textworld_cost_to_go_is_the_number_of_steps_the_expert_takes(challenge, settings):
    pytest.importorskip("textworld", reason="needs creditgym[textworld]")
    env = creditgym.make(
        "creditgym/TextWorld-v0", challenge=challenge, settings=settings, max_steps=200
    )
    rng = random.Random(0)
    for seed in range(2):
        for moves in (0, 3):
            _, info = env.reset(seed=seed)
            info = _random_moves(env, info, rng, moves)
            if env.unwrapped.steps_to_go() is None:  # a random move lost the game
                assert info["symbolic_state"]["lost"] == 1.0
                continue
            steps, seen = _expert_run(env, info)
            # TextWorld recomputes the shortest winning sequence, also off the walkthrough
            assert seen == list(range(steps, -1, -1))


def test_textworld_refuses_to_clone_naming_the_env():
    pytest.importorskip("textworld", reason="needs creditgym[textworld]")
    env = creditgym.make("creditgym/TextWorldCoin-v0")
    assert not oracle.supports_cloning(env)
    with pytest.raises(NotImplementedError, match="creditgym/TextWorldCoin-v0 cannot clone"):
        env.unwrapped.clone_state()


# ---- MiniHack --------------------------------------------------------------------------------

MINIHACK = ["Room", "KeyRoom", "MazeWalk", "River"]


@pytest.mark.parametrize("name", MINIHACK)
def test_minihack_cost_to_go_is_the_expert_walk_where_known(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("minihack", reason="needs creditgym[minihack]")
    env = creditgym.make(f"creditgym/MiniHack{name}-v0", max_steps=1000)
    rng = random.Random(0)
    known = 0
    for seed in range(3):
        for moves in (0, 4):
            _, info = env.reset(seed=seed)
            info = _random_moves(env, info, rng, moves)
            steps, seen = _expert_run(env, info)
            assert seen[-1] == 0  # the expert wins every preset
            for taken, cost in enumerate(seen):
                if cost is not None:  # where the walk is known it is exactly what remains
                    assert cost == steps - taken
                    known += 1
    assert known >= 12  # at least the final walk to the stairs of every episode


def test_minihack_room_cost_to_go_is_known_from_the_start():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("minihack", reason="needs creditgym[minihack]")
    env = creditgym.make("creditgym/MiniHackRoom-v0")
    for seed in range(4):
        env.reset(seed=seed)
        assert env.unwrapped.steps_to_go() is not None  # a lit room shows the stairs
    assert not oracle.supports_cloning(env)
    with pytest.raises(NotImplementedError, match="creditgym/MiniHackRoom-v0 cannot clone"):
        oracle.clone_state(env)
