"""WebShopEnv: the Gymnasium and creditgym text-env contracts, pages and transitions."""

import random

import gymnasium as gym
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import creditgym.envs as envs
from creditgym.envs import info as keys
from creditgym.envs.webshop import WebShopEnv
from creditgym.envs.webshop.goals import suggested_query

SMALL = dict(n_products=300, max_steps=15)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("webshop-cache"))


@pytest.fixture
def env(cache_dir):
    return WebShopEnv(**SMALL, cache_dir=cache_dir)


def play(env, actions):
    """Step through `actions`; return the last (obs, reward, terminated, truncated, info)."""
    for action in actions:
        result = env.step(action)
    return result


def first_item_click(info):
    return next(a for a in info[keys.ADMISSIBLE_ACTIONS] if a.startswith("click[b0"))


@pytest.mark.parametrize(
    "env_id", ["creditgym/WebShopEasy-v0", "creditgym/WebShop-v0", "creditgym/WebShop100k-v0"]
)
def test_presets_are_registered_with_descriptions(env_id):
    assert env_id in envs.list_envs()
    assert "shopping" in envs.describe(env_id).lower()


def test_easy_preset_has_500_products(cache_dir):  # the contract: tests/test_env_contract.py
    env = envs.make("creditgym/WebShopEasy-v0", cache_dir=cache_dir)
    assert env.unwrapped.catalog.params.n_products == 500


def test_same_seed_gives_same_episode(env):
    def walk(seed):
        rng = random.Random(seed)
        obs, info = env.reset(seed=seed)
        trace = [obs]
        for _ in range(12):
            obs, reward, terminated, truncated, info = env.step(
                rng.choice(info[keys.ADMISSIBLE_ACTIONS])
            )
            trace.append((obs, reward, terminated, truncated))
            if terminated or truncated:
                break
        return trace

    assert walk(5) == walk(5)
    assert walk(5)[0] != walk(6)[0] or walk(5)[0] != walk(7)[0]


def test_goal_index_must_be_a_non_negative_int(env):
    with pytest.raises(ValueError, match=r"options\['goal_index'\]=-1: expected an int >= 0"):
        env.reset(options={"goal_index": -1})


def test_reset_goal_index_option_picks_that_goal(env):
    _, info_a = env.reset(options={"goal_index": 3})
    _, info_b = env.reset(seed=123, options={"goal_index": 3})
    assert info_a[keys.TASK] == info_b[keys.TASK]
    assert info_a["goal_index"] == 3


def test_search_page_offers_the_suggested_query(env):
    obs, info = env.reset(seed=0)
    assert obs == f"WebShop [SEP] Instruction: [SEP] {info[keys.TASK]} [SEP] Search"
    assert info[keys.ADMISSIBLE_ACTIONS] == [f"search[{suggested_query(env.goal)}]"]
    assert info[keys.ANCHOR] == ("search", "", 0, -1, ())
    assert info[keys.VALID] and not info[keys.WON] and info[keys.EVENTS] == []


def test_any_search_text_is_accepted(env):
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("search[Something Entirely Different 42]")
    assert info[keys.VALID] and info[keys.EVENTS][0] == "searched"
    assert info[keys.ANCHOR][:3] == ("results", "something entirely different 42", 1)
    assert (reward, terminated, truncated) == (0.0, False, False)


def test_search_matching_nothing_shows_an_empty_results_page(env):
    env.reset(seed=0)
    obs, _, _, _, info = env.step("search[zzqx]")
    assert "Page 1 (Total results: 0)" in obs
    assert info[keys.ADMISSIBLE_ACTIONS] == ["click[back to search]"]


def test_results_page_lists_ten_products_and_pages_through_fifty(env):
    env.reset(seed=0)
    _, _, _, _, info = env.step(f"search[{suggested_query(env.goal)}]")
    assert info[keys.SYMBOLIC_STATE]["num_results"] == 50
    items = [a for a in info[keys.ADMISSIBLE_ACTIONS] if a.startswith("click[b0")]
    assert len(items) == 10
    assert info[keys.ADMISSIBLE_ACTIONS][:2] == ["click[back to search]", "click[next >]"]
    for page in range(2, 6):
        _, _, _, _, info = env.step("click[next >]")
        assert info[keys.ANCHOR][2] == page
    assert "click[next >]" not in info[keys.ADMISSIBLE_ACTIONS]  # page 5 of 50 is the last
    _, _, _, _, info = env.step("click[< prev]")
    assert info[keys.ANCHOR][2] == 4 and info[keys.EVENTS] == ["previous page"]


