"""Questions over a world: the task types, the splits and the difficulty presets.

Task types (IGPO and Search-R1 train on NQ/HotpotQA-style questions; these are their shapes):

* ``single_hop``: one fact of the entity named ("Where was Talor Venmik born?").
* ``bridge``: a fact of an entity reached through another ("Where was the founder of Quorvex
  Industries born?": founder first, then the founder's birthplace).
* ``comparison``: the same fact of two entities, compared ("Who is older, Talor Venmik or
  Brisa Holm?": both birth years). The answer is a name from the question.

A question follows `path` (relations) from each entity in `topics`; its gold passages are
the passages stating each fact on the way, in that order.

Splits: every person, company, city and work is the *topic* of questions in exactly one split
(80% train, 10% valid, 10% test, by a seeded shuffle), so test questions ask about entities no
train question names. Entities reached on the way (a founder, a city) are shared: the world,
and its corpus, is one.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from creditgym.envs.search.corpus import Corpus
from creditgym.envs.search.world import World, WorldParams

__all__ = ["DIFFICULTIES", "SPLITS", "TASK_TYPES", "Difficulty", "Question", "generate_questions"]

TASK_TYPES = ("single_hop", "bridge", "comparison")
SPLITS = ("train", "valid", "test")
_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)

#: topic kind -> (path, question template)
_SINGLE_HOP = {
    "person": (
        (("born_in",), "Where was {} born?"),
        (("birth_year",), "In what year was {} born?"),
    ),
    "company": (
        (("founded_by",), "Who founded {}?"),
        (("founding_year",), "In what year was {} founded?"),
        (("headquartered_in",), "Where is {} headquartered?"),
    ),
    "city": ((("in_country",), "In which country is {}?"),),
    "work": (
        (("author",), "Who wrote {}?"),
        (("publication_year",), "In what year was {} published?"),
    ),
}
_BRIDGE = {
    "person": ((("born_in", "in_country"), "In which country was {} born?"),),
    "company": (
        (("founded_by", "born_in"), "Where was the founder of {} born?"),
        (("founded_by", "birth_year"), "In what year was the founder of {} born?"),
        (("headquartered_in", "in_country"), "In which country is {} headquartered?"),
    ),
    "work": (
        (("author", "born_in"), "Where was the author of {} born?"),
        (("author", "birth_year"), "In what year was the author of {} born?"),
    ),
}
_COMPARISON = {
    "person": (("birth_year",), "Who is older, {} or {}?"),
    "company": (("founding_year",), "Which is older, {} or {}?"),
}


@dataclass(frozen=True)
class Question:
    """One question with its ground truth.

    Attributes:
        id: stable id, ``"<split>:<task type>:<path>:<topic ids>"``.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        task_type: ``"single_hop"``, ``"bridge"`` or ``"comparison"``.
        text: the question the agent sees.
        topics: ids of the entities the question names (two for a comparison).
        path: relations followed from each topic.
        answer: the short ground-truth answer.
        aliases: every accepted answer, `answer` first.
        gold_passages: ids of the passages stating the facts on the path, hop by hop (for a
            comparison, the first topic's then the second's).
        mentions: the names in the question with the kind of thing each names.
    """

    id: str
    split: str
    task_type: str
    text: str
    topics: tuple[int, ...]
    path: tuple[str, ...]
    answer: str
    aliases: tuple[str, ...]
    gold_passages: tuple[int, ...]
    mentions: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Difficulty:
    """A preset: the world's size and noise, and the mix of task types asked (weights)."""

    world: WorldParams
    hop_mix: Mapping[str, float]


DIFFICULTIES = {
    "easy": Difficulty(
        WorldParams(
            n_countries=4,
            n_cities=16,
            n_people=60,
            n_companies=24,
            n_works=24,
            n_distractors=12,
            fillers_per_entity=0,
        ),
        {"single_hop": 0.5, "bridge": 0.5},
    ),
    "standard": Difficulty(WorldParams(), {"single_hop": 0.4, "bridge": 0.4, "comparison": 0.2}),
    "hard": Difficulty(
        WorldParams(
            n_countries=20,
            n_cities=200,
            n_people=1500,
            n_companies=600,
            n_works=600,
            n_distractors=1500,
            fillers_per_entity=2,
        ),
        {"single_hop": 0.3, "bridge": 0.4, "comparison": 0.3},
    ),
}


def _topic_splits(world: World) -> dict[int, str]:
    """Entity id -> the split whose questions may name it."""
    rng = np.random.default_rng([world.params.seed, 3])
    split_of = {}
    for kind in ("person", "company", "city", "work"):
        ids = [entity.id for entity in world.of_kind(kind)]
        order = rng.permutation(len(ids))
        n_train = round(_SPLIT_FRACTIONS[0] * len(ids))
        n_valid = round(_SPLIT_FRACTIONS[1] * len(ids))
        for rank, index in enumerate(order):
            split_of[ids[index]] = (
                "train" if rank < n_train else "valid" if rank < n_train + n_valid else "test"
            )
    return split_of


