"""Search-and-answer over a generated knowledge world (Search-R1 / IGPO style), fully offline.

Importing this package registers the presets:

* ``creditgym/SearchQAEasy-v0``: a small world (164 passages), single-hop and bridge
  questions, 10 turns; the expert needs 2-3. Small enough for a tiny model on a CPU.
* ``creditgym/SearchQA-v0``: a larger world (1,480 passages with fillers and look-alike
  distractors), single-hop, bridge and comparison questions, 10 turns.

``difficulty="hard"`` (10,820 passages) is available through `make` keyword arguments. The
first use of a world builds its BM25 index (``bm25s``, the ``search`` extra) and caches it
on disk.

    >>> import creditgym
    >>> env = creditgym.make("creditgym/SearchQAEasy-v0", split="test")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
"""

from creditgym.envs.registry import register
from creditgym.envs.search.env import ANSWER_ALIASES, EM, F1, TASK_ID, SearchQAEnv, load_world
from creditgym.envs.search.questions import (
    DIFFICULTIES,
    SPLITS,
    TASK_TYPES,
    Difficulty,
    Question,
    generate_questions,
)
from creditgym.envs.search.scoring import best_scores, exact_match, f1_score, normalize_answer
from creditgym.envs.search.world import WorldParams

__all__ = [
    "ANSWER_ALIASES",
    "DIFFICULTIES",
    "EM",
    "F1",
    "SPLITS",
    "TASK_ID",
    "TASK_TYPES",
    "Difficulty",
    "Question",
    "SearchQAEnv",
    "WorldParams",
    "best_scores",
    "exact_match",
    "f1_score",
    "generate_questions",
    "load_world",
    "normalize_answer",
]

_ENTRY_POINT = "creditgym.envs.search.env:SearchQAEnv"

register(
    "creditgym/SearchQAEasy-v0",
    _ENTRY_POINT,
    description=(
        "Search-and-answer, easy: small invented world, single-hop + bridge questions, "
        "BM25 top 3, 10 turns."
    ),
    difficulty="easy",
    max_turns=10,
)
register(
    "creditgym/SearchQA-v0",
    _ENTRY_POINT,
    description=(
        "Search-and-answer (Search-R1/IGPO style) over an invented world: single-hop, bridge, "
        "comparison."
    ),
    difficulty="standard",
    max_turns=10,
)
