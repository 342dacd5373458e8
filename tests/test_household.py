"""Specification of the ALFWorld-style household (creditgym/envs/household)."""

from __future__ import annotations

import copy
import random

import gymnasium as gym
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import creditgym
from creditgym.envs import info as keys
from creditgym.envs.household import (
    PRESETS,
    SPLITS,
    TASK_TYPES,
    Goal,
    HouseholdEnv,
    HouseholdTask,
    Layout,
    generate_task,
)
from creditgym.envs.household.tasks import TaskConfig, goal_pairs, is_unseen_layout, is_unseen_pair
from creditgym.envs.household.world import COLD, HOT

ALL_KEYS = (*keys.REQUIRED_KEYS, keys.ADMISSIBLE_ACTIONS, keys.TASK_TYPE)


# --------------------------------------------------------------------------- a hand-made house
def hand_made_task(goal: Goal, instruction: str) -> HouseholdTask:
    """countertop 1 (apple 1, knife 2), diningtable 1, fridge 1 (egg 1), microwave 1,
    sinkbasin 1 (mug 1), cabinet 1 (empty), sidetable 1 (book 1, desklamp 1)."""
    layout = Layout(
        receptacles=(
            "cabinet 1",
            "countertop 1",
            "diningtable 1",
            "fridge 1",
            "microwave 1",
            "sidetable 1",
            "sinkbasin 1",
        ),
        objects=("apple 1", "book 1", "desklamp 1", "egg 1", "knife 2", "mug 1"),
        start=(1, 5, 5, 3, 1, 6),
        closed=True,
    )
    return HouseholdTask("hand-made", "train", "kitchen", instruction, goal, layout)


PUT_APPLE = hand_made_task(
    Goal("pick_and_place", "apple", "diningtable"), "put some apple on diningtable."
)


def play(env: gym.Env, actions: list[str], task: HouseholdTask = PUT_APPLE) -> list[tuple]:
    env.reset(options={"task": task})
    return [env.step(action) for action in actions]


def feedback(actions: list[str], task: HouseholdTask = PUT_APPLE) -> str:
    """The observation after the last of `actions`, from a fresh hand-made house."""
    return play(HouseholdEnv(), actions, task)[-1][0]


# --------------------------------------------------------------------------- the contract
# check_env, info keys, determinism and the bad-action fuzz: tests/test_env_contract.py


def test_presets_are_registered_with_descriptions():
    for env_id in PRESETS:
        assert env_id in creditgym.list_envs("creditgym")
        assert creditgym.describe(env_id)


@pytest.mark.parametrize("env_id", sorted(PRESETS))
def test_same_seed_gives_the_same_episode(env_id):
    def episode(seed: int) -> list:
        env, rng = creditgym.make(env_id), random.Random(7)
        obs, info = env.reset(seed=seed)
        trace = [(obs, info[keys.ANCHOR])]
        for _ in range(30):
            obs, reward, terminated, truncated, info = env.step(
                rng.choice(info[keys.ADMISSIBLE_ACTIONS])
            )
            trace.append(
                (obs, reward, terminated, truncated, info[keys.ANCHOR], tuple(info[keys.EVENTS]))
            )
            if terminated or truncated:
                break
        return trace

    assert episode(11) == episode(11)
    assert episode(11)[0] != episode(12)[0]


def test_reset_without_seed_draws_tasks_from_the_env_rng():
    env = HouseholdEnv()
    env.reset(seed=5)
    firsts = [env.reset()[0] for _ in range(3)]
    env.reset(seed=5)
    assert [env.reset()[0] for _ in range(3)] == firsts
    assert len(set(firsts)) == 3


def test_reset_seed_n_is_task_n_of_the_split():
    env = HouseholdEnv(split="valid_seen")
    _, info = env.reset(seed=42)
    task = generate_task(42, "valid_seen", env.config)
    assert info[keys.TASK] == task.instruction and env.unwrapped.task == task


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_task_type_option_chooses_the_task_type(task_type):
    _, info = HouseholdEnv().reset(seed=3, options={"task_type": task_type})
    assert info[keys.TASK_TYPE] == task_type


