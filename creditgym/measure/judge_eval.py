"""CALM's judge evaluation: how well a judge recognises subgoals, scored against the env's events.

Transitions come from expert and random play of seeds ``0..episodes-1``. A task's subgoals
are the distinct events the expert's solution produces (so every subgoal is achievable and
named as the env names it); each (transition, subgoal) pair is labelled by whether the env
reported that event on that step. Positives (transitions achieving some subgoal) are balanced
with as many negatives drawn at random, as in the paper's protocol. The judge sees each task's
subgoals (CALM's preset variant) and answers per transition; precision, recall, F1 and
accuracy are reported per subgoal kind (the event's first word: ``took``, ``placed``,
``picked``, ``door``, ...) and overall. A judge that gives no answer counts as "not achieved".
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from creditgym.agents.scripted import ExpertPolicy, RandomPolicy
from creditgym.credit import LLMJudge, Transition, episode_transitions
from creditgym.rollout.collect import RolloutTask, collect_episodes, make_envs

__all__ = ["JudgeScore", "judge_dataset", "score_judge"]


@dataclass
class JudgeScore:
    """Agreement of a judge with the oracle on one subgoal kind (or ``all``)."""

    kind: str
    pairs: int
    positives: int
    precision: float
    recall: float
    f1: float
    accuracy: float


def judge_dataset(
    env_id: str,
    episodes: int,
    *,
    split: str = "train",
    seed: int = 0,
    env_kwargs: dict | None = None,
) -> tuple[list[Transition], dict[str, list[str]]]:
    """Balanced transitions from expert and random play, and each task's subgoals."""
    envs = make_envs(env_id, min(episodes, 16), split=split, **(env_kwargs or {}))
    tasks = [RolloutTask(s, group_id=s, split=split) for s in range(episodes)]
    expert = collect_episodes(envs, ExpertPolicy(), tasks, env_id=env_id)
    played = expert + collect_episodes(envs, RandomPolicy(seed=seed), tasks, env_id=env_id)
    for env in envs:
        env.close()
    subgoals: dict[str, list[str]] = {}
    for episode in expert:
        for t in episode_transitions(episode):
            subgoals.setdefault(t.task, [])
            subgoals[t.task] += [e for e in t.events if e not in subgoals[t.task]]
    transitions = [
        t for episode in played for t in episode_transitions(episode) if subgoals.get(t.task)
    ]
    positives = [t for t in transitions if set(t.events) & set(subgoals[t.task])]
    negatives = [t for t in transitions if not set(t.events) & set(subgoals[t.task])]
    rng = random.Random(seed)
    negatives = rng.sample(negatives, min(len(positives), len(negatives)))
    return positives + negatives, subgoals


def _kind(subgoal: str) -> str:
    return subgoal.split()[0].lower() if subgoal.split() else "?"


def score_judge(
    judge: Any, transitions: Sequence[Transition], subgoals: dict[str, list[str]]
) -> list[JudgeScore]:
    """Per subgoal kind and overall (``all``): the judge's verdicts against the events."""
    if isinstance(judge, LLMJudge):
        judge.subgoals = subgoals  # CALM's preset variant: the judge is told the task's subgoals
    verdicts = judge.judge(list(transitions))
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # tp fp fn tn
    for transition, verdict in zip(transitions, verdicts):
        said = verdict or frozenset()
        for goal in subgoals[transition.task]:
            truth, guess = goal in transition.events, goal in said
            index = 0 if truth and guess else 1 if guess else 2 if truth else 3
            for kind in (_kind(goal), "all"):
                counts[kind][index] += 1
    scores = []
    for kind in sorted(counts, key=lambda k: (k == "all", k)):
        tp, fp, fn, tn = counts[kind]
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(
            JudgeScore(
                kind,
                tp + fp + fn + tn,
                tp + fn,
                precision,
                recall,
                f1,
                (tp + tn) / (tp + fp + fn + tn),
            )
        )
    return scores


def scores_table(scores: Sequence[JudgeScore], title: str = "") -> Any:
    """A `rich.table.Table` of judge scores."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title) if title else None)
    for column in ("subgoal kind", "pairs", "positives", "precision", "recall", "F1", "accuracy"):
        table.add_column(column, justify="left" if column == "subgoal kind" else "right")
    for s in scores:
        table.add_row(
            escape(s.kind),
            str(s.pairs),
            str(s.positives),
            f"{s.precision:.2f}",
            f"{s.recall:.2f}",
            f"{s.f1:.2f}",
            f"{s.accuracy:.2f}",
        )
    return table
