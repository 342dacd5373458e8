"""Oracle hooks of the environments: cost-to-go (`steps_to_go`) and state cloning.

Cost-to-go must be exactly the number of steps the expert takes to win from the state it is
asked in; a restored snapshot must continue exactly as the original env does.
"""

from __future__ import annotations

import random

import pytest

from creditgym.envs import oracle
from creditgym.envs.registry import make

CLONABLE = [
    "creditgym/HouseholdEasy-v0",
    "creditgym/HouseholdMedium-v0",
    "creditgym/Household-v0",
    "creditgym/WebShopEasy-v0",
    "creditgym/WebShop-v0",
    "creditgym/SearchQAEasy-v0",
    "creditgym/SearchQA-v0",
]


def _make_unlimited(env_id: str):
    """The env with a step budget no expert plan reaches, so no count is ever cut short."""
    if env_id.startswith("creditgym/SearchQA"):
        return make(env_id, max_turns=1000)
    return make(env_id, max_steps=1000)


def _random_walk(env, info: dict, rng: random.Random, moves: int) -> tuple[dict, bool]:
    """`moves` random admissible actions (fewer if the episode ends); returns (info, ended)."""
    for _ in range(moves):
        actions = info.get("admissible_actions") or ["look"]
        _, _, terminated, truncated, info = env.step(rng.choice(actions))
        if terminated or truncated:
            return info, True
    return info, False


def _expert_steps_to_win(env, info: dict, limit: int = 500) -> tuple[int, list[int | None]]:
    """Play the expert until it wins; the number of steps and `steps_to_go` along the way."""
    base = env.unwrapped
    steps, seen = 0, [base.steps_to_go()]
    while not info.get("won"):
        _, _, terminated, truncated, info = env.step(base.expert_action())
        steps += 1
        seen.append(base.steps_to_go())
        assert steps <= limit, "the expert did not win"
        if (terminated or truncated) and not info.get("won"):
            break
    return steps, seen


@pytest.mark.parametrize("env_id", CLONABLE)
def test_cost_to_go_is_the_number_of_steps_the_expert_takes(env_id: str) -> None:
    env = _make_unlimited(env_id)
    rng = random.Random(0)
    checked = 0
    for seed in range(10):
        for moves in (0, 1, 3, 6):
            _, info = env.reset(seed=seed)
            info, ended = _random_walk(env, info, rng, moves)
            expected = env.unwrapped.steps_to_go()
            if ended:  # over: 0 if won, None (nothing left to do) otherwise
                assert expected == (0 if info["won"] else None)
                continue
            assert expected is not None, f"seed {seed} after {moves} moves: no cost-to-go"
            steps, along = _expert_steps_to_win(env, info)
            assert steps == expected
            assert along == list(range(expected, -1, -1))  # one less after every expert step
            checked += 1
    assert checked >= 12


@pytest.mark.parametrize("env_id", CLONABLE)
def test_restored_env_continues_exactly_like_the_original(env_id: str) -> None:
    rng = random.Random(1)
    original, twin = make(env_id), make(env_id)
    assert oracle.supports_cloning(original)
    for seed in range(3):
        _, info = original.reset(seed=seed)
        _random_walk(original, info, rng, rng.randrange(4))
        snapshot = oracle.clone_state(original)
        here = original.unwrapped.restore_state(snapshot)  # the moment's observation and info
        # actions: admissible ones (as indices, so both envs get the same), some nonsense, and
        # more than an episode lasts, so stepping past the end is compared too
        picks = [rng.randrange(1000) for _ in range(25)]
        expected = _play(original, picks, here[1])
        for target in (twin, original):  # a fresh instance, and the env it came from
            target.reset(seed=seed + 100)
            observation, info = oracle.restore_state(target, snapshot)
            assert (observation, info) == here
            assert _play(target, picks, info) == expected


def _play(env, picks: list[int], info: dict) -> list[tuple]:
    outcomes = []
    for pick in picks:
        actions = info.get("admissible_actions") or []
        action = actions[pick % len(actions)] if actions and pick % 5 else "dance wildly"
        outcome = env.step(action)
        info = outcome[4]
        outcomes.append((*outcome, env.unwrapped.steps_to_go()))
    return outcomes