def test_unknown_knobs_and_options_raise_errors_that_name_the_choices():
    with pytest.raises(ValueError, match="pick_and_place"):
        HouseholdEnv(task_types=("pick_and_plaice",))
    with pytest.raises(ValueError, match="valid_unseen"):
        HouseholdEnv(split="test")
    with pytest.raises(ValueError, match="task_type"):
        HouseholdEnv().reset(options={"tasktype": "pick_and_place"})
    with pytest.raises(ValueError, match="look_at_obj_in_light"):
        HouseholdEnv().reset(options={"task_type": "look"})


# --------------------------------------------------------------------------- the expert
@pytest.mark.parametrize("expert", ["planner", "search"])
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("env_id", sorted(PRESETS))
def test_expert_solves_50_tasks_of_every_type_on_every_split(env_id, split, expert):
    # the searching expert walks the room, so it gets the step budget a search needs
    budget = {"max_steps": 200} if expert == "search" else {}
    env = creditgym.make(env_id, split=split, expert=expert, **budget).unwrapped
    for task_type in env.config.task_types:
        for seed in range(50):
            _, info = env.reset(seed=seed, options={"task_type": task_type})
            terminated = truncated = False
            while not (terminated or truncated):
                action = env.expert_action()
                assert action in info[keys.ADMISSIBLE_ACTIONS]
                _, reward, terminated, truncated, info = env.step(action)
            assert terminated and reward == 1.0 and info[keys.WON], (task_type, seed)


@pytest.mark.parametrize("expert", ["planner", "search"])
@pytest.mark.parametrize("env_id", sorted(PRESETS))
def test_expert_takes_over_after_random_moves(env_id, expert):
    env = creditgym.make(env_id, max_steps=200, expert=expert).unwrapped
    rng = random.Random(0)
    for seed in range(40):
        _, info = env.reset(seed=seed)
        for _ in range(rng.randint(0, 12)):
            info = env.step(rng.choice(info[keys.ADMISSIBLE_ACTIONS]))[4]
        while not info[keys.WON]:
            _, _, _, truncated, info = env.step(env.expert_action())
            assert not truncated, seed


@pytest.mark.parametrize("env_id", sorted(PRESETS))
def test_search_expert_sweeps_the_room_in_order_until_it_sees_a_task_object(env_id):
    """It goes nowhere no observation has pointed to: the receptacles in the room's order (those
    of the goal's type skipped), opening closed ones, up to the first that shows a task object,
    where it takes one."""
    env = creditgym.make(env_id, expert="search", max_steps=200).unwrapped
    for seed in range(40):
        env.reset(seed=seed)
        world = env.world
        searched = [
            rec for rec, kind in enumerate(world.rec_kinds) if kind != world.goal.receptacle_type
        ]
        holding = [rec for rec in searched if any(world.is_target[o] for o in world.contents[rec])]
        expected = searched[: searched.index(holding[0]) + 1]
        visits = []
        while True:
            action = env.expert_action()
            if action.startswith("take "):
                break
            if action.startswith("go to "):
                visits.append(world.rec_names.index(action.removeprefix("go to ")))
            else:
                assert action.startswith("open "), (seed, action)
            env.step(action)
        assert visits == expected, seed
        taken = action.removeprefix("take ").split(" from ")[0]
        assert world.is_target[world.obj_names.index(taken)], seed


def test_search_expert_puts_down_what_the_task_does_not_need():
    env = HouseholdEnv(expert="search")
    task = hand_made_task(Goal("pick_and_place", "book", "cabinet"), "put a book in cabinet.")
    env.reset(seed=0, options={"task": task})
    env.step("go to countertop 1")
    env.step("take apple 1 from countertop 1")
    assert env.expert_action() == "move apple 1 to countertop 1"


