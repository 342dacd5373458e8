"""TextWorld games as creditgym text envs: any game file, generated challenge presets per seed,
the contract, TextWorld's facts as the anchor, quest events, and the policy_commands expert."""

import pytest

pytest.importorskip(
    "textworld", reason="needs the textworld package: pip install creditgym[textworld]"
)

import creditgym
from creditgym.envs import info as keys
from creditgym.envs.checks import check_text_env
from creditgym.envs.tw.games import generate_game

COIN = {"challenge": "tw-coin_collector", "settings": {"level": 2}}
TREASURE = {"challenge": "tw-treasure_hunter", "settings": {"level": 1}}
OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}
COOKING = {"challenge": "tw-cooking", "settings": {"recipe": 1, "take": 1, "go": 1, "cut": True}}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """Games are generated once per test session, into a temporary cache."""
    return tmp_path_factory.mktemp("textworld-cache")


@pytest.fixture(scope="session")
def coin_game(cache_dir):
    return generate_game("tw-coin_collector", {"level": 2}, seed=7, cache_dir=cache_dir)


def play_expert(env, seed):
    _, info = env.reset(seed=seed)
    total, events = 0.0, []
    for _ in range(env.unwrapped.max_steps):
        _, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        total += reward
        events += info[keys.EVENTS]
        if terminated or truncated:
            break
    return info, total, events


def test_a_game_file_plays_and_passes_the_contract(coin_game):
    env = creditgym.make("creditgym/TextWorld-v0", game_file=coin_game)
    check_text_env(env)  # includes gymnasium's check_env


# The presets' contract: tests/test_env_contract.py (TextWorld-v0 needs a game file: above).


def test_reset_seed_generates_the_game_once_and_replays_it(cache_dir):
    env = creditgym.make("creditgym/TextWorldCoin-v0", **COIN, cache_dir=cache_dir)
    obs_a, info_a = env.reset(seed=3)
    obs_b, info_b = creditgym.make("creditgym/TextWorldCoin-v0", **COIN, cache_dir=cache_dir).reset(
        seed=3
    )
    assert (obs_a, info_a[keys.ANCHOR]) == (obs_b, info_b[keys.ANCHOR])
    assert info_a["game_file"] == info_b["game_file"] and info_a["game_file"].startswith(
        str(cache_dir)
    )
    assert info_a["game_seed"] == 3


def test_num_games_maps_seeds_onto_a_fixed_pool(cache_dir):
    env = creditgym.make("creditgym/TextWorldCoin-v0", **COIN, num_games=2, cache_dir=cache_dir)
    assert env.reset(seed=5)[1]["game_seed"] == 1
    assert {env.reset()[1]["game_seed"] for _ in range(6)} <= {0, 1}


@pytest.mark.parametrize("preset", [COIN, TREASURE, COOKING], ids=["coin", "treasure", "cooking"])
def test_the_expert_wins_and_rewards_sum_to_one(cache_dir, preset):
    env = creditgym.make("creditgym/TextWorld-v0", **preset, cache_dir=cache_dir)
    for seed in (0, 1):
        info, total, events = play_expert(env, seed)
        assert info[keys.WON] and events[-1] == "won"
        assert total == pytest.approx(1.0)


def test_cooking_rewards_are_score_steps_over_max_score(cache_dir):
    env = creditgym.make("creditgym/TextWorld-v0", **COOKING, cache_dir=cache_dir)
    env.reset(seed=0)
    rewards = []
    while True:
        _, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        rewards.append(reward)
        if terminated or truncated:
            break
    max_score = info["max_score"]
    assert max_score > 1
    assert sorted({round(r, 6) for r in rewards if r}) == [round(1 / max_score, 6)]