@pytest.mark.parametrize("env_id", ["creditgym/HouseholdEasy-v0", "creditgym/SearchQAEasy-v0"])
def test_a_snapshot_restores_any_number_of_times(env_id: str) -> None:
    env = make(env_id)
    _, info = env.reset(seed=4)
    snapshot = oracle.clone_state(env)
    first = _play(env, [3, 7, 11, 2], info)
    for _ in range(2):
        _, info = oracle.restore_state(env, snapshot)
        assert _play(env, [3, 7, 11, 2], info) == first


def test_cloning_is_cheap() -> None:
    """Household snapshots share the layout and caches: well under a millisecond each."""
    import time

    env = make("creditgym/Household-v0")
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(200):
        oracle.restore_state(env, oracle.clone_state(env))
    assert (time.perf_counter() - start) / 200 < 0.005


def test_helpers_answer_gracefully_for_envs_without_oracles() -> None:
    class Plain:
        pass

    assert oracle.cost_to_go(Plain()) is None
    assert not oracle.supports_cloning(Plain())
    with pytest.raises(NotImplementedError, match="Plain cannot clone its state"):
        oracle.clone_state(Plain())


COOP = ["creditgym/CoopHousehold-v0", "creditgym/CoopHousehold3-v0"]


def _team_random_walk(env, infos: dict, rng: random.Random, moves: int) -> dict:
    for _ in range(moves):
        if not env.agents:
            break
        actions = {agent: rng.choice(infos[agent]["admissible_actions"]) for agent in env.agents}
        *_, infos = env.step(actions)
    return infos


@pytest.mark.parametrize("env_id", COOP)
def test_team_cost_to_go_is_the_number_of_team_steps_the_expert_takes(env_id: str) -> None:
    env = make(env_id, max_steps=1000)
    rng = random.Random(2)
    for seed in range(8):
        for moves in (0, 1, 3, 8):
            _, infos = env.reset(seed=seed)
            _team_random_walk(env, infos, rng, moves)
            expected, steps = env.steps_to_go(), 0
            if not env.agents:  # the random team finished it
                assert expected == 0
                continue
            while env.agents:
                assert env.steps_to_go() == expected - steps
                env.step(env.expert_actions())
                steps += 1
            assert steps == expected and env.steps_to_go() == 0


@pytest.mark.parametrize("env_id", COOP)
def test_restored_team_env_continues_exactly_like_the_original(env_id: str) -> None:
    rng = random.Random(3)
    original, twin = make(env_id), make(env_id)
    assert oracle.supports_cloning(original)
    for seed in range(3):
        _, infos = original.reset(seed=seed)
        _team_random_walk(original, infos, rng, rng.randrange(4))
        snapshot = original.clone_state()
        here = original.restore_state(snapshot)
        picks = [rng.randrange(1000) for _ in range(30)]  # past the 20-step budget
        expected = _team_play(original, picks, here[1])
        for target in (twin, original):
            target.reset(seed=seed + 100)
            observations, infos = oracle.restore_state(target, snapshot)
            assert (observations, infos) == here
            assert _team_play(target, picks, infos) == expected


def _team_play(env, picks: list[int], infos: dict) -> list[tuple]:
    outcomes = []
    for pick in picks:
        actions = {
            agent: infos[agent]["admissible_actions"][
                pick % len(infos[agent]["admissible_actions"])
            ]
            for agent in env.agents
        }
        outcome = env.step(actions)
        infos = outcome[4] or infos
        outcomes.append((*outcome, list(env.agents), env.steps_to_go()))
    return outcomes


# ---- rollouts record the labels ----------------------------------------------------------------


def _rollout(env_id: str, policy, count: int = 4, **kwargs):
    from creditgym.rollout.collect import collect_episodes, group_tasks, make_envs

    envs = make_envs(env_id, count)
    return collect_episodes(envs, policy, group_tasks([0, 1], 2), env_id=env_id, **kwargs)


