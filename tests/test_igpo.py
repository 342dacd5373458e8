"""IGPO (arXiv:2510.14967): the information-gain shaper and the discounted group estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import episode

from creditgym.agents.hf.policy import HFPolicy
from creditgym.agents.hf.tiny import build_tiny_model
from creditgym.agents.hf.tokenizer import fit_tokenizer
from creditgym.credit import (
    CreditContext,
    answer_scores,
    compute_advantages,
    discounted_group_advantages,
    information_gain,
)
from creditgym.trajectory import Episode, Turn

# ---- the discounted_group estimator --------------------------------------------------------


def igpo_batch():
    """Group A: ep1 gains 1, 0 then outcome 3; ep2 answers at once with outcome 0. Group B: one
    episode."""
    return [episode([1, 0, 3], group="A"), episode([0], group="A"), episode([5], group="B")]


def estimate(episodes, **options):
    return discounted_group_advantages(
        episodes, [np.array([t.reward for t in e.turns]) for e in episodes], **options
    )


def test_joint_normalization_hand_worked():
    # Group A pools {1, 0, 3, 0}: mean 1, deviations 0 -1 2 -1, unbiased std sqrt(6/3) = sqrt(2).
    # r_hat: ep1 0, -1/sqrt2, 2/sqrt2; ep2 -1/sqrt2. Group B has one reward -> 0.
    # gamma 0.5: ep1 A_2 = sqrt2, A_1 = -1/sqrt2 + 0.5 sqrt2 = 0, A_0 = 0 + 0.5 * 0 = 0.
    got = estimate(igpo_batch(), gamma=0.5, normalization="joint")
    s = math.sqrt(2)
    assert got[0] == pytest.approx([0.0, 0.0, s], abs=1e-5)
    assert got[1] == pytest.approx([-1 / s], abs=1e-5)
    assert got[2] == pytest.approx([0.0])
    # gamma 1 (the default): A_1 = -1/sqrt2 + sqrt2 = 1/sqrt2, A_0 = 0 + 1/sqrt2
    got = estimate(igpo_batch())
    assert got[0] == pytest.approx([1 / s, 1 / s, s], abs=1e-5)


def test_separate_normalization_hand_worked():
    # Outcomes of group A {3, 0}: mean 1.5, std sqrt(4.5) -> +1/sqrt2, -1/sqrt2.
    # Gains of group A {1, 0}: mean 0.5, std sqrt(0.5) -> +1/sqrt2, -1/sqrt2.
    # ep1 r_hat = 1/s, -1/s, 1/s; gamma 0.5: A_2 = 1/s, A_1 = -1/s + 0.5/s = -0.5/s,
    # A_0 = 1/s - 0.25/s = 0.75/s.
    got = estimate(igpo_batch(), gamma=0.5, normalization="separate")
    s = math.sqrt(2)
    assert got[0] == pytest.approx([0.75 / s, -0.5 / s, 1 / s], abs=1e-5)
    assert got[1] == pytest.approx([-1 / s], abs=1e-5)
    assert got[2] == pytest.approx([0.0])


def test_failed_episodes_get_zero_and_leave_the_statistics_alone():
    healthy = estimate(igpo_batch(), gamma=0.5)
    with_failed = estimate(igpo_batch() + [episode([100, -100], group="A", failed=True)], gamma=0.5)
    for a, b in zip(healthy, with_failed):
        assert a == pytest.approx(b)
    assert with_failed[-1] == pytest.approx([0.0, 0.0])


def test_unknown_normalization_is_a_clear_error():
    with pytest.raises(ValueError, match="normalization='z'.*'joint', 'separate'"):
        estimate(igpo_batch(), normalization="z")


# ---- the info_gain shaper ------------------------------------------------------------------


class RecordingScorer:
    """Mean log-prob of the answer per prompt from a table; records every call."""

    appends_eos = True  # declares add_eos (`EosScorer`): IGPO must turn it off

    def __init__(self, table: dict[str, float]):
        self.table = table
        self.calls: list[tuple[list[str], list[str]]] = []

    def logprobs(self, prompts, continuations, *, add_eos=True):
        assert add_eos is False, "only the answer's own tokens may be scored"
        self.calls.append((list(prompts), list(continuations)))
        return [np.full(2, self.table[p]) for p in prompts]


def qa_episode(prompts: list[str], answer: str = "paris", group: str = "q") -> Episode:
    turns = [
        Turn(observation="", action="search[x]", prompt=p, info={"answer": answer}) for p in prompts
    ]
    return Episode(turns=turns, group_id=group)


def test_prob_diff_and_log_prob_diff_hand_worked():
    scorer = RecordingScorer(
        {"P0answer[": math.log(0.1), "P1answer[": math.log(0.4), "P2answer[": math.log(0.3)}
    )
    episodes = [qa_episode(["P0", "P1", "P2"])]
    context = CreditContext(scorer=scorer)
    # p = 0.1 before turn 0, 0.4 after it, 0.3 after turn 1; the final turn's reward is the
    # outcome's
    assert information_gain(episodes, context)[0] == pytest.approx([0.3, -0.1, 0.0])
    log_gains = information_gain(episodes, context, gain="log_prob_diff")[0]
    assert log_gains == pytest.approx([math.log(4), math.log(0.75), 0.0])


def test_each_turn_records_its_gain_and_the_scores_before_and_after_it():
    scorer = RecordingScorer(
        {"P0answer[": math.log(0.1), "P1answer[": math.log(0.4), "P2answer[": math.log(0.3)}
    )
    episodes = [qa_episode(["P0", "P1", "P2"])]
    information_gain(episodes, CreditContext(scorer=scorer))
    details = [turn.credit_details["info_gain"] for turn in episodes[0].turns]
    # p = 0.1 before turn 0, 0.4 after it (before turn 1), 0.3 after turn 1 (before turn 2)
    assert [(d["gain"], d["score_before"]) for d in details] == [
        pytest.approx((0.3, 0.1)),
        pytest.approx((-0.1, 0.4)),
        pytest.approx((0.0, 0.3)),
    ]
    assert [d["score_after"] for d in details] == [pytest.approx(0.4), pytest.approx(0.3), None]


def test_the_answer_is_scored_after_the_prefix_asked_for():
    scorer = RecordingScorer({"P0final: ": math.log(0.2), "P1final: ": math.log(0.5)})
    episodes = [qa_episode(["P0", "P1"])]
    gains = information_gain(episodes, CreditContext(scorer=scorer), answer_prefix="final: ")
    assert gains[0] == pytest.approx([0.3, 0.0])
    assert scorer.calls == [(["P0final: ", "P1final: "], ["paris", "paris"])]


def test_one_turn_episodes_need_no_scoring():
    scorer = RecordingScorer({})
    assert information_gain([qa_episode(["P0"])], CreditContext(scorer=scorer))[0] == pytest.approx(
        [0.0]
    )
    assert scorer.calls == []


def test_one_batched_call_no_duplicates_and_the_answer_only_as_continuation():
    scorer = RecordingScorer({"P0answer[": -2.0, "P1answer[": -1.0, "Q1answer[": -3.0})
    # two episodes of one group share their first prompt: it is scored once
    episodes = [qa_episode(["P0", "P1"]), qa_episode(["P0", "Q1"])]
    information_gain(episodes, CreditContext(scorer=scorer))
    assert len(scorer.calls) == 1
    prompts, continuations = scorer.calls[0]
    assert sorted(prompts) == ["P0answer[", "P1answer[", "Q1answer["]
    assert continuations == ["paris"] * 3
    assert not any("paris" in p for p in prompts)


def test_missing_scorer_or_answer_is_a_clear_error():
    with pytest.raises(ValueError, match="info_gain shaper.*scorer"):
        information_gain([qa_episode(["P0"])], CreditContext())
    no_answer = Episode(
        turns=[Turn(observation="", action="a", prompt=p) for p in ("P0", "P1")],
        env_id="mine/Maze-v0",
    )
    with pytest.raises(ValueError, match="info\\['answer'\\]"):
        information_gain([no_answer], CreditContext(scorer=RecordingScorer({})))


def test_an_empty_answer_or_a_missing_prompt_is_a_clear_error_naming_the_episode():
    scorer = RecordingScorer({})
    with pytest.raises(ValueError, match=r"episode 0 \(\) has a turn without info\['answer'\]"):
        information_gain([qa_episode(["P0", "P1"], answer="")], CreditContext(scorer=scorer))
    with pytest.raises(ValueError, match="IGPO needs the ground-truth answer .*envs\\)\\.$"):
        information_gain([qa_episode(["P0", "P1"], answer="")], CreditContext(scorer=scorer))
    with pytest.raises(ValueError, match="^info_gain: episode 1 has a turn without its prompt"):
        information_gain([qa_episode(["P0", "P1"]), qa_episode(["P0", ""])], CreditContext(scorer))


def test_an_answer_of_no_tokens_scores_zero():
    class NoTokens(RecordingScorer):
        def logprobs(self, prompts, continuations, *, add_eos=True):
            return [np.zeros(0) for _ in prompts]

    scores = answer_scores([qa_episode(["P0", "P1"])], NoTokens({}))
    assert scores[0].tolist() == [0.0, 0.0]


def test_a_scorer_that_appends_no_eos_is_called_without_the_option():
    class Plain:
        def __init__(self):
            self.options = []

        def logprobs(self, prompts, continuations, **options):
            self.options.append(options)
            return [np.full(1, -1.0) for _ in prompts]

    scorer = Plain()
    answer_scores([qa_episode(["P0", "P1"])], scorer)
    assert scorer.options == [{}]


CORPUS = [
    "Question: Where was the founder of Trebrarn Trading born? search[Trebrarn Trading]",
    "Trebrarn Trading was founded by Ada Morrow. Ada Morrow was born in Seihobraia.",
    "answer[Seihobraia] answer[Ada Morrow] search[Ada Morrow born]",
]


@pytest.fixture(scope="module")
def tiny_policy():
    tokenizer = fit_tokenizer(CORPUS, vocab_size=300)
    return HFPolicy(
        build_tiny_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=0), tokenizer
    )


def test_batched_scores_equal_one_at_a_time_with_the_tiny_model(tiny_policy):
    episodes = [
        qa_episode([CORPUS[0], CORPUS[0] + "\n" + CORPUS[1]], answer="Seihobraia", group=0),
        qa_episode(
            [CORPUS[0], "Question: who? search[Ada]", CORPUS[1] * 2], answer="Ada Morrow", group=0
        ),
    ]
    batched = answer_scores(episodes, tiny_policy)
    for ep, scores in zip(episodes, batched):
        answer = ep.turns[0].info["answer"]
        one_by_one = [
            tiny_policy.logprobs([turn.prompt + "answer["], [answer], add_eos=False)[0].mean()
            for turn in ep.turns
        ]
        np.testing.assert_allclose(scores, one_by_one, atol=1e-5)


def test_info_gain_composes_with_gigpo_and_the_env_outcome(tiny_policy):
    episodes = [
        qa_episode([CORPUS[0], CORPUS[1]], answer="Seihobraia"),
        qa_episode([CORPUS[0], CORPUS[2]], answer="Seihobraia"),
    ]
    episodes[0].turns[-1].reward = 1.0  # the first episode answered right
    context = CreditContext(scorer=tiny_policy)
    for estimator in ("discounted_group", {"name": "gigpo", "gamma": 1.0}):
        advantages = compute_advantages(episodes, ["env", "info_gain"], estimator, context=context)
        assert [a.shape for a in advantages] == [(2,), (2,)]
        assert advantages[0][-1] > advantages[1][-1]  # the right answer is credited more


# ---- answer scores from the rollout's KV cache ---------------------------------------------


def test_scores_recorded_by_the_rollout_are_used_without_a_call():
    episodes = [qa_episode(["P0", "P1", "P2"])]
    for turn, p in zip(episodes[0].turns, (0.1, 0.4, 0.3)):
        turn.teacher_forced = ("answer[", "paris", [math.log(p)] * 2)
    episodes[0].turns[2].teacher_forced = (
        "ANSWER:",
        "paris",
        [0.0],
    )  # another prefix: scored afresh
    scorer = RecordingScorer({"P2answer[": math.log(0.3)})
    assert information_gain(episodes, CreditContext(scorer=scorer))[0] == pytest.approx(
        [0.3, -0.1, 0.0]
    )
    assert scorer.calls == [(["P2answer["], ["paris"])]


@pytest.fixture(scope="module")
def search_policy():
    from creditgym.train.corpus import load_tiny

    return load_tiny(["creditgym/SearchQAEasy-v0"], constrained=True)


def test_rollout_scores_from_the_kv_cache_equal_a_fresh_prefill_and_leave_sampling_alone(
    search_policy,
):
    from creditgym.rollout.collect import collect_episodes, group_tasks, make_envs

    envs = make_envs("creditgym/SearchQAEasy-v0", 8, split="train")
    tasks = group_tasks([3, 4], 4, split="train")
    search_policy.generator.manual_seed(0)
    plain = collect_episodes(envs, search_policy, tasks)
    search_policy.generator.manual_seed(0)
    scored = collect_episodes(envs, search_policy, tasks, answer_prefix="answer[")

    assert [[t.response_ids for t in ep.turns] for ep in scored] == [
        [t.response_ids for t in ep.turns] for ep in plain
    ]
    np.testing.assert_allclose(
        [lp for ep in scored for t in ep.turns for lp in t.logprobs],
        [lp for ep in plain for t in ep.turns for lp in t.logprobs],
        atol=1e-5,
    )
    assert all(
        t.teacher_forced is not None and t.teacher_forced[1] == t.info["answer"]
        for ep in scored
        for t in ep.turns
    )
    from_cache = answer_scores(scored, search_policy)
    for ep in scored:
        for turn in ep.turns:
            turn.teacher_forced = None
    fresh = answer_scores(scored, search_policy)
    for cached, prefilled in zip(from_cache, fresh):
        np.testing.assert_allclose(cached, prefilled, atol=1e-5)