def test_item_page_shows_options_and_buttons(env):
    env.reset(seed=0)
    _, _, _, _, info = env.step(f"search[{suggested_query(env.goal)}]")
    obs, _, _, _, info = env.step(first_item_click(info))
    item = info[keys.ANCHOR][3]
    product = env.catalog.product(item)
    values = [f"click[{v}]" for offered in product.options.values() for v in offered]
    assert info[keys.ADMISSIBLE_ACTIONS] == [
        "click[back to search]",
        "click[< prev]",
        *values,
        "click[description]",
        "click[features]",
        "click[buy now]",
    ]
    assert product.title in obs and f"Price: ${product.price:.2f}" in obs


def test_options_persist_through_sub_pages_and_reset_on_leaving_the_item(env):
    env.reset(seed=0)
    _, _, _, _, info = env.step(f"search[{suggested_query(env.goal)}]")
    _, _, _, _, info = env.step(first_item_click(info))
    kind, values = next(iter(env.catalog.options(info[keys.ANCHOR][3]).items()))
    _, _, _, _, info = env.step(f"click[{values[0]}]")
    assert info[keys.EVENTS] == [f"chose option {kind}: {values[0]}"]
    assert info[keys.ANCHOR][4] == ((kind, values[0]),)
    obs, _, _, _, info = env.step("click[description]")
    assert (
        info[keys.ANCHOR][0] == "description"
        and env.catalog.description(info[keys.ANCHOR][3]) in obs
    )
    assert info[keys.ADMISSIBLE_ACTIONS] == ["click[back to search]", "click[< prev]"]
    _, _, _, _, info = env.step("click[< prev]")
    assert info[keys.ANCHOR][0] == "item" and info[keys.ANCHOR][4] == ((kind, values[0]),)
    _, _, _, _, info = env.step("click[< prev]")
    assert info[keys.ANCHOR] == ("results", info[keys.ANCHOR][1], 1, -1, ())


def test_invalid_action_keeps_the_page_costs_a_step_and_says_why(env):
    _, info = env.reset(seed=0)
    obs, reward, terminated, truncated, after = env.step("click[buy now]")
    assert obs.startswith(
        "Invalid action 'click[buy now]': there is no 'buy now' to click on this page."
    )
    assert not after[keys.VALID] and after[keys.ANCHOR] == info[keys.ANCHOR]
    assert after[keys.SYMBOLIC_STATE]["steps_taken"] == 1


def test_search_outside_the_search_page_is_invalid(env):
    env.reset(seed=0)
    env.step("search[shampoo]")
    obs, _, _, _, info = env.step("search[shampoo]")
    assert not info[keys.VALID] and "click[back to search] first" in obs


def test_clicks_are_case_and_space_insensitive(env):
    env.reset(seed=0)
    env.step(f"search[{suggested_query(env.goal)}]")
    _, _, _, _, info = env.step("  CLICK[ Next   > ] ")
    assert info[keys.VALID] and info[keys.ANCHOR][2] == 2


def test_buying_without_choosing_options_earns_eq1_partial_reward(env):
    _, info = env.reset(seed=0, options={"goal_index": 0})
    goal = env.goal
    while info[keys.ANCHOR][0] != "item":  # the expert searches and opens a matching product
        _, _, _, _, info = env.step(env.expert_action())
    assert info[keys.SYMBOLIC_STATE]["item_best_reward"] == 1.0
    obs, reward, terminated, truncated, info = env.step("click[buy now]")
    # attributes and price match, no option chosen: (|U_att| + 0 + 1) / (|U_att| + |U_opt| + 1)
    expected = (len(goal.attributes) + 1) / (len(goal.attributes) + len(goal.options) + 1)
    assert len(goal.options) == 2 and reward == pytest.approx(expected)
    assert (terminated, truncated, info[keys.WON]) == (True, False, False)
    assert info["score"] == pytest.approx(100 * expected)
    assert info["reward_details"]["options_matched"] == 0
    assert info[keys.EVENTS] == ["bought"] and info[keys.ADMISSIBLE_ACTIONS] == []
    assert obs.startswith("Thank you for shopping with us!")


