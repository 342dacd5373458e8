"""The expert and the search engine on the default 10,000-product catalog (built once into a
temporary cache: about a second)."""

import numpy as np
import pytest

from creditgym.envs import info as keys
from creditgym.envs.webshop import WebShopEnv
from creditgym.envs.webshop.goals import make_goal, suggested_query

N_GOALS = 200


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return WebShopEnv(
        n_products=10_000,
        split="test",
        max_steps=15,
        cache_dir=str(tmp_path_factory.mktemp("webshop-cache")),
    )


def test_expert_succeeds_on_200_test_instructions(env):
    won, scores, steps = [], [], []
    for index in range(N_GOALS):
        _, info = env.reset(options={"goal_index": index})
        for step in range(1, env.max_steps + 1):  # noqa: B007 (`step` is read after the loop)
            action = env.expert_action()
            assert action in info[keys.ADMISSIBLE_ACTIONS]
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        won.append(info[keys.WON])
        scores.append(info["score"])
        steps.append(step)
    assert np.mean(won) >= 0.95
    assert np.mean(scores) >= 98.0
    assert max(steps) <= 7  # search, (at most a page turn or two), item, two options, buy


def test_target_is_in_the_top_ten_for_the_expert_query(env):
    goals = [make_goal(env.catalog, "test", index) for index in range(N_GOALS)]
    top10 = [
        goal.product in env.search_engine.search(suggested_query(goal), k=10) for goal in goals
    ]
    assert np.mean(top10) >= 0.95


def test_random_agent_rarely_succeeds(env):
    rng = np.random.default_rng(0)
    won = []
    for index in range(100):
        _, info = env.reset(options={"goal_index": index})
        terminated = truncated = False
        while not (terminated or truncated):
            actions = info[keys.ADMISSIBLE_ACTIONS]
            _, _, terminated, truncated, info = env.step(actions[rng.integers(len(actions))])
        won.append(info[keys.WON])
    assert np.mean(won) < 0.1  # the task is not solved by wandering