def test_an_unknown_expert_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match="planner.*search"):
        HouseholdEnv(expert="oracle")


# -------------------------------------------------------------------------- rewards and episode end
def test_success_gives_reward_one_and_terminates():
    results = play(
        HouseholdEnv(),
        [
            "go to countertop 1",
            "take apple 1 from countertop 1",
            "go to diningtable 1",
            "move apple 1 to diningtable 1",
        ],
    )
    assert [r[1] for r in results] == [0.0, 0.0, 0.0, 1.0]
    assert [r[2] for r in results] == [False, False, False, True]
    assert results[-1][4][keys.WON] and results[-1][4][keys.SYMBOLIC_STATE]["progress"] == 1.0


def test_step_budget_truncates_exactly_at_max_steps():
    results = play(HouseholdEnv(max_steps=3), ["look", "look", "look"])
    assert [r[3] for r in results] == [False, False, True]
    assert not any(r[2] for r in results)


def test_heat_task_needs_the_object_hot_when_placed():
    task = hand_made_task(
        Goal("pick_heat_then_place", "egg", "countertop", condition=HOT),
        "heat some egg and put it in countertop.",
    )
    cold_egg = [
        "go to fridge 1",
        "open fridge 1",
        "take egg 1 from fridge 1",
        "go to countertop 1",
        "move egg 1 to countertop 1",
    ]
    assert not play(HouseholdEnv(), cold_egg, task)[-1][2]
    hot_egg = cold_egg[:3] + ["go to microwave 1", "heat egg 1 with microwave 1"] + cold_egg[3:]
    assert play(HouseholdEnv(), hot_egg, task)[-1][1] == 1.0


def test_light_task_is_won_holding_the_object_under_the_lit_lamp():
    task = hand_made_task(
        Goal("look_at_obj_in_light", "book", "desklamp"), "look at book under the desklamp."
    )
    results = play(
        HouseholdEnv(),
        ["go to sidetable 1", "take book 1 from sidetable 1", "use desklamp 1"],
        task,
    )
    assert [r[1] for r in results] == [0.0, 0.0, 1.0]
    assert results[-1][4][keys.EVENTS] == ["used desklamp 1"]


def test_two_object_task_needs_both_in_one_receptacle():
    layout = Layout(("countertop 1", "countertop 2", "shelf 1"), ("mug 1", "mug 2"), (2, 2))
    task = HouseholdTask(
        "two-mugs",
        "train",
        "kitchen",
        "put two mug in countertop.",
        Goal("pick_two_and_place", "mug", "countertop", count=2),
        layout,
    )
    apart = [
        "go to shelf 1",
        "take mug 1 from shelf 1",
        "go to countertop 1",
        "move mug 1 to countertop 1",
        "go to shelf 1",
        "take mug 2 from shelf 1",
        "go to countertop 2",
        "move mug 2 to countertop 2",
    ]
    results = play(HouseholdEnv(), apart, task)
    assert not any(r[2] for r in results)
    assert results[-1][4][keys.SYMBOLIC_STATE]["placed"] == 1.0
    together = apart[:-2] + ["go to countertop 1", "move mug 2 to countertop 1"]
    assert play(HouseholdEnv(), together, task)[-1][1] == 1.0


# --------------------------------------------------------------------------- feedback text
def test_first_observation_lists_the_room_then_the_task():
    obs, info = HouseholdEnv().reset(options={"task": PUT_APPLE})
    assert obs == (
        "You are in the middle of a room. Looking quickly around you, you see a cabinet 1, "
        "a countertop 1, a diningtable 1, a fridge 1, a microwave 1, a sidetable 1, "
        "and a sinkbasin 1."
        "\n\nYour task is to: put some apple on diningtable."
    )
    assert info[keys.VALID] and info[keys.EVENTS] == [] and not info[keys.WON]


