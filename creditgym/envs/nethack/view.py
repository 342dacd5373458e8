"""What the agent sees of a NetHack level: NLE's arrays decoded into a `Frame`, and its text.

A `Frame` holds the map as the agent knows it (NLE's ``chars`` and ``glyphs``, 21 x 79), its
position, the game message and the inventory. `render` turns a frame into the observation:
the message, the known part of the map as ASCII lines, a sentence per kind of nearby thing
with its direction and distance, and the inventory.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Frame",
    "GlyphTables",
    "cell_kind",
    "cell_name",
    "decode",
    "direction_phrase",
    "glyph_tables",
    "printable",
    "render",
]

# NetHack's map symbols (``defsym.h``), by cmap index = glyph - GLYPH_CMAP_OFF.
STONE = 0
WALLS = frozenset(range(1, 12)) | {17, 18}  # walls, iron bars, trees
DOORWAY, OPEN_DOORS, CLOSED_DOORS = 12, frozenset({13, 14}), frozenset({15, 16})
STAIRS_DOWN = frozenset({24, 26})
WATER, LAVA = frozenset({32, 41}), 34
#: Cells whose kind does not make a "you see" sentence: floor, corridor, walls, unexplored.
_SCENERY = frozenset({STONE, 19, 20, 21, 22}) | WALLS

# Cell kinds the expert plans over.
UNKNOWN, WALL, FLOOR, DOOR, CLOSED_DOOR, WATER_CELL, LAVA_CELL = range(7)


@dataclass(frozen=True)
class Frame:
    """One observation. ``chars``/``glyphs`` are (21, 79); ``(x, y)`` is the agent's cell."""

    chars: np.ndarray
    glyphs: np.ndarray
    x: int
    y: int
    time: int
    hp: int
    max_hp: int
    message: str
    inventory: tuple[tuple[str, str], ...]  # (letter, description)

    def has(self, word: str) -> bool:
        """Whether an inventory item's description contains `word`."""
        return any(word in text for _, text in self.inventory)


_PRINTABLE = frozenset(string.printable) - frozenset("\r\x0b\x0c")


def printable(text: str, limit: int | None = None) -> str:
    """`text` with anything outside printable ASCII dropped, cut to `limit` characters."""
    kept = "".join(ch for ch in text if ch in _PRINTABLE)
    return kept if limit is None else kept[:limit]


def _text(array: np.ndarray) -> str:
    raw = bytes(array)
    return (
        raw[: raw.find(b"\0")].decode("ascii", "replace")
        if 0 in raw
        else raw.decode("ascii", "replace")
    )


def decode(observation: dict[str, np.ndarray]) -> Frame:
    """A `Frame` from an NLE observation with chars, glyphs, blstats, message and inventory."""
    from nle import nethack

    blstats = observation["blstats"]
    inventory = tuple(
        (chr(letter), _text(text))
        for letter, text in zip(observation["inv_letters"], observation["inv_strs"])
        if letter
    )
    return Frame(
        chars=observation["chars"].copy(),
        glyphs=observation["glyphs"].copy(),
        x=int(blstats[nethack.NLE_BL_X]),
        y=int(blstats[nethack.NLE_BL_Y]),
        time=int(blstats[nethack.NLE_BL_TIME]),
        hp=int(blstats[nethack.NLE_BL_HP]),
        max_hp=int(blstats[nethack.NLE_BL_HPMAX]),
        message=" ".join(_text(observation["message"]).split()),
        inventory=inventory,
    )


def _cmap(glyph: int) -> int | None:
    from nle import nethack

    return int(glyph) - nethack.GLYPH_CMAP_OFF if nethack.glyph_is_cmap(int(glyph)) else None


def cell_kind(glyph: int) -> int:
    """The planning kind of a cell (`UNKNOWN`, `WALL`, `FLOOR`, ...) from its glyph.

    Objects, monsters and the agent stand on floor as far as walking goes; boulders are
    objects too and are tracked separately by the expert.
    """
    cmap = _cmap(glyph)
    if cmap is None:
        return FLOOR
    if cmap == STONE:
        return UNKNOWN
    if cmap in WALLS:
        return WALL
    if cmap in CLOSED_DOORS:
        return CLOSED_DOOR
    if cmap == DOORWAY or cmap in OPEN_DOORS:
        return DOOR
    if cmap in WATER:
        return WATER_CELL
    if cmap == LAVA:
        return LAVA_CELL
    return FLOOR


