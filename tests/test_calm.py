"""CALM (arXiv:2409.12798): subgoal shaping with the oracle and with LLM judges."""

from __future__ import annotations

import numpy as np
import pytest

import creditgym
from creditgym.agents.base import Generation
from creditgym.agents.scripted import ExpertPolicy
from creditgym.credit import CreditContext, LLMJudge, OracleJudge, calm_rewards, compute_advantages
from creditgym.credit.shapers.calm import (
    ROLE,
    Transition,
    episode_transitions,
    parse_subgoals,
    parse_verdict,
    subgoal_prompt,
    transition_prompt,
)
from creditgym.rollout.collect import RolloutTask, collect_episodes, make_envs
from creditgym.trajectory import Episode, Turn


def events_episode(
    events_per_turn: list[list[str]], task: str = "put an egg on the table"
) -> Episode:
    turns = [
        Turn(
            observation=f"o{t}",
            action=f"a{t}",
            next_observation=f"o{t + 1}",
            info={"task": task},
            next_info={"events": events},
        )
        for t, events in enumerate(events_per_turn)
    ]
    return Episode(turns=turns)


def test_oracle_rewards_only_first_achievements_times_beta():
    episode = events_episode(
        [["found egg"], [], ["took egg"], ["found egg"], ["placed egg", "took egg"]]
    )
    rewards = calm_rewards([episode], CreditContext(judge=OracleJudge()))[0]
    assert rewards == pytest.approx([0.1, 0.0, 0.1, 0.0, 0.1])
    doubled = calm_rewards([episode], CreditContext(judge=OracleJudge()), beta=0.5)[0]
    assert doubled == pytest.approx([0.5, 0.0, 0.5, 0.0, 0.5])


def test_the_oracle_judge_names_itself_as_it_is_built():
    assert repr(OracleJudge()) == "OracleJudge()"


def test_calm_needs_a_judge():
    with pytest.raises(ValueError, match="calm shaper.*judge"):
        calm_rewards([events_episode([[]])], CreditContext())


def test_oracle_on_real_expert_rollouts_composes_with_gigpo():
    envs = make_envs("creditgym/HouseholdEasy-v0", 4, split="train")
    episodes = collect_episodes(
        envs, ExpertPolicy(), [RolloutTask(s, group_id=0) for s in range(4)]
    )
    shaped = calm_rewards(episodes, CreditContext(judge=OracleJudge()))
    for episode, rewards in zip(episodes, shaped):
        events = {e for turn in episode.turns for e in turn.next_info["events"]}
        assert rewards.sum() == pytest.approx(0.1 * len(events))  # every subgoal credited once
        assert episode.turns[-1].next_observation  # the rollout records what the step returned
    advantages = compute_advantages(
        episodes, ["env", "calm"], "gigpo", CreditContext(judge=OracleJudge())
    )
    assert len(advantages) == 4


# ---- parsing ---------------------------------------------------------------------------------

SUBGOALS = ["pick up the key", "open the door", "reach the stairs"]


@pytest.mark.parametrize(
    "answer, expected",
    [
        (
            '{"pick up the key": true, "open the door": false, "reach the stairs": false}',
            {"pick up the key"},
        ),
        ("```python\n{'Pick up the key.': False, 'open the door': True}\n```", {"open the door"}),
        (
            'Sure! {"pick up the key": yes, "reach the stairs": 1}',
            {"pick up the key", "reach the stairs"},
        ),
        ('{"pick up the key": false, "open the door": false}', set()),
    ],
)
def test_verdicts_are_parsed_leniently(answer, expected):
    assert parse_verdict(answer, SUBGOALS) == frozenset(expected)


@pytest.mark.parametrize("answer", ["", "I cannot tell.", '{"fly to the moon": true}', "true true"])
def test_an_answer_naming_no_subgoal_is_unparseable(answer):
    assert parse_verdict(answer, SUBGOALS) is None