def test_go_to_describes_what_is_there():
    assert (
        feedback(["go to countertop 1"])
        == "You arrive at countertop 1. On the countertop 1, you see a apple 1, and a knife 2."
    )
    assert feedback(["go to cabinet 1"]) == "You arrive at cabinet 1. The cabinet 1 is closed."
    assert (
        feedback(["go to diningtable 1"])
        == "You arrive at diningtable 1. On the diningtable 1, you see nothing."
    )
    assert (
        feedback(["go to sidetable 1"])
        == "You arrive at sidetable 1. On the sidetable 1, you see a book 1, and a desklamp 1."
    )


def test_open_shows_the_inside_and_close_closes():
    assert (
        feedback(["go to fridge 1", "open fridge 1"])
        == "You open the fridge 1. The fridge 1 is open. In it, you see a egg 1."
    )
    assert (
        feedback(["go to cabinet 1", "open cabinet 1"])
        == "You open the cabinet 1. The cabinet 1 is open. In it, you see nothing."
    )
    assert (
        feedback(["go to fridge 1", "open fridge 1", "close fridge 1"]) == "You close the fridge 1."
    )
    assert (
        feedback(["go to fridge 1", "open fridge 1", "go to cabinet 1", "go to fridge 1"])
        == "You arrive at fridge 1. The fridge 1 is open. In it, you see a egg 1."
    )


def test_take_and_move_and_the_put_alias():
    take = ["go to countertop 1", "take apple 1 from countertop 1"]
    assert feedback(take) == "You pick up the apple 1 from the countertop 1."
    assert (
        feedback([*take, "go to diningtable 1", "move apple 1 to diningtable 1"])
        == "You move the apple 1 to the diningtable 1."
    )
    assert (
        feedback([*take, "go to diningtable 1", "put apple 1 on diningtable 1"])
        == "You move the apple 1 to the diningtable 1."
    )
    assert (
        feedback([*take, "go to cabinet 1", "open cabinet 1", "put apple 1 in cabinet 1"])
        == "You move the apple 1 to the cabinet 1."
    )


def test_clean_heat_cool_and_examine_the_held_object():
    mug = ["go to sinkbasin 1", "take mug 1 from sinkbasin 1"]
    assert (
        feedback([*mug, "clean mug 1 with sinkbasin 1"])
        == "You clean the mug 1 using the sinkbasin 1."
    )
    assert feedback([*mug, "examine mug 1"]) == "This is a normal mug 1."
    assert (
        feedback(
            [
                *mug,
                "clean mug 1 with sinkbasin 1",
                "go to microwave 1",
                "heat mug 1 with microwave 1",
            ]
        )
        == "You heat the mug 1 using the microwave 1."
    )
    assert (
        feedback(
            [
                *mug,
                "clean mug 1 with sinkbasin 1",
                "go to microwave 1",
                "heat mug 1 with microwave 1",
                "examine mug 1",
            ]
        )
        == "This is a clean and hot mug 1."
    )
    assert (
        feedback([*mug, "go to fridge 1", "cool mug 1 with fridge 1"])
        == "You cool the mug 1 using the fridge 1."
    )


def test_use_examine_inventory_look():
    assert feedback(["go to sidetable 1", "use desklamp 1"]) == "You turn on the desklamp 1."
    assert (
        feedback(["go to sidetable 1", "use desklamp 1", "use desklamp 1"])
        == "You turn off the desklamp 1."
    )
    assert (
        feedback(["go to countertop 1", "examine countertop 1"])
        == "On the countertop 1, you see a apple 1, and a knife 2."
    )
    assert feedback(["inventory"]) == "You are not carrying anything."
    assert (
        feedback(["go to countertop 1", "take knife 2 from countertop 1", "inventory"])
        == "You are carrying: a knife 2."
    )
    assert feedback(["look"]).startswith(
        "You are in the middle of a room. Looking quickly around you, you see a cabinet 1,"
    )
    assert (
        feedback(["go to countertop 1", "look"])
        == "You are facing the countertop 1. Next to it, you see nothing."
    )


