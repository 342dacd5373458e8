"""The text rendering: a world written out as short passages, the corpus the agent searches.

Each entity has one *fact passage* per group of facts (a person's birth, a company's founding,
its headquarters, a city's country, a work's authorship), titled with the entity's name as in
the Wikipedia dumps Search-R1 retrieves from, plus ``fillers_per_entity`` passages that state
nothing asked about; then ``n_distractors`` passages about look-alike names. Every fact passage
contains its relation's keyword (`KEYWORDS`): a query ``"<name> <keyword>"`` finds it, and no
filler contains a keyword. Every fact is stated in exactly one passage, its *gold* passage
(`Corpus.fact_passage`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from creditgym.envs.search.names import NameMaker
from creditgym.envs.search.world import World

__all__ = ["KEYWORDS", "RELATION_KEYWORD", "Corpus", "Passage", "write_corpus"]

#: The word every fact passage of a relation contains (the expert's query is "<name> <keyword>").
RELATION_KEYWORD = {
    "born_in": "born",
    "birth_year": "born",
    "founded_by": "founded",
    "founding_year": "founded",
    "headquartered_in": "headquartered",
    "in_country": "country",
    "author": "written",
    "publication_year": "written",
}
#: kind of a named thing -> keywords of the facts passages about it state
KEYWORDS = {
    "person": ("born",),
    "company": ("founded", "headquartered"),
    "city": ("country",),
    "work": ("written",),
    "country": (),
}

_OCCUPATIONS = (
    "cartographer",
    "glassblower",
    "botanist",
    "composer",
    "weaver",
    "bookbinder",
    "physician",
    "sculptor",
    "shipwright",
    "historian",
    "chemist",
    "painter",
    "surveyor",
    "navigator",
)
_PRODUCTS = (
    "lanterns",
    "clocks",
    "textiles",
    "telescopes",
    "pumps",
    "bicycles",
    "inks",
    "barometers",
    "ceramics",
    "rope",
    "compasses",
    "pianos",
)
_GENRES = (
    "novel",
    "collection of poems",
    "play",
    "memoir",
    "travelogue",
    "treatise",
    "short story cycle",
)
_LANDMARKS = (
    "stone bridges",
    "night markets",
    "clock towers",
    "salt flats",
    "river festivals",
    "old harbours",
    "glass domes",
    "orchards",
)

# Templates per passage group: `{name}` is the title entity; other fields as named. Fact
# templates must contain their keyword; fillers must contain none.
_TEMPLATES = {
    "birth": (
        "{name} was born in {city} in {year}. {short} later became a well-known {occupation}.",
        "{name}, a {occupation}, was born in the city of {city} in {year}.",
        "Born in {year} in {city}, {name} trained as a {occupation}.",
    ),
    "founding": (
        "{name} was founded in {year} by {founder}. The company makes {product}.",
        "In {year}, {founder} founded {name}, a maker of {product}.",
    ),
    "headquarters": (
        "{name} is headquartered in {city}, where most of its {product} are made.",
        "The makers of {product} at {name} are headquartered in {city}.",
    ),
    "location": (
        "{name} is a city in the country of {country}. It is known for its {landmark}.",
        "The city of {name} lies in the country of {country}, near its {landmark}.",
    ),
    "authorship": (
        "{name} is a {genre} written by {author} and published in {year}.",
        "Published in {year}, {name} is a {genre} written by {author}.",
    ),
    "country": (
        "{name} (officially the Republic of {name}) has many {landmark}; "
        "its largest city is {city}.",
    ),
    "filler_person": (
        "{name} spent many years in {city}, where {short} was admired as a {occupation}.",
        "Letters of {name} describe long journeys through {city} and a love of {landmark}.",
    ),
    "filler_company": (
        "{name} sells its {product} in {city} and has a small museum devoted to its history.",
        "Workers at {name} are proud of the {product} they make.",
    ),
    "filler_city": (
        "Visitors to {name} come for the {landmark} and for the {product} sold there.",
    ),
    "filler_work": ("Readers of {name} often mention its {landmark} and its quiet ending.",),
    "lookalike_person": (
        "{name} was born in {city} in {year} and worked as a {occupation}.",
        "{name}, a {occupation}, was born in {year} in the city of {city}.",
    ),
    "lookalike_company": ("{name} was founded in {year} by {founder} to make {product}.",),
}


@dataclass(frozen=True)
class Passage:
    """One retrievable passage.

    Attributes:
        id: index in `Corpus.passages` (and in the BM25 index).
        title: the entity or name the passage is about.
        text: the body (the title is not repeated in it).
        facts: the world's facts this passage states, ``(subject id, relation, object)``.
        mentions: every name in the passage with the kind of thing it names, title first.
        years: every year in the passage.
    """

    id: int
    title: str
    text: str
    facts: tuple[tuple[int, str, int | str], ...] = ()
    mentions: tuple[tuple[str, str], ...] = ()
    years: tuple[str, ...] = ()

    def indexed_text(self) -> str:
        return f"{self.title} {self.text}"


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per world
class Corpus:
    """The passages of a world and, per fact ``(subject id, relation)``, its gold passage id."""

    passages: tuple[Passage, ...]
    fact_passage: dict[tuple[int, str], int]


class _Writer:
    """Accumulates passages; one per `add` call, from a randomly chosen template."""

    def __init__(self, world: World, rng: np.random.Generator) -> None:
        self.world, self.rng = world, rng
        self.passages: list[Passage] = []
        self.fact_passage: dict[tuple[int, str], int] = {}
        self.pools = {kind: [entity.id for entity in world.of_kind(kind)] for kind in KEYWORDS}

    def choice(self, options: tuple[str, ...]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def add(
        self, group: str, title: str, kind: str, fields: dict[str, str], facts=(), others=()
    ) -> None:
        """Write one passage of `group` about `title`; `others` are the (name, kind) it mentions."""
        short = title.split()[-1] if kind == "person" else title
        text = self.choice(_TEMPLATES[group]).format(name=title, short=short, **fields)
        years = tuple(value for key, value in fields.items() if key == "year")
        mentions = (
            (title, kind),
            *((name, other) for name, other in others if _mentions_name(name, text)),
        )
        passage = Passage(len(self.passages), title, text, tuple(facts), mentions, years)
        self.passages.append(passage)
        for subject, relation, _ in facts:
            self.fact_passage[subject, relation] = passage.id

    def name(self, entity_id: int) -> str:
        return self.world.entities[entity_id].name

    def random_of(self, kind: str) -> int:
        pool = self.pools[kind]
        return pool[int(self.rng.integers(len(pool)))]


def _mentions_name(name: str, text: str) -> bool:
    """Whether `text` contains `name` as whole words (a template may leave a field out)."""
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


def _filler_fields(writer: _Writer) -> dict[str, str]:
    return {
        "city": writer.name(writer.random_of("city")),
        "occupation": writer.choice(_OCCUPATIONS),
        "product": writer.choice(_PRODUCTS),
        "landmark": writer.choice(_LANDMARKS),
        "genre": writer.choice(_GENRES),
    }


def _write_entity(writer: _Writer, entity_id: int) -> None:
    world, entity = writer.world, writer.world.entities[entity_id]
    facts, name, kind = world.facts, entity.name, entity.kind
    fields = _filler_fields(writer)
    if kind == "person":
        city = facts[entity_id, "born_in"]
        writer.add(
            "birth",
            name,
            kind,
            {**fields, "city": writer.name(city), "year": facts[entity_id, "birth_year"]},
            [
                (entity_id, "born_in", city),
                (entity_id, "birth_year", facts[entity_id, "birth_year"]),
            ],
            [(writer.name(city), "city")],
        )
    elif kind == "company":
        founder, city = facts[entity_id, "founded_by"], facts[entity_id, "headquartered_in"]
        year = facts[entity_id, "founding_year"]
        writer.add(
            "founding",
            name,
            kind,
            {**fields, "year": year, "founder": writer.name(founder)},
            [(entity_id, "founded_by", founder), (entity_id, "founding_year", year)],
            [(writer.name(founder), "person")],
        )
        writer.add(
            "headquarters",
            name,
            kind,
            {**fields, "city": writer.name(city)},
            [(entity_id, "headquartered_in", city)],
            [(writer.name(city), "city")],
        )
    elif kind == "city":
        country = facts[entity_id, "in_country"]
        writer.add(
            "location",
            name,
            kind,
            {**fields, "country": writer.name(country)},
            [(entity_id, "in_country", country)],
            [(writer.name(country), "country")],
        )
    elif kind == "work":
        author, year = facts[entity_id, "author"], facts[entity_id, "publication_year"]
        writer.add(
            "authorship",
            name,
            kind,
            {**fields, "author": writer.name(author), "year": year},
            [(entity_id, "author", author), (entity_id, "publication_year", year)],
            [(writer.name(author), "person")],
        )
    else:  # a country: no asked-about facts, one descriptive passage naming one of its cities
        cities = [city for city in writer.pools["city"] if facts[city, "in_country"] == entity_id]
        fields["city"] = writer.name(cities[int(writer.rng.integers(len(cities)))])
        writer.add("country", name, kind, fields, (), [(fields["city"], "city")])
        return
    for _ in range(world.params.fillers_per_entity):
        fields = _filler_fields(writer)
        writer.add(f"filler_{kind}", name, kind, fields, (), [(fields["city"], "city")])


def _write_distractors(writer: _Writer) -> None:
    """Passages about look-alike names: a person's or company's name with one part swapped."""
    world = writer.world
    names = NameMaker(np.random.default_rng([world.params.seed, 2]))
    names.used.update(word for entity in world.entities for word in entity.name.split())
    taken = {entity.name for entity in world.entities}
    targets = [entity for entity in world.entities if entity.kind in ("person", "company")]
    written = 0
    while written < world.params.n_distractors:
        target = targets[int(writer.rng.integers(len(targets)))]
        name = names.lookalike(target.name)
        if name in taken:
            continue
        taken.add(name)
        fields = {**_filler_fields(writer), "year": str(int(writer.rng.integers(1700, 2000)))}
        if target.kind == "person":
            writer.add("lookalike_person", name, "person", fields, (), [(fields["city"], "city")])
        else:
            founder = writer.name(writer.random_of("person"))
            writer.add(
                "lookalike_company",
                name,
                "company",
                {**fields, "founder": founder},
                (),
                [(founder, "person")],
            )
        written += 1


def write_corpus(world: World) -> Corpus:
    """The passages of `world` (pure: same world, same corpus), entity by entity, then the
    look-alike distractors, in that order."""
    writer = _Writer(world, np.random.default_rng([world.params.seed, 1]))
    for entity in world.entities:
        _write_entity(writer, entity.id)
    _write_distractors(writer)
    return Corpus(tuple(writer.passages), writer.fact_passage)