def test_rollouts_record_cost_to_go_and_progress_on_every_turn() -> None:
    from creditgym.agents.scripted import ExpertPolicy, RandomPolicy

    for episode in _rollout("creditgym/HouseholdEasy-v0", ExpertPolicy()):
        assert [turn.progress for turn in episode.turns] == [1] * len(episode.turns)
        assert episode.turns[0].cost_to_go == len(episode.turns)
        assert episode.turns[-1].next_cost_to_go == 0
    noisy = _rollout("creditgym/HouseholdEasy-v0", ExpertPolicy(epsilon=0.5, seed=1))
    labels = [turn.progress for episode in noisy for turn in episode.turns]
    assert None not in labels and {1, 0} <= set(labels)  # optimal steps and wasted ones
    for episode in noisy + _rollout("creditgym/HouseholdEasy-v0", RandomPolicy(seed=2)):
        for turn, following in zip(episode.turns, episode.turns[1:]):
            assert turn.next_cost_to_go == following.cost_to_go  # one chain per episode


def test_multiagent_rollouts_record_the_team_cost_to_go_on_every_agents_turn() -> None:
    from creditgym.agents.scripted import ExpertPolicy

    episodes = _rollout("creditgym/CoopHousehold-v0", ExpertPolicy())
    assert len({episode.agent_id for episode in episodes}) == 2
    for episode in episodes:
        assert [turn.progress for turn in episode.turns] == [1] * len(episode.turns)
        assert episode.turns[-1].next_cost_to_go == 0


def test_recording_cost_to_go_can_be_turned_off() -> None:
    from creditgym.agents.scripted import ExpertPolicy

    episodes = _rollout("creditgym/HouseholdEasy-v0", ExpertPolicy(), record_cost_to_go=False)
    assert all(turn.cost_to_go is None for episode in episodes for turn in episode.turns)


def test_webshop_expert_recovers_from_another_query_and_a_wrong_item() -> None:
    """Off its own path (someone searched other words and opened a product), the expert goes
    back instead of buying something worse, so cost-to-go stays defined and exact."""
    from creditgym.envs.webshop.goals import make_goal, suggested_query

    env = make("creditgym/WebShopEasy-v0", max_steps=100)
    base = env.unwrapped
    for seed in range(5):
        env.reset(seed=seed)
        other = make_goal(base.catalog, base.split, base.goal.index + 1, base.goal_attributes)
        *_, info = env.step(f"search[{suggested_query(other)}]")
        target = f"click[{base.catalog.asin(base.goal.product).lower()}]"
        wrong = [
            a for a in info["admissible_actions"] if a not in ("click[back to search]", target)
        ]
        wrong = [a for a in wrong if a not in ("click[next >]", "click[< prev]")]
        *_, info = env.step(wrong[0])
        assert base.page.kind == "item" and base.page.item != base.goal.product
        expected = base.steps_to_go()
        assert expected is not None
        steps, along = _expert_steps_to_win(env, info)
        assert steps == expected and along[-1] == 0  # 0: won


@pytest.mark.parametrize(
    ("env_id", "budget"),
    [
        ("creditgym/HouseholdEasy-v0", {"max_steps": 1}),
        ("creditgym/WebShopEasy-v0", {"max_steps": 1}),
        ("creditgym/SearchQAEasy-v0", {"max_turns": 1}),
    ],
)
def test_a_budget_cut_still_has_a_cost_to_go_for_the_last_turns_label(env_id, budget) -> None:
    env = make(env_id, **budget)
    _, info = env.reset(seed=0)
    before = env.unwrapped.steps_to_go()
    *_, truncated, _ = env.step(env.unwrapped.expert_action())
    assert truncated
    assert env.unwrapped.steps_to_go() == before - 1


def test_a_budget_cut_team_still_has_a_cost_to_go() -> None:
    env = make("creditgym/CoopHousehold-v0", max_steps=1)
    env.reset(seed=0)
    before = env.steps_to_go()
    *_, truncations, _ = env.step(env.expert_actions())
    assert all(truncations.values()) and not env.agents
    assert env.steps_to_go() == before - 1


def test_a_fresh_env_that_was_never_reset_can_be_restored_and_stepped() -> None:
    source = make("creditgym/HouseholdEasy-v0")
    _, info = source.reset(seed=5)
    snapshot = oracle.clone_state(source)
    fresh = make("creditgym/HouseholdEasy-v0")  # Gymnasium's OrderEnforcing: no reset yet
    assert oracle.restore_state(fresh, snapshot)[1] == info
    action = info["admissible_actions"][0]
    assert fresh.step(action) == source.step(action)