@pytest.mark.parametrize(
    "action",
    [
        "take egg 1 from fridge 1",  # not there
        "go to fridge 2",  # no such receptacle
        "xyzzy",
        "",
        "move apple 1 to countertop 1",  # not holding it
        "heat apple 1 with microwave 1",
        "open countertop 1",
        "use desklamp 1",
    ],
)
def test_commands_that_do_not_apply_say_nothing_happens(action):
    env = HouseholdEnv()
    env.reset(options={"task": PUT_APPLE})
    before = env.unwrapped.world.anchor()
    obs, reward, _, _, info = env.step(action)
    assert (obs, reward, info[keys.VALID], info[keys.EVENTS]) == (
        "Nothing happens.",
        0.0,
        False,
        [],
    )
    assert info[keys.ANCHOR] == before


def test_taking_needs_free_hands_and_an_open_receptacle():
    assert feedback(["go to fridge 1", "take egg 1 from fridge 1"]) == "Nothing happens."
    assert (
        feedback(
            [
                "go to countertop 1",
                "take apple 1 from countertop 1",
                "take knife 2 from countertop 1",
            ]
        )
        == "Nothing happens."
    )


def test_matching_ignores_case_spacing_and_a_final_full_stop():
    assert feedback(["  GO TO   Countertop 1. "]).startswith("You arrive at countertop 1.")


def test_events_report_subgoals_from_the_engine():
    steps = [
        "go to countertop 1",
        "take apple 1 from countertop 1",
        "go to fridge 1",
        "open fridge 1",
        "cool apple 1 with fridge 1",
        "move apple 1 to fridge 1",
    ]
    events = [r[4][keys.EVENTS] for r in play(HouseholdEnv(), steps)]
    assert events == [
        ["found apple 1"],
        ["took apple 1"],
        [],
        ["opened fridge 1"],
        ["cooled apple 1"],
        ["placed apple 1 in fridge 1"],
    ]


def test_admissible_actions_at_the_countertop_holding_nothing():
    info = play(HouseholdEnv(), ["go to countertop 1"])[-1][4]
    assert info[keys.ADMISSIBLE_ACTIONS] == [
        "examine countertop 1",
        "go to cabinet 1",
        "go to diningtable 1",
        "go to fridge 1",
        "go to microwave 1",
        "go to sidetable 1",
        "go to sinkbasin 1",
        "inventory",
        "look",
        "take apple 1 from countertop 1",
        "take knife 2 from countertop 1",
    ]


def test_admissible_actions_at_the_fridge_holding_the_apple():
    info = play(
        HouseholdEnv(),
        ["go to countertop 1", "take apple 1 from countertop 1", "go to fridge 1", "open fridge 1"],
    )[-1][4]
    assert info[keys.ADMISSIBLE_ACTIONS] == [
        "close fridge 1",
        "cool apple 1 with fridge 1",
        "examine apple 1",
        "examine fridge 1",
        "go to cabinet 1",
        "go to countertop 1",
        "go to diningtable 1",
        "go to microwave 1",
        "go to sidetable 1",
        "go to sinkbasin 1",
        "inventory",
        "look",
        "move apple 1 to fridge 1",
    ]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    "go to countertop 1",
                    "take apple 1 from countertop 1",
                    "put apple 1 in",
                    "move",
                    "open fridge 1",
                    "GO TO FRIDGE 1",
                    "use",
                    "examine",
                    "heat",
                    "\n",
                    "put  on ",
                    "take from",
                ]
            ),
        ),
        max_size=8,
    )
)
def test_arbitrary_text_never_raises_and_keeps_the_info_keys(actions):
    env = HouseholdEnv()
    env.reset(options={"task": PUT_APPLE})
    for action in actions:
        obs, _, _, _, info = env.step(action)
        assert isinstance(obs, str) and set(ALL_KEYS) <= set(info)
        assert env.observation_space.contains(obs)


