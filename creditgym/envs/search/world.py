"""The knowledge world: invented entities, their attributes and the relations between them.

A world is a pure function of `WorldParams` (same parameters, same world, on every machine).
Entities are countries, cities, people, companies and written works; facts are
``(subject id, relation, object)`` triples where the object is another entity's id (an
``int``) or a year (a ``str`` such as ``"1843"``):

===================  ==========  ===================  =====================================
relation             subject     object               note
===================  ==========  ===================  =====================================
``in_country``       city        country
``born_in``          person      city
``birth_year``       person      year                 1700-1969
``founded_by``       company     person               a person founds at most one company
``founding_year``    company     year                 20-60 years after the founder's birth
``headquartered_in`` company     city
``author``           work        person
``publication_year`` work        year                 20-70 years after the author's birth
===================  ==========  ===================  =====================================

`corpus.py` writes the facts out as passages; `questions.py` asks about them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np

from creditgym.envs.search.names import COMPANY_SUFFIXES, WORK_NOUNS, NameMaker

__all__ = [
    "GENERATOR_VERSION",
    "KINDS",
    "RELATIONS",
    "Entity",
    "World",
    "WorldParams",
    "generate_world",
]

#: Bump when any draw of the world or corpus generator changes, so stale disk caches are not reused.
GENERATOR_VERSION = 1

KINDS = ("country", "city", "person", "company", "work")
#: relation -> (subject kind, object kind or "year")
RELATIONS = {
    "in_country": ("city", "country"),
    "born_in": ("person", "city"),
    "birth_year": ("person", "year"),
    "founded_by": ("company", "person"),
    "founding_year": ("company", "year"),
    "headquartered_in": ("company", "city"),
    "author": ("work", "person"),
    "publication_year": ("work", "year"),
}

Fact = tuple[int, str, "int | str"]


@dataclass(frozen=True)
class WorldParams:
    """Size and noise of a generated world; together with `GENERATOR_VERSION` they fix it.

    Args:
        n_countries: countries (each city lies in one).
        n_cities: cities (birthplaces and headquarters).
        n_people: people; the first ``n_companies`` of them found one company each.
        n_companies: companies (at most ``n_people``).
        n_works: written works, each by a random person.
        n_distractors: extra passages about look-alike names (a real person's first name or
            surname with a new other half, a real company's stem with another suffix), stating
            a birthplace/year or a founding that belongs to no real entity.
        fillers_per_entity: passages per entity that state no fact asked about (careers,
            products, landmarks), so a bare name search also returns passages without the answer.
        seed: seed of every draw.
    """

    n_countries: int = 10
    n_cities: int = 60
    n_people: int = 300
    n_companies: int = 120
    n_works: int = 120
    n_distractors: int = 150
    fillers_per_entity: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_countries", "n_cities", "n_people"):
            if getattr(self, name) < 2:
                raise ValueError(
                    f"WorldParams.{name}={getattr(self, name)}; a world needs at least 2"
                )
        if self.n_cities < self.n_countries:
            raise ValueError(
                f"WorldParams.n_cities={self.n_cities} < n_countries={self.n_countries}; "
                "every country needs a city, so give at least as many cities as countries"
            )
        if not 0 <= self.n_companies <= self.n_people:
            raise ValueError(
                f"WorldParams.n_companies={self.n_companies}; it must be between 0 and "
                f"n_people={self.n_people} because each company has its own founder"
            )
        if self.n_works < 0 or self.n_distractors < 0 or self.fillers_per_entity < 0:
            raise ValueError(
                "WorldParams.n_works, n_distractors and fillers_per_entity must be >= 0"
            )

    def key(self) -> str:
        """Cache key: these parameters and the generator version."""
        text = repr((GENERATOR_VERSION, sorted(asdict(self).items())))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Entity:
    """One thing in the world. `aliases` are other accepted spellings of its name."""

    id: int
    kind: str
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per parameters
class World:
    """Entities (indexed by id) and facts (``(subject id, relation) -> object``)."""

    params: WorldParams
    entities: tuple[Entity, ...]
    facts: dict[tuple[int, str], int | str]

    def of_kind(self, kind: str) -> list[Entity]:
        return [entity for entity in self.entities if entity.kind == kind]

    def value_text(self, value: int | str) -> str:
        """How a fact's object is written: an entity's name, or the year itself."""
        return self.entities[value].name if isinstance(value, int) else value


def generate_world(params: WorldParams) -> World:
    """Draw the world of `params` (pure: same parameters, same world)."""
    rng = np.random.default_rng([params.seed, 0])
    names = NameMaker(rng)
    entities: list[Entity] = []
    facts: dict[tuple[int, str], int | str] = {}

    def add(kind: str, name: str, aliases: tuple[str, ...] = ()) -> int:
        entities.append(Entity(len(entities), kind, name, aliases))
        return len(entities) - 1

    def pick(ids: list[int]) -> int:
        return ids[int(rng.integers(len(ids)))]

    countries = [
        add("country", name, (f"Republic of {name}",))
        for name in (names.word(2, 3) + "ia" for _ in range(params.n_countries))
    ]
    cities = [add("city", names.word(2, 3)) for _ in range(params.n_cities)]
    for rank, city in enumerate(cities):  # every country gets a city before any gets a second
        facts[city, "in_country"] = countries[rank] if rank < len(countries) else pick(countries)

    people = [add("person", names.person()) for _ in range(params.n_people)]
    for person in people:
        facts[person, "born_in"] = pick(cities)
        facts[person, "birth_year"] = str(int(rng.integers(1700, 1970)))

    founders = rng.permutation(people)[: params.n_companies]
    for founder in founders:
        stem = names.company_stem()
        suffix = COMPANY_SUFFIXES[int(rng.integers(len(COMPANY_SUFFIXES)))]
        company = add("company", f"{stem} {suffix}", (stem,))
        facts[company, "founded_by"] = int(founder)
        facts[company, "founding_year"] = str(
            int(facts[int(founder), "birth_year"]) + int(rng.integers(20, 61))
        )
        facts[company, "headquartered_in"] = pick(cities)

    for _ in range(params.n_works):
        author = pick(people)
        noun = WORK_NOUNS[int(rng.integers(len(WORK_NOUNS)))]
        work = add("work", f"The {names.word(2, 3)} {noun}")
        facts[work, "author"] = author
        facts[work, "publication_year"] = str(
            int(facts[author, "birth_year"]) + int(rng.integers(20, 71))
        )

    return World(params, tuple(entities), facts)
