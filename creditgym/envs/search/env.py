"""`SearchQAEnv`: search-and-answer over a generated knowledge world, as a `gymnasium.Env`."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import string
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from creditgym.envs import info as keys
from creditgym.envs.oracle import restore_attributes, snapshot_attributes
from creditgym.envs.reset_args import reset_arguments
from creditgym.envs.search.corpus import KEYWORDS, Corpus, write_corpus
from creditgym.envs.search.expert import expert_action
from creditgym.envs.search.index import SearchIndex, load_index
from creditgym.envs.search.questions import DIFFICULTIES, Difficulty, Question, generate_questions
from creditgym.envs.search.scoring import best_scores, normalize_answer
from creditgym.envs.search.world import World, WorldParams, generate_world
from creditgym.envs.spaces import text_space

__all__ = ["ANSWER_ALIASES", "EM", "F1", "TASK_ID", "SearchQAEnv", "load_world"]

#: Extra `info` keys of this env.
ANSWER_ALIASES = "answer_aliases"  # every accepted answer, info["answer"] first
EM = "em"  # exact match of the final answer (0.0 until answered)
F1 = "f1"  # word-set F1 of the final answer (0.0 until answered)
TASK_ID = "task_id"  # the question's stable id

_ACTION = re.compile(r"\s*(search|answer)\s*\[(.*)\]\s*", re.IGNORECASE | re.DOTALL)
_PRINTABLE = frozenset(string.printable) - frozenset("\r\x0b\x0c")
_MAX_PLAN = 1_000  # the expert makes at most two queries per fact: more is a planner bug
_FORMATS = "Use search[your query] to look something up, or answer[your answer] to finish."


def _printable(text: str, limit: int = 80) -> str:
    """`text` cut to `limit` printable ASCII characters, safe to echo in an observation."""
    return "".join(ch for ch in " ".join(text.split()) if ch in _PRINTABLE)[:limit]


@functools.lru_cache(maxsize=8)
def load_world(params: WorldParams) -> tuple[World, Corpus]:
    """The world of `params` and its corpus (generated once per process)."""
    world = generate_world(params)
    return world, write_corpus(world)


class SearchQAEnv(gym.Env[str, str]):
    """Answer questions about an invented world by searching its encyclopedia, Search-R1 style.

    ## Description
    A multi-turn tool environment after Search-R1 (arXiv 2503.09516) and IGPO (arXiv
    2510.14967), fully offline. A seeded generator invents a world (countries, cities, people,
    companies, written works; names made of syllables, so no real-world knowledge helps) with
    facts (born in, birth year, founded by, founding year, headquartered in, located in,
    author, publication year) and writes it out as short titled passages, several per entity,
    plus distractor passages about look-alike names. The agent gets a question, searches the
    corpus with a real BM25 index (`bm25s`) and answers.

    ## Action Space
    `text_space()`: any string. Two tools, case-insensitive, any text inside the brackets:
    * ``search[<query>]``: the top ``top_k`` passages for the query, BM25, best first. Any
      query text is accepted (a query matching nothing returns no passages).
    * ``answer[<text>]``: the final answer; ends the episode.
    Anything else costs a turn and says what the formats are (``valid=False``). For models
    choosing from a finite set, `info["admissible_actions"]` lists, for every name seen so far
    (in the question and the retrieved passages), ``search[<name>]`` and
    ``search[<name> <keyword>]`` (keywords of the facts passages about such a thing state:
    ``born``; ``founded``, ``headquartered``; ``country``; ``written``), then
    ``answer[<candidate>]`` for every name and year seen so far. They depend only on the
    anchor (a repeated search stays listed).

    ## Observation Space
    `text_space()`. After `reset`: the question, the tool formats and the turn budget. After a
    search: ``Doc 1 (Title: <title>) <text>`` per result (Search-R1's layout) and the turns
    left. After an answer: the answer echoed (never the ground truth).

    ## Rewards
    At the end only, as in IGPO: the word-set F1 of the answer against the ground truth (SQuAD
    normalisation: lower case, no punctuation, no articles; max over the accepted aliases), in
    [0, 1]. An ``answer[...]`` whose text normalises to nothing (``answer[]``, ``answer[the]``)
    is a malformed final action: the episode ends with ``format_penalty`` (default -0.1).
    IGPO's public reward code gives -2.0 when the response's ``<answer>`` block is missing or
    unbalanced and 0 to an empty but well-formed one; Search-R1's EM reward gives 0 to both.
    Here tag checking belongs to the agent's action parser (`creditgym.agents.parsing`), so
    the env only sees the empty answer, and a small penalty ranks it below a wrong answer (0)
    without dwarfing the F1 scale; pass ``format_penalty=-2.0`` to copy IGPO's value. Every
    other step, and running out of turns, earns 0.

    ## Starting State
    A question of the split, no passages retrieved, all ``max_turns`` turns left.

    ## Episode End
    terminated=True on ``answer[...]``; truncated=True when ``max_turns`` turns (any action,
    valid or not, is a turn) pass without an answer, with reward 0. The env enforces the budget
    itself, so it holds under `env.unwrapped` too.

    ## Arguments
    * ``split``: ``"train"``, ``"valid"`` or ``"test"`` (below).
    * ``difficulty``: ``"easy"`` (60 people, 24 companies, 24 works, 16 cities, 12 look-alike
      passages, no fillers: 164 passages; single-hop and bridge), ``"standard"`` (300 people,
      120 companies, 120 works, 60 cities, 150 look-alikes, one filler per entity: 1,480
      passages; all task types) or ``"hard"`` (1,500 people, 1,500 look-alikes, two fillers
      per entity: 10,820 passages; all task types); or a `Difficulty` of your own.
    * ``hop_mix``: task type -> weight, overriding the difficulty's mix.
    * ``top_k``: passages per search (3, as Search-R1; at most 20, so a result page fits the
      observation space).
    * ``max_turns``: the turn budget (10).
    * ``format_penalty``: the reward of a malformed final answer (-0.1).
    * ``world_seed``: seed of the world (0); the same seed is the same world everywhere.
    * ``cache_dir``: where the BM25 index is cached (``$CREDITGYM_CACHE`` or
      ``~/.cache/creditgym``); it is built on first use.
    * ``render_mode``: ``None`` or ``"ansi"`` (returns the last observation).

    ## Task Types
    ``single_hop`` ("Where was Talor Venmik born?", "In what year was Quorvex Industries
    founded?", "Who wrote The Orvel Tides?", "In which country is Brelvost?"), ``bridge``
    ("Where was the founder of Quorvex Industries born?", "In what year was the author of The
    Orvel Tides born?", "In which country was Talor Venmik born?") and ``comparison`` ("Who is
    older, Talor Venmik or Brisa Holm?", "Which is older, Quorvex Industries or Dramlin
    Labs?"). Answers are names or years. Pass ``options={"task_type": ...}`` to `reset` to
    draw one type, or ``options={"question": question}`` to play a given `Question`.

    ## Info
    ``task`` (the question), ``task_type``, ``task_id``, ``admissible_actions``, ``anchor``
    (frozenset of the question id and the ids of the passages retrieved so far), ``won`` (EM
    of the final answer is 1), ``valid``, ``answer`` (ground truth; never in an observation),
    ``answer_aliases`` (every accepted answer, ``answer`` first), ``em`` and ``f1`` (of the
    final answer, 0.0 before it), ``symbolic_state`` (turn, searches, invalid_actions,
    passages_retrieved, gold_retrieved, gold_total, answered) and ``events`` ("retrieved gold
    passage i" the first time the passage stating the i-th fact on the question's path is
    retrieved, "answered" on a well-formed answer).

    ## Splits
    `reset(seed=n)` gives question ``n`` (mod the split's size) of the split, the same
    forever; `reset()` draws one from the env's RNG. Every person, company, city and work is
    the named topic of questions in exactly one split (80/10/10), so test questions name
    entities no train question names; entities reached on the way are shared.

    ## The Expert
    ``env.unwrapped.expert_action()`` searches ``"<name> <keyword>"`` for each hop of the
    question's true structure, learns facts only from the passages it retrieved, and answers;
    its actions are admissible (see `expert.py`). ``env.unwrapped.steps_to_go()`` is the
    number of actions it takes from the current state to answer correctly (0 once won; None
    after a wrong or empty answer, or where the expert's answer would be wrong); the turn
    budget is ignored.

    ## Cloning
    ``env.unwrapped.clone_state()`` snapshots the episode (retrieved passages, queries, turn,
    RNG, last observation and info; the world, corpus and index are shared);
    ``restore_state(snapshot)`` returns that observation and info, and the env continues
    exactly as the original did.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4, "eval_splits": ("valid", "test")}  # noqa: RUF012

    def __init__(
        self,
        split: str = "train",
        difficulty: str | Difficulty = "standard",
        hop_mix: Mapping[str, float] | None = None,
        top_k: int = 3,
        max_turns: int = 10,
        format_penalty: float = -0.1,
        world_seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}; expected None or 'ansi'")
        if isinstance(difficulty, str):
            if difficulty not in DIFFICULTIES:
                raise ValueError(
                    f"difficulty={difficulty!r}; choose one of {list(DIFFICULTIES)} "
                    "or pass a Difficulty"
                )
            difficulty = DIFFICULTIES[difficulty]
        if not 1 <= top_k <= 20 or max_turns < 1:
            raise ValueError(
                f"top_k={top_k}, max_turns={max_turns}; top_k must be 1-20 and max_turns at least 1"
            )
        self.split = split
        self.params = dataclasses.replace(difficulty.world, seed=world_seed)
        self.world, self.corpus = load_world(self.params)
        self.questions = generate_questions(
            self.world, self.corpus, split, hop_mix or difficulty.hop_mix
        )
        self.index: SearchIndex = load_index(self.corpus, self.params, cache_dir)
        self.top_k, self.max_turns, self.format_penalty = top_k, max_turns, float(format_penalty)
        self.render_mode = render_mode
        self.observation_space = text_space()
        self.action_space = text_space()
        self.question: Question | None = None
        self._last_info: dict[str, Any] = {}
        self._plan_lengths: dict[tuple, int | None] = {}  # (retrieved, searched) -> steps

    # --- episode ----------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict]:
        seed, options = reset_arguments(seed, options, type(self).__name__)
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"task_type", "question"}
        if unknown:
            raise ValueError(
                f"unknown reset options {sorted(unknown)}; "
                "SearchQAEnv accepts 'task_type' and 'question'"
            )
        if "question" in options:
            if not isinstance(options["question"], Question):
                raise TypeError(
                    f"options['question'] is a {type(options['question']).__name__}; "
                    "pass a Question "
                    "(from env.unwrapped.questions or creditgym.envs.search.generate_questions)"
                )
            self.question = options["question"]
        else:
            pool = self.questions
            if "task_type" in options:
                pool = tuple(q for q in pool if q.task_type == options["task_type"])
                if not pool:
                    types = sorted({q.task_type for q in self.questions})
                    raise ValueError(
                        f"no {options['task_type']!r} questions in this env; it asks {types}"
                    )
            index = seed if seed is not None else int(self.np_random.integers(len(pool)))
            self.question = pool[index % len(pool)]
        question = self.question
        self._turn = self._searches = self._invalid = 0
        self._searched: list[str] = []
        self._retrieved: dict[int, None] = {}  # passage ids, in retrieval order
        self._seen_names: dict[str, str] = dict(
            question.mentions
        )  # name -> kind, in order of appearance
        self._seen_years: dict[str, None] = {}
        self._gold_found: set[int] = set()
        self._em = self._f1 = 0.0
        self._answered = self._over = self._truncated = False
        self._admissible = self._list_admissible()
        self._plan_lengths = {}
        self._last_obs = (
            f"Question: {question.text}\n{_FORMATS} A search shows the top {self.top_k} passages. "
            f"You have {self.max_turns} turns."
        )
        self._last_info = self._info(True, [])
        return self._last_obs, self._last_info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self.question is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._over:
            self._last_obs = "The episode is over; call reset() to start a new question."
            self._last_info = self._info(False, [])
            return self._last_obs, 0.0, True, False, self._last_info
        self._turn += 1
        match = _ACTION.fullmatch(action) if isinstance(action, str) else None
        tool, argument = (match.group(1).lower(), match.group(2).strip()) if match else ("", "")
        reward, events, valid = 0.0, [], True
        if tool == "search" and argument:
            obs, events = self._search(argument)
        elif tool == "answer":
            obs, reward, events, valid = self._answer(argument)
        else:
            self._invalid += 1
            valid = False
            shown = _printable(str(action))
            problem = "search[] needs a query." if tool == "search" else f'Cannot parse "{shown}".'
            obs = f"{problem} {_FORMATS} {self._turns_left()}"
        terminated = tool == "answer"
        truncated = not terminated and self._turn >= self.max_turns
        self._over = terminated or truncated
        self._truncated = truncated  # only the budget ended it: the oracle still plans on
        self._last_obs = obs
        self._last_info = self._info(valid, events)
        return obs, reward, terminated, truncated, self._last_info

    def _search(self, query: str) -> tuple[str, list[str]]:
        self._searches += 1
        self._searched.append(query)
        hits = self.index.search(query, self.top_k)
        events = []
        for passage_id in hits:
            if passage_id in self._retrieved:
                continue
            self._retrieved[passage_id] = None
            passage = self.corpus.passages[passage_id]
            for name, kind in passage.mentions:
                self._seen_names.setdefault(name, kind)
            self._seen_years.update(dict.fromkeys(passage.years))
            if passage_id in self.question.gold_passages:
                self._gold_found.add(passage_id)
                events.append(
                    f"retrieved gold passage {self.question.gold_passages.index(passage_id) + 1}"
                )
        self._admissible = self._list_admissible()
        shown = _printable(query)
        if not hits:
            return f"No passage matches search[{shown}]. {self._turns_left()}", events
        docs = "\n".join(
            f"Doc {rank} (Title: {self.corpus.passages[i].title}) {self.corpus.passages[i].text}"
            for rank, i in enumerate(hits, start=1)
        )
        return f"Results for search[{shown}]:\n{docs}\n{self._turns_left()}", events

    def _answer(self, text: str) -> tuple[str, float, list[str], bool]:
        if not normalize_answer(text):
            obs = (
                f"answer[{_printable(text)}] is empty once articles and punctuation are removed; "
                "the episode is over."
            )
            return obs, self.format_penalty, [], False
        self._answered = True
        self._em, self._f1 = best_scores(text, self.question.aliases)
        return (
            f"You answered: {_printable(text)}. The episode is over.",
            self._f1,
            ["answered"],
            True,
        )

    def _turns_left(self) -> str:
        left = self.max_turns - self._turn
        return f"{left} turn{'' if left == 1 else 's'} left."

    # --- info ----------------------------------------------------------------------------------

    def _list_admissible(self) -> list[str]:
        searches = []
        for name, kind in self._seen_names.items():
            searches.append(f"search[{name}]")
            searches.extend(f"search[{name} {keyword}]" for keyword in KEYWORDS[kind])
        answers = [f"answer[{candidate}]" for candidate in (*self._seen_names, *self._seen_years)]
        return searches + answers

    def _info(self, valid: bool, events: list[str]) -> dict[str, Any]:
        question = self.question
        return {
            keys.TASK: question.text,
            keys.TASK_TYPE: question.task_type,
            TASK_ID: question.id,
            keys.ADMISSIBLE_ACTIONS: list(self._admissible),
            keys.ANCHOR: frozenset((question.id, *self._retrieved)),
            keys.WON: self._em == 1.0,
            keys.VALID: valid,
            keys.ANSWER: question.answer,
            ANSWER_ALIASES: list(question.aliases),
            EM: self._em,
            F1: self._f1,
            keys.SYMBOLIC_STATE: {
                "turn": float(self._turn),
                "searches": float(self._searches),
                "invalid_actions": float(self._invalid),
                "passages_retrieved": float(len(self._retrieved)),
                "gold_retrieved": float(len(self._gold_found)),
                "gold_total": float(len(set(question.gold_passages))),
                "answered": float(self._answered),
            },
            keys.EVENTS: events,
        }

    # --- expert and rendering --------------------------------------------------------------

    def expert_action(self) -> str:
        """The expert's next action from the current state (admissible; see `expert.py`)."""
        if self.question is None:
            raise gym.error.ResetNeeded("call reset() before expert_action()")
        retrieved = (self.corpus.passages[i] for i in self._retrieved)
        return expert_action(self.world, self.question, retrieved, self._searched)

    def steps_to_go(self) -> int | None:
        """How many actions the expert takes from the current state to answer correctly.

        0 once won; None after a wrong or empty answer, or where the expert's answer from here
        would be wrong. The expert is played out on copies of what it reads (retrieved
        passages, queries made), so this is exactly its count; the turn budget is ignored
        (a truncated episode still gets its count, for the progress label of its last turn).
        """
        if self.question is None:
            raise gym.error.ResetNeeded("call reset() before steps_to_go()")
        if self._answered or (self._over and not self._truncated):
            return 0 if self._em == 1.0 else None
        key = (tuple(self._retrieved), tuple(self._searched))
        if key not in self._plan_lengths:
            self._plan_lengths[key] = self._play_out_expert()
        return self._plan_lengths[key]

    def _play_out_expert(self) -> int | None:
        retrieved, searched = dict(self._retrieved), list(self._searched)
        for steps in range(1, _MAX_PLAN + 1):
            passages = (self.corpus.passages[i] for i in retrieved)
            action = expert_action(self.world, self.question, passages, searched)
            tool, argument = _ACTION.fullmatch(action).group(1, 2)
            if tool == "answer":
                return (
                    steps
                    if best_scores(argument.strip(), self.question.aliases)[0] == 1.0
                    else None
                )
            searched.append(argument.strip())
            retrieved.update(dict.fromkeys(self.index.search(argument.strip(), self.top_k)))
        raise RuntimeError(f"the search expert did not answer within {_MAX_PLAN} actions")

    def clone_state(self) -> object:
        """An opaque snapshot of the episode (the world, corpus and index are shared)."""
        if self.question is None:
            raise gym.error.ResetNeeded("call reset() before clone_state()")
        shared = (self.world, self.corpus, self.questions, self.index, self.question)
        return snapshot_attributes(self, (*shared, self.params, self._plan_lengths))

    def restore_state(self, snapshot: object) -> tuple[str, dict[str, Any]]:
        """Return to `snapshot` (from `clone_state` of this env or one built alike); gives the
        observation and info of that moment, and the env continues exactly as it did then."""
        restore_attributes(self, snapshot)
        return self._last_obs, self._last_info

    def render(self) -> str | None:
        return self._last_obs if self.render_mode == "ansi" else None