# --------------------------------------------------------------------------- anchors
def true_state(env: HouseholdEnv) -> tuple:
    world = env.unwrapped.world
    return (
        world.loc,
        world.held,
        tuple(world.is_open),
        tuple(world.obj_loc),
        tuple(world.cond),
        world.lamp_on,
    )


def test_same_state_by_different_orders_has_the_same_anchor_and_future():
    first = ["go to cabinet 1", "open cabinet 1", "go to fridge 1", "open fridge 1"]
    second = [
        "go to fridge 1",
        "open fridge 1",
        "go to countertop 1",
        "take apple 1 from countertop 1",
        "move apple 1 to countertop 1",
        "go to cabinet 1",
        "open cabinet 1",
        "look",
        "go to fridge 1",
    ]
    env_a, env_b = HouseholdEnv(), HouseholdEnv()
    info_a, info_b = play(env_a, first)[-1][4], play(env_b, second)[-1][4]
    assert info_a[keys.ANCHOR] == info_b[keys.ANCHOR]
    assert info_a[keys.ADMISSIBLE_ACTIONS] == info_b[keys.ADMISSIBLE_ACTIONS]
    future = [
        "go to countertop 1",
        "take apple 1 from countertop 1",
        "examine apple 1",
        "go to fridge 1",
        "cool apple 1 with fridge 1",
        "go to diningtable 1",
        "move apple 1 to diningtable 1",
    ]
    assert [env_a.step(a)[:4] for a in future] == [env_b.step(a)[:4] for a in future]


def test_states_that_differ_have_different_anchors():
    base = ["go to countertop 1", "take apple 1 from countertop 1", "go to fridge 1"]
    variants = [
        base,
        base + ["open fridge 1"],
        base + ["cool apple 1 with fridge 1"],
        base + ["open fridge 1", "move apple 1 to fridge 1"],
        ["go to fridge 1"],
        ["go to sidetable 1"],
        ["go to sidetable 1", "use desklamp 1"],
    ]
    anchors = [play(HouseholdEnv(), actions)[-1][4][keys.ANCHOR] for actions in variants]
    assert len(set(anchors)) == len(anchors)


def test_anchor_ignores_the_step_count():
    results = play(HouseholdEnv(), ["look", "inventory", "look"])
    assert len({r[4][keys.ANCHOR] for r in results}) == 1


def test_different_tasks_never_share_an_anchor():
    env = HouseholdEnv(**PRESETS["creditgym/HouseholdEasy-v0"][1])
    anchors = {env.reset(seed=seed)[1][keys.ANCHOR] for seed in range(30)}
    assert len(anchors) == 30


@pytest.mark.parametrize("env_id", ["creditgym/HouseholdMedium-v0", "creditgym/HouseholdEasy-v0"])
def test_anchor_is_exactly_the_true_state_and_decides_the_future(env_id):
    env = creditgym.make(env_id, max_steps=10_000).unwrapped
    rng = random.Random(3)
    _, info = env.reset(seed=1)
    state_of: dict = {}
    snapshot_of: dict = {}
    revisits = 0
    for _ in range(400):
        anchor, state = info[keys.ANCHOR], true_state(env)
        assert state_of.setdefault(anchor, state) == state  # equal anchors: equal states
        if anchor in snapshot_of and revisits < 20:
            revisits += 1
            futures = []
            for start in (copy.deepcopy(snapshot_of[anchor]), copy.deepcopy(env)):
                walk = random.Random(revisits)
                outcome, adm = [], info[keys.ADMISSIBLE_ACTIONS]
                for _ in range(8):
                    obs, reward, terminated, _, step_info = start.step(walk.choice(adm))
                    adm = step_info[keys.ADMISSIBLE_ACTIONS]
                    outcome.append((obs, reward, terminated, step_info[keys.ANCHOR], tuple(adm)))
                futures.append(outcome)
            assert futures[0] == futures[1]
        if anchor not in snapshot_of:
            snapshot_of[anchor] = copy.deepcopy(env)
        _, _, terminated, _, info = env.step(rng.choice(info[keys.ADMISSIBLE_ACTIONS]))
        if terminated:
            _, info = env.reset(seed=1)
    assert revisits >= 5
    assert len(set(state_of.values())) == len(state_of)  # different states: different anchors