def test_step_after_buying_does_not_raise(env):
    env.reset(seed=0)
    while True:
        _, _, terminated, _, _ = env.step(env.expert_action())
        if terminated:
            break
    obs, reward, terminated, truncated, info = env.step("click[buy now]")
    assert (reward, terminated, info[keys.VALID]) == (0.0, True, False) and "call reset()" in obs


def test_step_budget_truncates_with_score_zero(cache_dir):
    env = WebShopEnv(n_products=300, max_steps=3, cache_dir=cache_dir)
    env.reset(seed=0)
    results = [env.step("look around") for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True]
    assert [r[2] for r in results] == [False, False, False]
    assert results[-1][4]["score"] == 0.0


def test_every_admissible_action_is_valid(env):
    rng = random.Random(0)
    _, info = env.reset(seed=1)
    for _ in range(40):
        action = rng.choice(info[keys.ADMISSIBLE_ACTIONS])
        _, _, terminated, truncated, info = env.step(action)
        assert info[keys.VALID], action
        if terminated or truncated:
            _, info = env.reset(seed=rng.randrange(100))


def test_expert_episode_events_and_symbolic_state(env):
    _, info = env.reset(seed=2)
    seen = []
    while True:
        action = env.expert_action()
        assert action in info[keys.ADMISSIBLE_ACTIONS]
        _, reward, terminated, _, info = env.step(action)
        seen += info[keys.EVENTS]
        if terminated:
            break
    assert seen[:2] == ["searched", "target item in results"]
    assert "clicked target item" in seen and seen[-2:] == ["bought", "goal satisfied"]
    assert [e for e in seen if e.startswith("chose option")] == [
        f"chose option {kind}: {value}" for kind, value in env.goal.options
    ]
    state = info[keys.SYMBOLIC_STATE]
    assert state["bought"] == 1 and state["goal_options_chosen"] == len(env.goal.options) == 2
    assert reward == 1.0 and info[keys.WON] and info["score"] == 100.0


def test_render_ansi_returns_the_observation(cache_dir):
    env = WebShopEnv(n_products=300, cache_dir=cache_dir, render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert env.render() == obs


def test_bad_constructor_arguments_say_what_to_fix(cache_dir):
    with pytest.raises(ValueError, match="unknown webshop split 'dev'"):
        WebShopEnv(n_products=300, split="dev", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="goal_attributes"):
        WebShopEnv(n_products=300, goal_attributes=(2, 1), cache_dir=cache_dir)


def test_step_before_reset_asks_for_reset(cache_dir):
    with pytest.raises(gym.error.ResetNeeded):
        WebShopEnv(n_products=300, cache_dir=cache_dir).step("search[x]")


_fuzz_env = {}


@settings(max_examples=150, deadline=None)
@given(
    actions=st.lists(
        st.one_of(
            st.text(max_size=40),
            st.builds(lambda s: f"search[{s}]", st.text(max_size=20)),
            st.builds(lambda s: f"click[{s}]", st.text(max_size=20)),
            st.sampled_from(
                [
                    "click[next >]",
                    "click[< prev]",
                    "click[buy now]",
                    "click[back to search]",
                    "search[shampoo]",
                    "click[description]",
                    "]search[",
                    "click[]",
                ]
            ),
        ),
        max_size=12,
    )
)
def test_fuzzed_actions_never_raise(cache_dir, actions):
    env = _fuzz_env.setdefault("env", WebShopEnv(**SMALL, cache_dir=cache_dir))
    env.reset(seed=0)
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        if terminated or truncated:
            env.reset(seed=1)
        elif info[keys.ADMISSIBLE_ACTIONS]:  # keep the walk moving past the search page
            env.step(info[keys.ADMISSIBLE_ACTIONS][-1])
