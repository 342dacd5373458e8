"""The expert: searches each hop of the question's true structure, reads the retrieved
passages, and answers from what they say.

It knows the question's topics and path (which facts to look up, in which order) but not the
facts themselves: it learns a fact only from a retrieved passage that states it, so it needs
the search to work. For the next unknown fact ``(entity, relation)`` it searches
``"<entity name> <relation keyword>"`` (``search[Talor Venmik born]``); if that query was already
made without finding the fact, the bare name; if both fail it answers ``unknown``. Its actions
are always among the env's admissible actions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from creditgym.envs.search.corpus import RELATION_KEYWORD, Passage
from creditgym.envs.search.questions import Question
from creditgym.envs.search.world import World

__all__ = ["UNKNOWN", "expert_action", "expert_queries"]

UNKNOWN = "unknown"


def expert_queries(world: World, entity: int, relation: str) -> tuple[str, str]:
    """The queries the expert tries for fact ``(entity, relation)``, in order."""
    name = world.entities[entity].name
    return f"{name} {RELATION_KEYWORD[relation]}", name


def expert_action(
    world: World, question: Question, retrieved: Iterable[Passage], searched: Collection[str]
) -> str:
    """The expert's next action, given the passages retrieved so far and the queries made."""
    known = {
        (subject, relation): value
        for passage in retrieved
        for subject, relation, value in passage.facts
    }
    ends = []
    for topic in question.topics:
        value: int | str = topic
        for relation in question.path:
            if (value, relation) not in known:
                untried = [
                    query
                    for query in expert_queries(world, value, relation)
                    if query not in searched
                ]
                return f"search[{untried[0]}]" if untried else f"answer[{UNKNOWN}]"
            value = known[value, relation]
        ends.append(value)
    if question.task_type == "comparison":  # older = the smaller year
        return f"answer[{world.entities[question.topics[ends.index(min(ends, key=int))]].name}]"
    return f"answer[{world.value_text(ends[0])}]"
