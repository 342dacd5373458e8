"""CALM: an LLM decomposes the task into subgoals and judges which ones each transition achieves.

Pignatelli et al., "Assessing the Zero-Shot Capabilities of LLMs for Action Evaluation in RL"
(CALM), arXiv:2409.12798. Turn t's auxiliary reward is

    beta x (number of subgoals the transition (o_t, a_t, o_(t+1)) achieves for the first time
            in the episode)

added to the env's reward (``shapers: [env, calm]``; beta 0.1 as in the paper's code).

Judges, behind one small interface (`Judge`):

* `LLMJudge` wraps any text `Policy` (an `OpenAIPolicy` for a served model, an `HFPolicy`
  for a local one). It asks once per task for the subgoals and once per distinct transition
  which subgoals it achieved. The prompts follow the paper's structure: role, legend of the
  observation format, task, subgoals, the transition, and the answer format (a dict of subgoal
  -> true/false), parsed leniently. Every answer is cached on disk by a hash of the request, so
  reruns are free and identical; a failed request or an unparseable answer gives no reward and
  is counted in `LLMJudge.stats`, never raised.
* `OracleJudge` reads the env's own ``events`` (what an LLM judge is scored against): each
  distinct event is a subgoal.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from creditgym.credit.context import CreditContext
from creditgym.credit.llm import CachedLLM
from creditgym.credit.modules import Requirement
from creditgym.credit.registry import register_shaper
from creditgym.info_keys import EVENTS, TASK
from creditgym.trajectory import Episode

__all__ = [
    "Transition",
    "Judge",
    "OracleJudge",
    "LLMJudge",
    "calm_rewards",
    "subgoal_prompt",
    "transition_prompt",
    "parse_subgoals",
    "parse_verdict",
]


@dataclass(frozen=True)
class Transition:
    """One step to judge: the task, the observation before, the action, the observation after."""

    task: str
    observation: str
    action: str
    next_observation: str
    events: tuple[str, ...] = ()  # the env's own subgoal events (only the oracle reads them)


class Judge(Protocol):
    """Says which subgoals each transition achieves; ``None`` where it could not tell."""

    def judge(self, transitions: Sequence[Transition]) -> list[frozenset[str] | None]: ...


class OracleJudge:
    """The environment's own ``events`` as the achieved subgoals: the ground truth."""

    def judge(self, transitions: Sequence[Transition]) -> list[frozenset[str] | None]:
        return [frozenset(t.events) for t in transitions]

    def __repr__(self) -> str:
        return "OracleJudge()"


# ---- prompts ---------------------------------------------------------------------------------

ROLE = (
    "You are a careful and honest judge of an agent's progress in a text-based game. Answer "
    "truthfully; if the transition does not show that something happened, say it did not."
)


def subgoal_prompt(task: str, legend: str = "", max_subgoals: int = 6) -> str:
    """Ask for the task's subgoals as a numbered list."""
    return "\n\n".join(
        part
        for part in (
            ROLE,
            legend,
            f"The agent's task: {task}",
            f"Break the task down into at most {max_subgoals} short subgoals, in the order the "
            "agent must achieve them, each one an observable event "
            "(for example 'pick up the key').",
            "Answer with a numbered list, one subgoal per line, and nothing else:\n"
            "1. <subgoal>\n2. <subgoal>",
        )
        if part
    )


def transition_prompt(transition: Transition, subgoals: Sequence[str], legend: str = "") -> str:
    """Ask which of `subgoals` the transition achieves, as a dict of subgoal -> true/false."""
    listed = "\n".join(f'    "{goal}": null,' for goal in subgoals)
    example = "\n".join(f'    "{goal}": false,' for goal in subgoals)
    return "\n\n".join(
        part
        for part in (
            ROLE,
            legend,
            f"The agent's task: {transition.task}",
            f"Consider these subgoals:\n{{\n{listed}\n}}",
            "Here is one step of the game. Decide, for each subgoal, whether the agent's action "
            "achieved it in this step. Look at what the observation after the action says.",
            f"Observation before:\n{transition.observation}\n\nAction: {transition.action}\n\n"
            f"Observation after:\n{transition.next_observation}",
            "Answer with a dict of every subgoal and true or false, and nothing else:\n"
            f"{{\n{example}\n}}",
        )
        if part
    )


_LIST_ITEM = re.compile(r"^\s*(?:\d+[.):]|[-*\u2022])\s*(.+?)\s*$")
_PAIR = re.compile(r"""["']([^"'\n]+)["']\s*:\s*(true|false|yes|no|1|0)\b""", re.IGNORECASE)


def parse_subgoals(text: str, max_subgoals: int = 6) -> list[str] | None:
    """Subgoals from a numbered or bulleted list; ``None`` if there is none."""
    goals = []
    for line in text.splitlines():
        match = _LIST_ITEM.match(line)
        if match:
            goal = match.group(1).strip().strip("\"'").rstrip(".").strip()
            if goal and goal.lower() not in (g.lower() for g in goals):
                goals.append(goal)
    return goals[:max_subgoals] or None


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