def cell_name(glyph: int) -> str | None:
    """What a cell shows, in words (``"staircase down"``, ``"skeleton key"``, ``"boulder"``),
    or None for scenery (floor, corridor, wall, unexplored)."""
    from nle import nethack

    glyph = int(glyph)
    cmap = _cmap(glyph)
    if cmap is not None:
        return None if cmap in _SCENERY else nethack.symdef.from_idx(cmap).explanation
    if nethack.glyph_is_object(glyph):
        return nethack.objdescr.from_idx(nethack.glyph_to_obj(glyph)).oc_name
    if nethack.glyph_is_monster(glyph):
        return nethack.permonst(nethack.glyph_to_mon(glyph)).mname
    return None


@dataclass(frozen=True)
class GlyphTables:
    """Per-glyph lookup arrays (index: glyph id), so a whole map is classified in one step."""

    kind: np.ndarray  # (MAX_GLYPH,) int8: `cell_kind`
    boulder: np.ndarray  # (MAX_GLYPH,) bool
    key: np.ndarray  # (MAX_GLYPH,) bool: an object whose name has "key" in it
    stairs_down: np.ndarray  # (MAX_GLYPH,) bool
    terrain: np.ndarray  # (MAX_GLYPH,) bool: the glyph shows the terrain itself (a cmap symbol)


_TABLES: GlyphTables | None = None


def glyph_tables() -> GlyphTables:
    """The lookup arrays, built once per process (about 20 ms)."""
    global _TABLES
    if _TABLES is None:
        from nle import nethack

        glyphs = range(nethack.MAX_GLYPH)
        names = [cell_name(glyph) or "" for glyph in glyphs]
        _TABLES = GlyphTables(
            kind=np.array([cell_kind(glyph) for glyph in glyphs], dtype=np.int8),
            boulder=np.array(
                [nethack.glyph_is_object(g) and names[g] == "boulder" for g in glyphs]
            ),
            key=np.array([nethack.glyph_is_object(g) and "key" in names[g] for g in glyphs]),
            stairs_down=np.array([_cmap(g) in STAIRS_DOWN for g in glyphs]),
            terrain=np.array([nethack.glyph_is_cmap(g) for g in glyphs]),
        )
    return _TABLES


def direction_phrase(dx: int, dy: int) -> str:
    """``(2, -1)`` -> ``"2 east, 1 north"``; ``(0, 0)`` -> ``"here"``."""
    parts = []
    if dy:
        parts.append(f"{abs(dy)} {'south' if dy > 0 else 'north'}")
    if dx:
        parts.append(f"{abs(dx)} {'east' if dx > 0 else 'west'}")
    return ", ".join(parts) or "here"


def nearby(frame: Frame, per_kind: int = 3) -> list[str]:
    """One phrase per kind of thing on the known map, nearest first, e.g.
    ``"staircase down: 3 south, 2 east"`` or ``"water: 4 east (+6 more)"``."""
    found: dict[str, list[tuple[int, int, int]]] = {}
    ys, xs = np.nonzero(frame.chars != ord(" "))
    for y, x in zip(ys.tolist(), xs.tolist()):
        if (x, y) == (frame.x, frame.y):
            continue
        name = cell_name(frame.glyphs[y, x])
        if name:
            found.setdefault(name, []).append((max(abs(x - frame.x), abs(y - frame.y)), x, y))
    phrases = []
    for name, cells in sorted(found.items(), key=lambda item: min(item[1])):
        cells.sort()
        where = "; ".join(
            direction_phrase(x - frame.x, y - frame.y) for _, x, y in cells[:per_kind]
        )
        more = f" (+{len(cells) - per_kind} more)" if len(cells) > per_kind else ""
        phrases.append(f"{name}: {where}{more}")
    return phrases


def map_lines(frame: Frame) -> list[str]:
    """The known part of the map: rows of NLE's ``chars`` cut to their bounding box."""
    ys, xs = np.nonzero(frame.chars != ord(" "))
    if len(ys) == 0:
        return ["@"]
    rows = frame.chars[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return [bytes(row).decode("latin-1").rstrip() for row in rows]


def render(frame: Frame, prefix: str = "") -> str:
    """The observation text of a frame; `prefix` (the env's own remark) goes first."""
    things = nearby(frame)
    inventory = "; ".join(f"{letter}) {text}" for letter, text in frame.inventory) or "nothing"
    parts = [
        prefix,
        f"Message: {frame.message}" if frame.message else "",
        "Map (@ is you, > the staircase down):\n" + "\n".join(map_lines(frame)),
        "You see: " + ("; ".join(things) if things else "nothing of note") + ".",
        f"HP {frame.hp}/{frame.max_hp}. Inventory: {inventory}.",
    ]
    return "\n\n".join(part for part in parts if part)