def test_subgoal_lists_are_parsed_from_numbers_or_bullets():
    assert parse_subgoals("Here:\n1. Pick up the key.\n2) open the door\n- reach the stairs\n") == [
        "Pick up the key",
        "open the door",
        "reach the stairs",
    ]
    assert parse_subgoals("no list here") is None
    assert parse_subgoals("\n".join(f"{i}. goal {i}" for i in range(1, 10)), max_subgoals=3) == [
        "goal 1",
        "goal 2",
        "goal 3",
    ]


def test_the_prompt_has_the_papers_parts_and_hides_the_events():
    transition = Transition(
        "escape", "You see a key.", "pick up", "You pick up the key.", events=("SECRET",)
    )
    prompt = transition_prompt(transition, SUBGOALS, legend="@ is you")
    for part in (
        "judge",
        "@ is you",
        "escape",
        '"open the door"',
        "You see a key.",
        "pick up",
        "You pick up the key.",
    ):
        assert part in prompt
    assert "SECRET" not in prompt


# The prompts are part of the method: every LLM call is cached by its request, so a silent
# change of wording changes the judge's answers and throws the cache away. Exact texts:


def test_the_subgoal_prompt_is_exactly_the_papers_request():
    assert subgoal_prompt("escape the dungeon", legend="@ is you", max_subgoals=4) == (
        f"{ROLE}\n\n@ is you\n\nThe agent's task: escape the dungeon\n\n"
        "Break the task down into at most 4 short subgoals, in the order the agent must "
        "achieve them, each one an observable event (for example 'pick up the key').\n\n"
        "Answer with a numbered list, one subgoal per line, and nothing else:\n"
        "1. <subgoal>\n2. <subgoal>"
    )
    assert subgoal_prompt("x") == subgoal_prompt("x", "", 6)  # defaults: no legend, 6 goals
    assert "\n\n\n" not in subgoal_prompt("x")  # an empty legend leaves no blank part


def test_the_transition_prompt_is_exactly_the_papers_request():
    step = Transition("escape", "You see a key.", "pick up", "You hold the key.")
    assert transition_prompt(step, ["take key", "open door"]) == (
        f"{ROLE}\n\nThe agent's task: escape\n\n"
        'Consider these subgoals:\n{\n    "take key": null,\n    "open door": null,\n}\n\n'
        "Here is one step of the game. Decide, for each subgoal, whether the agent's action "
        "achieved it in this step. Look at what the observation after the action says.\n\n"
        "Observation before:\nYou see a key.\n\nAction: pick up\n\n"
        "Observation after:\nYou hold the key.\n\n"
        "Answer with a dict of every subgoal and true or false, and nothing else:\n"
        '{\n    "take key": false,\n    "open door": false,\n}'
    )


def test_episode_transitions_carry_task_observations_action_and_events():
    episode = events_episode([["got egg"], []], task="put an egg on the table")
    episode.turns[1].info = {}  # no task in this turn's info
    episode.turns[1].next_info = {}  # and no events
    first, second = episode_transitions(episode)
    assert first == Transition("put an egg on the table", "o0", "a0", "o1", ("got egg",))
    assert second == Transition("", "o1", "a1", "o2", ())


def test_subgoals_are_stripped_of_quotes_and_periods_and_deduplicated_ignoring_case():
    answer = "1. 'Take the key.'\n2. take the KEY\n3. \"open the door\"\n4. .\n"
    assert parse_subgoals(answer) == ["Take the key", "open the door"]
    seven = "\n".join(f"{i}. goal {i}" for i in range(1, 8))
    assert len(parse_subgoals(seven)) == 6  # at most six by default


def test_a_verdict_reads_every_pair_after_one_it_does_not_know():
    answer = '{"something else": true, "take key": true, "open door": yes}'
    assert parse_verdict(answer, ["take key", "open door"]) == {"take key", "open door"}


def test_verdict_keys_match_ignoring_case_and_punctuation():
    assert parse_verdict('{"Take-the KEY!": true}', ["take the key"]) == {"take the key"}
    assert parse_verdict('{"take thekey": true}', ["take the key"]) is None