def parse_verdict(text: str, subgoals: Sequence[str]) -> frozenset[str] | None:
    """The subgoals an answer marks true; ``None`` if it names none of `subgoals`.

    Reads ``"subgoal": true`` pairs anywhere in the text (JSON, a Python dict, single quotes,
    yes/no, 1/0); keys match subgoals ignoring case and punctuation.
    """
    by_key = {_normalize(goal): goal for goal in subgoals}
    seen, achieved = False, set()
    for key, value in _PAIR.findall(text):
        goal = by_key.get(_normalize(key))
        if goal is None:
            continue
        seen = True
        if value.lower() in ("true", "yes", "1"):
            achieved.add(goal)
    return frozenset(achieved) if seen else None


# ---- the LLM judge ---------------------------------------------------------------------------


@dataclass
class LLMJudge:
    """CALM's judge over any text policy (`OpenAIPolicy`, `HFPolicy`, ...), with a disk cache.

    Attributes:
        client: anything with ``generate(prompts) -> [Generation]``; sample greedily
            (temperature 0) so a judgement is a function of its request.
        legend: how to read the env's observations (CALM's "symset"); may be empty.
        subgoals: fixed subgoals (CALM's preset variant): one list for every task, or a dict
            of task -> list; ``None`` (or a task missing from the dict) asks the LLM to
            decompose the task (once per task, cached).
        cache_dir: where answers are cached; ``None`` keeps them in memory only.
        max_subgoals: at most this many subgoals per task.
    """

    client: object
    legend: str = ""
    subgoals: Sequence[str] | Mapping[str, Sequence[str]] | None = None
    cache_dir: str | Path | None = None
    max_subgoals: int = 6
    llm: CachedLLM = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.llm = CachedLLM(self.client, self.cache_dir)

    @property
    def stats(self) -> Counter:
        """``requests``, ``cache_hits``, ``failed`` (no answer) and ``unparseable`` counts."""
        return self.llm.stats

    def ask(self, prompts: Sequence[str]) -> list[str | None]:
        """Answers to `prompts` through the disk cache (see `CachedLLM.ask`)."""
        return self.llm.ask(prompts)

    def decompose(self, tasks: Sequence[str]) -> dict[str, list[str] | None]:
        """Each distinct task's subgoals (the preset ones if given)."""
        distinct = list(dict.fromkeys(tasks))
        preset = self.subgoals
        if preset is not None and not isinstance(preset, Mapping):
            return {task: list(preset) for task in distinct}
        result: dict[str, list[str] | None] = {
            t: list(preset[t]) for t in distinct if preset and t in preset
        }
        unknown = [t for t in distinct if t not in result]
        answers = self.ask([subgoal_prompt(t, self.legend, self.max_subgoals) for t in unknown])
        for task, answer in zip(unknown, answers):
            goals = parse_subgoals(answer, self.max_subgoals) if answer is not None else None
            if answer is not None and goals is None:
                self.stats["unparseable"] += 1
            result[task] = goals
        return result

    def judge(self, transitions: Sequence[Transition]) -> list[frozenset[str] | None]:
        goals = self.decompose([t.task for t in transitions])
        askable = [i for i, t in enumerate(transitions) if goals[t.task]]
        answers = self.ask(
            [
                transition_prompt(transitions[i], goals[transitions[i].task], self.legend)
                for i in askable
            ]
        )
        verdicts: list[frozenset[str] | None] = [None] * len(transitions)
        for i, answer in zip(askable, answers):
            if answer is None:
                continue
            verdicts[i] = parse_verdict(answer, goals[transitions[i].task])
            if verdicts[i] is None:
                self.stats["unparseable"] += 1
        return verdicts


# ---- the shaper ------------------------------------------------------------------------------


def episode_transitions(episode: Episode) -> list[Transition]:
    """The (o_t, a_t, o_(t+1)) of every turn, with the env's events of that step."""
    return [
        Transition(
            task=str(turn.info.get(TASK, "")),
            observation=turn.observation,
            action=turn.action,
            next_observation=turn.next_observation,
            events=tuple(turn.next_info.get(EVENTS, ())),
        )
        for turn in episode.turns
    ]


# the caller builds the judge `credit.judge` names (``oracle``, or an LLM) into `context.judge`
def calm_rewards(
    episodes: Sequence[Episode], context: CreditContext | None, *, beta: float = 0.1
) -> list[np.ndarray]:
    """beta x the subgoals each turn achieves for the first time in its episode.

    Args:
        episodes: the batch.
        context: must carry a `Judge` as ``judge`` (`LLMJudge` or `OracleJudge`).
        beta: reward per newly achieved subgoal (0.1, the paper's code).
    """
    judge = (context or CreditContext()).require("judge", "the calm shaper (CALM)")
    per_episode = [episode_transitions(episode) for episode in episodes]
    flat = [t for transitions in per_episode for t in transitions]
    verdicts = iter(judge.judge(flat))
    rewards = []
    for episode, transitions in zip(episodes, per_episode):
        achieved: set[str] = set()
        episode_rewards = np.zeros(len(transitions))
        for t in range(len(transitions)):
            judged = next(verdicts)
            verdict = judged or frozenset()  # no verdict, no reward
            episode_rewards[t] = beta * len(verdict - achieved)
            episode.turns[t].credit_details["calm"] = {  # for the episode log and viewer
                "judged": judged is not None,
                "achieved": sorted(verdict),
                "new": sorted(verdict - achieved),
            }
            achieved |= verdict
        rewards.append(episode_rewards)
    return rewards


register_shaper("calm", requires=(Requirement("judge", setting="judge"),))(calm_rewards)
