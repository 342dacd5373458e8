"""The household's information-state cost-to-go (`informed_steps_to_go`) and its labels in
credit-report: the searching expert's expected steps from what the agent has seen."""

from __future__ import annotations

import numpy as np
import pytest
from _oracle_envs import register as register_corridor
from conftest import episode

import creditgym
from creditgym.credit.fidelity import score_fidelity, within_episode_agreement
from creditgym.envs.oracle import informed_cost_to_go
from creditgym.measure.credit_report import informed_labels
from creditgym.trajectory import Episode, Turn

# HouseholdEasy task 3: coffeetable 1 (the goal's type), drawer 1, safe 1, sofa 1; the
# newspaper is on the sofa. The searcher sweeps drawer -> safe -> sofa.
SEED = 3


def _env():
    env = creditgym.make("creditgym/HouseholdEasy-v0")
    env.reset(seed=SEED)
    return env


def test_the_searcher_averages_over_where_the_hidden_object_may_be():
    env = _env()
    # in the drawer: go, take, go to the coffeetable, put = 4; in the safe 5; on the sofa 6
    assert env.unwrapped.informed_steps_to_go() == pytest.approx(5.0)
    assert env.unwrapped.steps_to_go() == 4  # the planner walks straight to the sofa
    env.step("go to drawer 1")  # not there: the safe (4) or the sofa (5) from here
    assert env.unwrapped.informed_steps_to_go() == pytest.approx(4.5)


def test_luck_is_progress_to_the_planner_and_to_the_searcher_only_as_a_find():
    env = _env()
    env.step("go to coffeetable 1")  # the goal's receptacle: nothing learnt, nothing gained
    assert env.unwrapped.informed_steps_to_go() == pytest.approx(5.0)
    assert env.unwrapped.steps_to_go() == 4
    env.step("go to sofa 1")  # straight to the newspaper: seen now, nothing left hidden
    assert env.unwrapped.informed_steps_to_go() == 3.0 == env.unwrapped.steps_to_go()
    for action in ("take newspaper 1 from sofa 1", "go to coffeetable 1"):
        env.step(action)
    _, reward, terminated, _, _ = env.step("move newspaper 1 to coffeetable 1")
    assert reward == 1.0 and terminated and informed_cost_to_go(env) == 0.0


def test_what_the_agent_has_seen_is_part_of_a_cloned_state():
    env = _env()
    snapshot = env.unwrapped.clone_state()
    env.step("go to drawer 1")
    env.unwrapped.restore_state(snapshot)
    assert env.unwrapped.informed_steps_to_go() == pytest.approx(5.0)  # the drawer unseen again


def test_an_env_without_the_oracle_has_no_informed_labels():
    env_id = register_corridor()
    env = creditgym.make(env_id)
    env.reset(seed=0)
    assert informed_cost_to_go(env) is None
    assert informed_labels(env_id, [], split="train", env_kwargs={}) is None


def _played(actions: list[str]) -> Episode:
    env = creditgym.make("creditgym/HouseholdEasy-v0")
    observation, _ = env.reset(seed=SEED)
    turns = []
    for action in actions:
        turn = Turn(observation, action)
        observation, turn.reward, *_ = env.step(action)
        turns.append(turn)
    return Episode(turns=turns, env_id="creditgym/HouseholdEasy-v0", metadata={"seed": SEED})


def test_credit_report_labels_each_turn_with_the_drop_in_expected_steps():
    sweep = _played(["go to drawer 1", "go to safe 1", "go to sofa 1"])
    (labels,) = informed_labels("creditgym/HouseholdEasy-v0", [sweep], split="train", env_kwargs={})
    # 5 -> 4.5 (the drawer ruled out) -> 4 (the safe too; from the safe: sofa, take, go, put)
    # -> 3 (found: take, go, put)
    np.testing.assert_allclose(labels, [0.5, 0.5, 1.0])
    tampered = _played(["go to drawer 1"])
    tampered.turns[0].observation = "something else"
    with pytest.raises(ValueError, match="different observation at turn 0"):
        informed_labels("creditgym/HouseholdEasy-v0", [tampered], split="train", env_kwargs={})


def test_fidelity_scores_advantages_against_given_labels():
    episodes = [episode([0, 0, 1]), episode([0, 0, 0])]
    advantages = [np.array([0.3, 0.2, 0.1]), np.array([0.3, 0.1, 0.2])]
    labels = [np.array([1.0, 0.0, -1.0]), np.array([1.0, 0.0, -1.0])]
    # Spearman +1 in the first episode, +0.5 in the second (ranks 3, 1, 2 against 3, 2, 1)
    assert within_episode_agreement(episodes, advantages, labels) == (0.75, 2)
    scores = score_fidelity(episodes, advantages, informed_labels=labels)
    assert (scores.informed_within_episode_spearman, scores.informed_episodes_ranked) == (0.75, 2)
    assert scores.informed_batch_auc == 1.0  # both progress turns above every other turn
    assert scores.within_episode_spearman != 0.75  # the planner's labels are the episodes' own
    assert np.isnan(score_fidelity(episodes, advantages).informed_batch_auc)  # none given


# Household-v0 task 7 is a light task in a 19-receptacle house: the watch and the desklamp (on
# sidetable 2) are hidden at the start, and drawers, cabinets and a safe are closed.
LIGHT_SEED = 7


def _light_task():
    env = creditgym.make("creditgym/Household-v0")
    env.reset(seed=LIGHT_SEED)
    assert env.unwrapped.world.goal.in_light
    return env


def test_the_hidden_desklamp_is_imagined_only_on_a_lamp_stand(monkeypatch):
    from creditgym.envs.household.world import LAMP_STANDS, World

    env = _light_task()
    world = env.unwrapped.world
    imagined: list[str] = []
    place = World.place

    def recording(self, obj, rec):
        if obj == world.lamp:
            imagined.append(self.rec_kinds[rec])
        place(self, obj, rec)

    monkeypatch.setattr(World, "place", recording)
    env.unwrapped.informed_steps_to_go()
    assert imagined and set(imagined) <= set(LAMP_STANDS)
    assert len(set(imagined)) > 1  # every stand not yet seen, not only the true one


def test_a_light_task_has_an_informed_cost_to_go_from_every_state_of_random_play():
    # a lamp imagined inside a closed drawer once made the searcher "use" a lamp it could not
    # see: a KeyError that ended `creditgym credit-report` on Household-v0
    env = creditgym.make("creditgym/Household-v0")
    _, info = env.reset(seed=LIGHT_SEED)
    rng = np.random.default_rng(0)
    costs = [env.unwrapped.informed_steps_to_go()]
    for _ in range(30):
        action = str(rng.choice(info["admissible_actions"]))
        _, _, terminated, truncated, info = env.step(action)
        costs.append(env.unwrapped.informed_steps_to_go())
        if terminated or truncated:
            break
    assert all(np.isfinite(costs)) and min(costs) >= 0