def _follow(
    world: World, corpus: Corpus, topic: int, path: tuple[str, ...]
) -> tuple[int | str, list[int]]:
    """The value at the end of `path` from `topic`, and the gold passage of each hop."""
    value: int | str = topic
    gold = []
    for relation in path:
        gold.append(corpus.fact_passage[value, relation])
        value = world.facts[value, relation]
    return value, gold


def _question(
    world: World,
    corpus: Corpus,
    split: str,
    task_type: str,
    topics: tuple[int, ...],
    path: tuple[str, ...],
    template: str,
) -> Question:
    ends, gold = [], []
    for topic in topics:
        value, passages = _follow(world, corpus, topic, path)
        ends.append(value)
        gold.extend(passages)
    if task_type == "comparison":  # older = the smaller year
        winner = world.entities[topics[int(np.argmin([int(year) for year in ends]))]]
        answer, aliases = winner.name, (winner.name, *winner.aliases)
    elif isinstance(ends[0], int):
        entity = world.entities[ends[0]]
        answer, aliases = entity.name, (entity.name, *entity.aliases)
    else:
        answer, aliases = ends[0], (ends[0],)
    names = [world.entities[topic] for topic in topics]
    return Question(
        id=f"{split}:{task_type}:{'>'.join(path)}:{'-'.join(map(str, topics))}",
        split=split,
        task_type=task_type,
        text=template.format(*(entity.name for entity in names)),
        topics=topics,
        path=path,
        answer=answer,
        aliases=aliases,
        gold_passages=tuple(gold),
        mentions=tuple((entity.name, entity.kind) for entity in names),
    )


def _all_questions(
    world: World, corpus: Corpus, split: str, rng: np.random.Generator
) -> dict[str, list[Question]]:
    """Every question of `split`, by task type."""
    split_of = _topic_splits(world)
    by_type: dict[str, list[Question]] = {task_type: [] for task_type in TASK_TYPES}
    for entity in world.entities:
        if split_of.get(entity.id) != split:
            continue
        for task_type, table in (("single_hop", _SINGLE_HOP), ("bridge", _BRIDGE)):
            for path, template in table.get(entity.kind, ()):
                by_type[task_type].append(
                    _question(world, corpus, split, task_type, (entity.id,), path, template)
                )
    for kind, (path, template) in _COMPARISON.items():
        ids = [entity.id for entity in world.of_kind(kind) if split_of[entity.id] == split]
        pairs = set()
        for first in ids:  # each topic paired with one other of a different year
            for _ in range(20):
                second = ids[int(rng.integers(len(ids)))]
                if world.facts[second, path[0]] != world.facts[first, path[0]]:
                    pairs.add((first, second) if rng.random() < 0.5 else (second, first))
                    break
        for pair in sorted(pairs):
            by_type["comparison"].append(
                _question(world, corpus, split, "comparison", pair, path, template)
            )
    return by_type


def _check_mix(hop_mix: Mapping[str, float]) -> dict[str, float]:
    unknown = set(hop_mix) - set(TASK_TYPES)
    if unknown:
        raise ValueError(
            f"hop_mix has unknown task types {sorted(unknown)}; choose among {list(TASK_TYPES)}"
        )
    weights = {task_type: float(weight) for task_type, weight in hop_mix.items() if weight > 0}
    if not weights or any(weight < 0 for weight in hop_mix.values()):
        raise ValueError(
            f"hop_mix={dict(hop_mix)}; give non-negative weights, at least one positive"
        )
    return weights


@functools.lru_cache(maxsize=32)
def _generate(
    world: World, corpus: Corpus, split: str, mix: tuple[tuple[str, float], ...]
) -> tuple[Question, ...]:
    rng = np.random.default_rng([world.params.seed, 4, SPLITS.index(split)])
    by_type = _all_questions(world, corpus, split, rng)
    weights = dict(mix)
    total = sum(weights.values())
    # The largest question set with the asked proportions that the available questions allow.
    size = min(len(by_type[task_type]) * total / weight for task_type, weight in weights.items())
    chosen: list[Question] = []
    for task_type, weight in mix:
        pool = by_type[task_type]
        count = min(len(pool), round(size * weight / total))
        chosen.extend(
            pool[int(i)] for i in sorted(rng.choice(len(pool), size=count, replace=False))
        )
    return tuple(chosen[int(i)] for i in rng.permutation(len(chosen)))


def generate_questions(
    world: World, corpus: Corpus, split: str, hop_mix: Mapping[str, float]
) -> tuple[Question, ...]:
    """The questions of `split`, shuffled, with task types in the proportions of `hop_mix`
    (as many as the world allows). Pure: same arguments, same tuple."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}; choose one of {list(SPLITS)}")
    weights = _check_mix(hop_mix)
    questions = _generate(world, corpus, split, tuple(sorted(weights.items())))
    if not questions:
        raise ValueError(
            f"the world has no {split} questions of types {sorted(weights)}; make it larger"
        )
    return questions