# --------------------------------------------------------------------------- splits
def test_every_task_type_has_seen_and_unseen_goal_pairs():
    for task_type in TASK_TYPES:
        flags = {is_unseen_pair(*pair) for pair in goal_pairs(task_type)}
        assert flags == {True, False}, task_type


@pytest.mark.parametrize(
    "config", [TaskConfig(), TaskConfig(receptacles=(4, 4), distractors=(0, 1))]
)
def test_valid_unseen_goal_pairs_and_layouts_never_occur_in_train(config):
    def drawn(split: str) -> tuple[set, set]:
        tasks = [
            generate_task(seed, split, config, task_type)
            for seed in range(60)
            for task_type in TASK_TYPES
        ]
        return (
            {(t.goal.object_type, t.goal.receptacle_type) for t in tasks},
            {t.layout_signature for t in tasks},
        )

    train_pairs, train_layouts = drawn("train")
    seen_pairs, seen_layouts = drawn("valid_seen")
    unseen_pairs, unseen_layouts = drawn("valid_unseen")
    assert not unseen_pairs & (train_pairs | seen_pairs)
    assert not unseen_layouts & (train_layouts | seen_layouts)
    assert all(is_unseen_pair(*p) for p in unseen_pairs) and all(
        is_unseen_layout(s) for s in unseen_layouts
    )
    assert seen_pairs & train_pairs  # valid_seen really is drawn from the training pool


def test_splits_give_different_tasks_for_the_same_seed():
    instructions = {HouseholdEnv(split=split).reset(seed=0)[0] for split in SPLITS}
    assert len(instructions) == 3


def test_task_objects_never_start_where_the_goal_wants_them():
    for seed in range(200):
        task = generate_task(seed, "train")
        world_kinds = [task.layout.receptacles[r].rsplit(" ", 1)[0] for r in task.layout.start]
        for name, kind in zip(task.layout.objects, world_kinds):
            if name.startswith(task.goal.object_type + " "):
                assert kind != task.goal.receptacle_type, task.task_id


def test_cool_task_pairs_only_use_coolable_objects():
    assert ("apple", "countertop") in goal_pairs("pick_cool_then_place")
    assert all(
        obj not in ("book", "knife", "cellphone") for obj, _ in goal_pairs("pick_cool_then_place")
    )
    assert all(rec != "fridge" for _, rec in goal_pairs("pick_cool_then_place"))
    assert {rec for _, rec in goal_pairs("look_at_obj_in_light")} == {"desklamp"}


def test_goal_condition_cold_is_undone_by_heating():
    task = hand_made_task(
        Goal("pick_cool_then_place", "apple", "diningtable", condition=COLD),
        "cool some apple and put it in diningtable.",
    )
    steps = [
        "go to countertop 1",
        "take apple 1 from countertop 1",
        "go to fridge 1",
        "cool apple 1 with fridge 1",
        "go to microwave 1",
        "heat apple 1 with microwave 1",
        "go to diningtable 1",
        "move apple 1 to diningtable 1",
    ]
    assert not play(HouseholdEnv(), steps, task)[-1][2]


def test_a_malformed_hand_made_layout_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="one receptacle index"):
        Layout(("countertop 1",), ("apple 1",), (3,))
    with pytest.raises(ValueError, match="'<kind> <number>'"):
        Layout(("countertop",), ("apple 1",), (0,))


def test_non_text_actions_are_invalid_not_errors():
    env = HouseholdEnv()
    env.reset(options={"task": PUT_APPLE})
    for action in (None, 3, ["look"], {"go": "to"}):
        obs, _, _, _, info = env.step(action)
        assert obs == "Nothing happens." and not info[keys.VALID]