def test_events_report_quest_facts_the_first_time_they_become_true(coin_game):
    env = creditgym.make("creditgym/TextWorld-v0", game_file=coin_game)
    _, _, events = play_expert(env, 0)
    assert "fact: in(coin, inventory)" in events and "score: 1/1" in events
    facts = [event for event in events if event.startswith("fact: ")]
    assert len(facts) == len(set(facts))


def test_the_expert_recovers_after_the_agent_deviates(coin_game):
    env = creditgym.make("creditgym/TextWorld-v0", game_file=coin_game)
    env.reset()
    first = env.unwrapped.expert_action()
    assert first.startswith("go ")
    env.step(first)
    back = "go " + OPPOSITE[first.split()[1]]
    env.step(back)  # a detour the walkthrough does not contain
    assert env.unwrapped.expert_action() == first
    info, total, _ = play_expert_from_here(env)
    assert info[keys.WON] and total == pytest.approx(1.0)


def test_the_anchor_is_the_fact_set_and_returns_when_the_state_does(coin_game):
    env = creditgym.make("creditgym/TextWorld-v0", game_file=coin_game)
    _, start = env.reset()
    assert "at(player, " in " ".join(start[keys.ANCHOR])
    go = next(a for a in start[keys.ADMISSIBLE_ACTIONS] if a.startswith("go "))
    back = OPPOSITE[go.split()[1]]
    *_, moved = env.step(go)
    *_, returned = env.step(f"go {back}")
    assert moved[keys.ANCHOR] != start[keys.ANCHOR]
    assert returned[keys.ANCHOR] == start[keys.ANCHOR]
    *_, looked = env.step("look")
    assert looked[keys.VALID] and looked[keys.ANCHOR] == start[keys.ANCHOR]


@pytest.mark.parametrize(
    "command",
    [
        "quit",
        "restart",
        "save",
        "look. go north",
        "go north then go south",
        "\\x",
        "xyzzy plugh",
        "go nowhere",
        "",
        "take" * 60,
    ],
)
def test_bad_commands_are_invalid_and_leave_the_game_playable(coin_game, command):
    env = creditgym.make("creditgym/TextWorld-v0", game_file=coin_game)
    _, start = env.reset()
    obs, reward, terminated, _, info = env.step(command)
    assert not info[keys.VALID] and reward == 0.0 and not terminated
    assert info[keys.ANCHOR] == start[keys.ANCHOR] and obs
    _, total, _ = play_expert_from_here(env)
    assert total == pytest.approx(1.0)


def play_expert_from_here(env):
    total, info = 0.0, {}
    for _ in range(20):
        _, reward, terminated, _, info = env.step(env.unwrapped.expert_action())
        total += reward
        if terminated:
            break
    return info, total, None


def test_the_step_budget_truncates(coin_game):
    env = creditgym.make("creditgym/TextWorld-v0", game_file=coin_game, max_steps=2)
    env.reset()
    assert env.step("look")[3] is False
    assert env.step("look")[3] is True


def test_observations_are_clean_text_without_the_interpreter_prompt(coin_game):
    env = creditgym.make("creditgym/TextWorld-v0", game_file=coin_game)
    obs, info = env.reset()
    assert obs.startswith(info[keys.TASK]) and "-= " in obs and "\n>" not in obs
    obs, *_ = env.step("inventory")
    assert obs == "You are carrying nothing."


def test_wrong_arguments_say_how_to_fix_them(tmp_path):
    with pytest.raises(ValueError, match="exactly one of game_file"):
        creditgym.make("creditgym/TextWorld-v0")
    with pytest.raises(FileNotFoundError, match="tw-make"):
        creditgym.make("creditgym/TextWorld-v0", game_file=tmp_path / "missing.z8")
    with pytest.raises(ValueError, match="takes \\['level'\\]"):
        creditgym.make("creditgym/TextWorldCoin-v0", settings={"levle": 3})
    with pytest.raises(ValueError, match="unknown TextWorld challenge"):
        creditgym.make("creditgym/TextWorld-v0", challenge="tw-zork")
