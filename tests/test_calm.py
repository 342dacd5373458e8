"""CALM (arXiv:2409.12798): subgoal shaping with the oracle and with LLM judges."""

from __future__ import annotations

import numpy as np
import pytest

import creditgym
from creditgym.agents.base import Generation
from creditgym.agents.scripted import ExpertPolicy
from creditgym.credit import CreditContext, LLMJudge, OracleJudge, calm_rewards, compute_advantages
from creditgym.credit.shapers.calm import (
    Transition,
    parse_subgoals,
    parse_verdict,
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