def test_preset_subgoals_for_every_task_are_used_as_given_and_nothing_is_asked():
    client = ScriptedClient()
    judge = LLMJudge(client, subgoals=["take the egg"])
    assert judge.decompose(["a", "b"]) == {"a": ["take the egg"], "b": ["take the egg"]}
    assert client.prompts == []


def test_a_decomposition_the_llm_gets_wrong_is_counted_once_and_asked_with_the_legend():
    class Rambling(ScriptedClient):
        def generate(self, prompts):
            self.prompts += prompts
            return [Generation(text="I would rather not.") for _ in prompts]

    client = Rambling()
    judge = LLMJudge(client, legend="@ is you", max_subgoals=2)
    assert judge.decompose(["escape"]) == {"escape": None}
    assert judge.stats["unparseable"] == 1
    assert client.prompts == [subgoal_prompt("escape", "@ is you", 2)]


def test_the_judge_asks_with_the_tasks_goals_and_its_legend():
    client = ScriptedClient()
    judge = LLMJudge(client, legend="@ is you", subgoals={"escape": ["take key"]})
    step = Transition("escape", "o", "a", "o2")
    judge.judge([step])
    assert client.prompts == [transition_prompt(step, ["take key"], "@ is you")]


def test_a_failed_verdict_does_not_stop_the_judge_reading_the_next():
    class OneFails(ScriptedClient):
        def generate(self, prompts):
            self.prompts += prompts
            first = Generation(text="", error="timeout")
            return [first] + [Generation(text='{"take key": true}') for _ in prompts[1:]]

    judge = LLMJudge(OneFails(), subgoals=["take key"])
    steps = [Transition("escape", "o", "a", f"o{i}") for i in range(2)]
    assert judge.judge(steps) == [None, frozenset({"take key"})]


# ---- the LLM judge with a scripted client ----------------------------------------------------


class ScriptedClient:
    """Answers like an LLM: subgoals for a decomposition request, a verdict for a transition."""

    model = "scripted"

    def __init__(
        self, verdict: str = '{"take the egg": true, "place the egg": false}', fail: bool = False
    ):
        self.verdict, self.fail, self.prompts = verdict, fail, []

    def generate(self, prompts):
        self.prompts += prompts
        if self.fail:
            return [Generation(text="", error="connection refused") for _ in prompts]
        return [
            Generation(
                text="1. take the egg\n2. place the egg" if "numbered list" in p else self.verdict
            )
            for p in prompts
        ]


def test_llm_judge_decomposes_once_per_task_and_caches_answers_on_disk(tmp_path):
    episodes = [events_episode([[], []]), events_episode([[], []])]  # same task, same transitions
    client = ScriptedClient()
    judge = LLMJudge(client, cache_dir=tmp_path)
    rewards = calm_rewards(episodes, CreditContext(judge=judge))
    assert rewards[0] == pytest.approx(
        [0.1, 0.0]
    )  # "take the egg" judged true each turn: credited once
    # one decomposition + two distinct transitions, however many episodes repeat them
    assert len(client.prompts) == 3
    again = ScriptedClient(verdict="garbage")
    rerun = calm_rewards(episodes, CreditContext(judge=LLMJudge(again, cache_dir=tmp_path)))
    assert again.prompts == []  # everything answered from the disk cache
    for a, b in zip(rewards, rerun):
        np.testing.assert_array_equal(a, b)


def test_failed_and_unparseable_answers_give_no_reward_and_are_counted():
    down = LLMJudge(ScriptedClient(fail=True))
    assert calm_rewards([events_episode([[], []])], CreditContext(judge=down))[0] == pytest.approx(
        [0, 0]
    )
    assert down.stats["failed"] == 1  # the decomposition failed: no transition is asked
    garbage = LLMJudge(ScriptedClient(verdict="I am not sure."))
    assert calm_rewards([events_episode([[], []])], CreditContext(judge=garbage))[
        0
    ] == pytest.approx([0, 0])
    assert garbage.stats["unparseable"] == 2


