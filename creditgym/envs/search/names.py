"""Invented names built from syllables, so no real-world knowledge helps answer a question.

Every invented word is used once in a world (one `NameMaker` per world), so a name's tokens
point at one entity; look-alike names are made on purpose by reusing one token of a real name
(`NameMaker.lookalike`), never by accident.
"""

from __future__ import annotations

import numpy as np

__all__ = ["COMPANY_SUFFIXES", "WORK_NOUNS", "NameMaker"]

_ONSETS = (
    "b",
    "br",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "k",
    "kr",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "r",
    "s",
    "st",
    "t",
    "tr",
    "v",
    "z",
    "sh",
    "th",
    "qu",
    "j",
)
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou", "ar", "or", "en", "il")
_CODAS = ("", "", "", "n", "r", "l", "s", "m", "k", "th", "x", "nd", "st", "v")

#: Words that must never be invented: the passage templates' own words and BM25 stop words
#: (an entity called "Born" or "Than" would make keyword queries ambiguous).
_RESERVED = frozenset(
    "a an and are as at be born by city country for founded from headquartered in is it its "
    "of on or than that the this to was were where which who with written year".split()
)

#: The second word of a company name (shared by many companies, so it carries little weight).
COMPANY_SUFFIXES = (
    "Industries",
    "Holdings",
    "Labs",
    "Works",
    "Group",
    "Trading",
    "Foundry",
    "Systems",
)
#: The last word of a work's title ("The Orvel Tides").
WORK_NOUNS = (
    "Tides",
    "Lantern",
    "Garden",
    "Chronicle",
    "Winter",
    "Harbour",
    "Letters",
    "Mirror",
    "Orchard",
    "Crossing",
    "Song",
    "Archive",
    "Bridge",
    "Meadow",
    "Voyage",
    "Silence",
)


class NameMaker:
    """Draws fresh invented words from a seeded generator and remembers every word used."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def word(self, min_syllables: int = 2, max_syllables: int = 3) -> str:
        """A capitalised invented word no one in this world has used yet."""
        while True:
            syllables = int(self.rng.integers(min_syllables, max_syllables + 1))
            parts = [
                _ONSETS[self.rng.integers(len(_ONSETS))] + _VOWELS[self.rng.integers(len(_VOWELS))]
                for _ in range(syllables)
            ]
            word = ("".join(parts) + _CODAS[self.rng.integers(len(_CODAS))]).capitalize()
            if word.lower() not in _RESERVED and word not in self.used and len(word) <= 12:
                self.used.add(word)
                return word

    def person(self) -> str:
        return f"{self.word(2, 2)} {self.word(2, 3)}"

    def company_stem(self) -> str:
        return self.word(2, 3)

    def lookalike(self, name: str) -> str:
        """A new name sharing one invented word with `name` ("Talor Venmik" -> "Talor Brisemo"
        or "Quorvex Industries" -> "Quorvex Holdings"), the rest fresh."""
        words = name.split()
        if words[-1] in COMPANY_SUFFIXES:
            others = [s for s in COMPANY_SUFFIXES if s != words[-1]]
            return f"{' '.join(words[:-1])} {others[self.rng.integers(len(others))]}"
        keep = int(self.rng.integers(len(words)))
        return " ".join(word if i == keep else self.word(2, 3) for i, word in enumerate(words))
