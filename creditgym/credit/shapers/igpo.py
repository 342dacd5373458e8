"""IGPO's shaper ``info_gain``: the information gain of each turn as its reward.

Wang et al., "Information Gain-based Policy Optimization: A Simple and Effective Approach for
Multi-Turn LLM Agents", arXiv:2510.14967.

**Shaper ``info_gain``.** Before the episode and after each turn t the current policy scores the
ground-truth answer by teacher forcing:

    p_t = exp( mean over answer tokens of
               log pi(answer token | prompt after turn t, answer prefix) )

and turn t's reward is the gain r_t = p_t - p_(t-1) (``"prob_diff"``, the paper's) or the gain
in mean log-probability (``"log_prob_diff"``). "The prompt after turn t" is the prompt of turn
t + 1: the policy's own view of the task, the history and the new observation, so the score
measures what the agent now knows, in its own context format. The final turn gets 0 here: its
reward is the outcome (the env's F1), so IGPO's turn rewards are ``shapers: [env, info_gain]``.
The answer is read from ``turn.info["answer"]`` and only ever appears as the teacher-forced
continuation after ``answer_prefix`` (``"answer["``, our search env's answer tool). Every
(prompt, answer) pair of the batch is scored in one batched `logprobs` call, and identical
pairs (the first prompt of every episode of a group) are scored once. Cheaper still, a rollout
given ``answer_prefix`` (the trainer passes it when ``info_gain`` is configured) has the policy
score the answer from each prompt's own KV cache as it samples (`Turn.teacher_forced`); those
scores are used as they are, and only turns without one are scored here.

IGPO's advantages are the ``discounted_group`` estimator
(`creditgym.credit.estimators.discounted_group`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from creditgym.credit.batch import check_choice
from creditgym.credit.context import CreditContext, LogProbScorer
from creditgym.credit.modules import Requirement
from creditgym.credit.registry import register_shaper
from creditgym.info_keys import ANSWER
from creditgym.trajectory import Episode

__all__ = ["ANSWER_PREFIX", "information_gain", "answer_scores"]

GAINS = ("prob_diff", "log_prob_diff")
ANSWER_PREFIX = "answer["  # our search env's answer tool


@runtime_checkable
class EosScorer(LogProbScorer, Protocol):
    """A scorer whose `logprobs` closes each continuation with EOS unless given add_eos=False.

    `appends_eos` declares it (creditgym's `HFPolicy` and the vLLM engine do); IGPO then asks
    for the answer's own tokens only. Other scorers are called with prompts and continuations.
    """

    appends_eos: bool


def answer_scores(
    episodes: Sequence[Episode], scorer: LogProbScorer, answer_prefix: str = ANSWER_PREFIX
) -> list[np.ndarray]:
    """Mean log-probability of the answer before each turn of each episode.  # per episode (turns,)

    Entry t of an episode's array scores the answer after turn t's prompt (the state before
    turn t acts): entry 0 is the score before the episode, entry t the score after turn t - 1.
    A turn whose rollout already scored ``answer_prefix + answer`` from its KV cache
    (`Turn.teacher_forced`) keeps that score; the rest are scored here in one batched call.
    """
    requests: dict[tuple[str, str], int] = {}
    slots: list[list[int]] = []
    known: dict[tuple[int, int], float] = {}  # (episode, turn) -> mean log-prob from the rollout
    for index, episode in enumerate(episodes):
        row = []
        for step, turn in enumerate(episode.turns):
            answer = turn.info.get(ANSWER)
            if not isinstance(answer, str) or not answer:
                raise ValueError(
                    f"info_gain: episode {index} ({episode.env_id}) has a turn without "
                    f"info[{ANSWER!r}]; IGPO needs the ground-truth answer (question-answering "
                    "envs)."
                )
            forced = turn.teacher_forced
            if forced is not None and forced[:2] == (answer_prefix, answer) and forced[2]:
                known[index, step] = float(np.mean(forced[2]))
                row.append(-1)
                continue
            if not turn.prompt:
                raise ValueError(f"info_gain: episode {index} has a turn without its prompt text")
            row.append(requests.setdefault((turn.prompt + answer_prefix, answer), len(requests)))
        slots.append(row)
    means = np.zeros(len(requests))
    if requests:
        prompts, answers = zip(*requests)
        # only the answer's own tokens count: no EOS after it (policies that append one say so)
        no_eos = {"add_eos": False} if isinstance(scorer, EosScorer) and scorer.appends_eos else {}
        token_logprobs = scorer.logprobs(list(prompts), list(answers), **no_eos)
        means = np.array([float(np.mean(lp)) if len(lp) else 0.0 for lp in token_logprobs])
    return [
        np.array([known[index, step] if slot < 0 else means[slot] for step, slot in enumerate(row)])
        for index, row in enumerate(slots)
    ]


def information_gain(
    episodes: Sequence[Episode],
    context: CreditContext | None,
    *,
    gain: str = "prob_diff",
    answer_prefix: str = ANSWER_PREFIX,
    scale: float = 1.0,
) -> list[np.ndarray]:
    """IGPO's information-gain reward for every turn but the last (which gets 0).

    Args:
        episodes: the batch; every turn's `info` must hold the ``answer``.
        context: must carry the current policy as ``scorer``.
        gain: ``"prob_diff"`` (p_t - p_(t-1), the paper's) or ``"log_prob_diff"``.
        answer_prefix: text between the prompt and the answer in an answering action.
        scale: multiplies the gains.
    """
    check_choice("gain", gain, GAINS, "info_gain")
    scorer = (context or CreditContext()).require("scorer", "the info_gain shaper (IGPO)")
    rewards = [np.zeros(len(episode.turns)) for episode in episodes]
    # a one-turn episode has no gain to score (its only turn's reward is the outcome)
    multi_turn = [i for i, episode in enumerate(episodes) if len(episode.turns) > 1]
    scores = answer_scores([episodes[i] for i in multi_turn], scorer, answer_prefix)
    for i, log_p in zip(multi_turn, scores):
        score = np.exp(log_p) if gain == "prob_diff" else log_p
        rewards[i][:-1] = scale * np.diff(
            score
        )  # turn t: score after it (entry t + 1) minus before it
        for t, turn in enumerate(episodes[i].turns):  # for the episode log and viewer
            turn.credit_details["info_gain"] = {
                "gain": float(rewards[i][t]),
                "score_before": float(score[t]),
                "score_after": float(score[t + 1]) if t + 1 < len(score) else None,
            }
    return rewards


# needs the policy as scorer, and (optionally, to save forward passes) the rollout scoring
# ``answer_prefix + answer`` after every prompt from its KV cache
register_shaper(
    "info_gain",
    requires=(Requirement("scorer"), Requirement("answer_scores", option="answer_prefix")),
)(information_gain)