def test_each_turn_records_whether_it_was_judged_what_it_achieved_and_what_was_new():
    class Scripted:
        def judge(self, transitions):
            return [frozenset({"take key"}), None, frozenset({"take key", "open door"})]

    episode = events_episode([[], [], []])
    rewards = calm_rewards([episode], CreditContext(judge=Scripted()))[0]
    assert rewards == pytest.approx([0.1, 0.0, 0.1])
    assert [turn.credit_details["calm"] for turn in episode.turns] == [
        {"judged": True, "achieved": ["take key"], "new": ["take key"]},
        {"judged": False, "achieved": [], "new": []},  # no verdict: no reward, not judged
        {"judged": True, "achieved": ["open door", "take key"], "new": ["open door"]},
    ]


def test_subgoals_keep_the_letters_next_to_their_quotes_and_period():
    answer = '1. "Find the X"\n2. go to box X.\n'
    assert parse_subgoals(answer) == ["Find the X", "go to box X"]


class ThreeGoals(ScriptedClient):
    def generate(self, prompts):
        self.prompts += prompts
        return [Generation(text="1. take the egg\n2. go to the table\n3. place the egg")] * len(
            prompts
        )


def test_a_decomposition_keeps_the_judges_max_subgoals():
    judge = LLMJudge(ThreeGoals(), max_subgoals=2)
    assert judge.decompose(["t"]) == {"t": ["take the egg", "go to the table"]}


def test_every_unparseable_decomposition_is_counted():
    class Rambling(ScriptedClient):
        def generate(self, prompts):
            self.prompts += prompts
            return [Generation(text="I would rather not.") for _ in prompts]

    judge = LLMJudge(Rambling())
    assert judge.decompose(["a", "b"]) == {"a": None, "b": None}
    assert judge.stats["unparseable"] == 2
    judge.decompose(["c"])
    assert judge.stats["unparseable"] == 3


def test_a_client_that_raises_costs_the_reward_not_the_run():
    class Broken:
        def generate(self, prompts):
            raise RuntimeError("boom")

    judge = LLMJudge(Broken(), subgoals=["take the egg"])
    assert calm_rewards([events_episode([[]])], CreditContext(judge=judge))[0] == pytest.approx(
        [0.0]
    )
    assert judge.stats["failed"] == 1


def test_make_env_events_are_what_the_oracle_reads():
    env = creditgym.make("creditgym/HouseholdEasy-v0")
    _, info = env.reset(seed=0)
    _, _, _, _, info = env.step(env.unwrapped.expert_action())
    assert OracleJudge().judge([Transition("t", "o", "a", "o2", tuple(info["events"]))]) == [
        frozenset(info["events"])
    ]


def test_judge_eval_scores_the_oracle_perfectly_on_balanced_transitions():
    from creditgym.measure.judge_eval import judge_dataset, score_judge

    transitions, subgoals = judge_dataset("creditgym/HouseholdEasy-v0", 8)
    positives = [t for t in transitions if set(t.events) & set(subgoals[t.task])]
    assert positives and len(positives) == len(transitions) - len(positives)  # balanced
    scores = {s.kind: s for s in score_judge(OracleJudge(), transitions, subgoals)}
    assert scores["all"].f1 == scores["all"].accuracy == 1.0
    assert {"took", "placed"} <= set(scores)


def test_judge_eval_counts_a_judge_that_never_answers_as_missing_every_subgoal():
    from creditgym.measure.judge_eval import judge_dataset, score_judge

    transitions, subgoals = judge_dataset("creditgym/HouseholdEasy-v0", 4)
    silent = LLMJudge(ScriptedClient(fail=True))
    overall = score_judge(silent, transitions, subgoals)[-1]
    assert overall.kind == "all" and overall.recall == 0.0 and overall.precision == 0.0
    assert silent.stats["failed"] == len(transitions)


def test_cache_keys_use_a_served_models_name_or_else_the_clients_repr():
    class Local(ScriptedClient):
        model = object()  # an HF policy's `model` is the torch module, not a name

        def __repr__(self):
            return "Local(smollm2, temperature=0)"

    assert LLMJudge(ScriptedClient()).llm.identity() == "scripted"
    assert LLMJudge(Local()).llm.identity() == "Local(smollm2, temperature=0)"
