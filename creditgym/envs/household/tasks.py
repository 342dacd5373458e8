"""The seeded task and household generator: which goals exist, which houses, which split.

`generate_task(seed, split, config)` is a pure function: the same arguments always give the
same `HouseholdTask`. It draws a goal (task type, object type, receptacle type) that makes sense in
ALFWorld (only heatable things are heated, food sits in fridges and on countertops, books on
shelves and desks, ...), a room that holds it, the receptacles of that room, the objects that
the task needs and some distractors.

Splits, like ALFWorld's, with one more guarantee:

* ``train`` and ``valid_seen`` draw from the same pool of layouts and goals (different seeds).
* ``valid_unseen`` draws only layouts AND goal (object type, receptacle type) pairs that
  ``train`` never uses: about a fifth of each is held out by a stable hash (`is_unseen_layout`,
  `is_unseen_pair`), so no amount of training seeds leaks them.
"""

from __future__ import annotations

import functools
import random
import zlib
from dataclasses import dataclass, field

from creditgym.envs.household.world import CLEAN, COLD, HOT, LAMP, LAMP_STANDS, Goal, Layout

__all__ = [
    "SPLITS",
    "TASK_TYPES",
    "HouseholdTask",
    "TaskConfig",
    "generate_task",
    "goal_pairs",
    "is_unseen_layout",
    "is_unseen_pair",
]

#: ALFWorld's six task families (ALFWorld calls them pick_and_place_simple,
#: pick_two_obj_and_place, pick_{clean,heat,cool}_then_place_in_recep, look_at_obj_in_light).
TASK_TYPES = (
    "pick_and_place",
    "pick_two_and_place",
    "pick_clean_then_place",
    "pick_heat_then_place",
    "pick_cool_then_place",
    "look_at_obj_in_light",
)
SPLITS = ("train", "valid_seen", "valid_unseen")

#: How many of each receptacle kind a room may hold (kinds not listed: one at most).
MAX_COUNT = {
    "cabinet": 8,
    "drawer": 6,
    "shelf": 5,
    "countertop": 3,
    "stoveburner": 4,
    "sidetable": 2,
    "desk": 2,
    "armchair": 2,
    "sinkbasin": 2,
}
ROOMS = {
    "kitchen": (
        "cabinet",
        "coffeemachine",
        "countertop",
        "diningtable",
        "drawer",
        "fridge",
        "garbagecan",
        "microwave",
        "shelf",
        "sinkbasin",
        "stoveburner",
        "toaster",
    ),
    "bedroom": (
        "armchair",
        "bed",
        "desk",
        "drawer",
        "dresser",
        "garbagecan",
        "safe",
        "shelf",
        "sidetable",
    ),
    "livingroom": (
        "armchair",
        "cabinet",
        "coffeetable",
        "diningtable",
        "drawer",
        "garbagecan",
        "safe",
        "shelf",
        "sidetable",
        "sofa",
        "tvstand",
    ),
}
#: Where each object type plausibly starts (and may be asked to go).
PLACES = {
    "apple": ("countertop", "diningtable", "fridge", "garbagecan"),
    "bread": ("countertop", "diningtable", "fridge"),
    "egg": ("countertop", "diningtable", "fridge", "garbagecan"),
    "lettuce": ("countertop", "diningtable", "fridge"),
    "potato": ("countertop", "diningtable", "fridge", "garbagecan"),
    "tomato": ("countertop", "diningtable", "fridge", "garbagecan"),
    "bowl": ("cabinet", "countertop", "diningtable", "fridge", "shelf"),
    "cup": ("cabinet", "countertop", "diningtable", "fridge", "sinkbasin"),
    "mug": ("cabinet", "coffeemachine", "countertop", "diningtable", "shelf", "sinkbasin"),
    "plate": ("cabinet", "countertop", "diningtable", "fridge", "shelf"),
    "pan": ("cabinet", "countertop", "stoveburner"),
    "pot": ("cabinet", "countertop", "stoveburner"),
    "knife": ("countertop", "diningtable", "drawer"),
    "spoon": ("countertop", "diningtable", "drawer", "sinkbasin"),
    "fork": ("countertop", "diningtable", "drawer"),
    "book": ("bed", "desk", "diningtable", "shelf", "sidetable", "sofa"),
    "cellphone": ("bed", "desk", "dresser", "drawer", "sidetable", "sofa"),
    "keychain": ("drawer", "dresser", "safe", "shelf", "sidetable", "sofa"),
    "pen": ("desk", "drawer", "dresser", "shelf", "sidetable"),
    "pencil": ("desk", "drawer", "shelf", "sidetable"),
    "cd": ("desk", "drawer", "garbagecan", "safe", "shelf", "sidetable"),
    "creditcard": ("countertop", "desk", "drawer", "dresser", "shelf", "sidetable"),
    "alarmclock": ("desk", "dresser", "shelf", "sidetable"),
    "vase": ("cabinet", "coffeetable", "diningtable", "shelf", "sidetable"),
    "remotecontrol": ("armchair", "coffeetable", "sidetable", "sofa", "tvstand"),
    "pillow": ("armchair", "bed", "sofa"),
    "laptop": ("bed", "desk", "diningtable", "sofa"),
    "newspaper": ("coffeetable", "diningtable", "sidetable", "sofa"),
    "watch": ("drawer", "dresser", "safe", "sidetable"),
}
CLEANABLE = (
    "apple",
    "bowl",
    "cup",
    "egg",
    "fork",
    "knife",
    "lettuce",
    "mug",
    "pan",
    "plate",
    "pot",
    "potato",
    "spoon",
    "tomato",
)
HEATABLE = ("apple", "bread", "cup", "egg", "mug", "plate", "potato", "tomato")
#: Anything cleanable but cutlery, and bread.
COOLABLE = tuple(sorted({*CLEANABLE} - {"fork", "knife", "spoon"} | {"bread"}))
LIGHT_OBJECTS = (
    "alarmclock",
    "book",
    "bowl",
    "cd",
    "cellphone",
    "creditcard",
    "keychain",
    "laptop",
    "mug",
    "newspaper",
    "pen",
    "pencil",
    "pillow",
    "remotecontrol",
    "vase",
    "watch",
)

#: task type -> (tool receptacle, condition, object types, receptacle types never asked for)
_TASK_TYPE_RULES = {
    "pick_and_place": (None, 0, tuple(PLACES), ()),
    "pick_two_and_place": (None, 0, tuple(PLACES), ()),
    "pick_clean_then_place": ("sinkbasin", CLEAN, CLEANABLE, ("sinkbasin", "garbagecan")),
    "pick_heat_then_place": ("microwave", HOT, HEATABLE, ("microwave", "garbagecan", "sinkbasin")),
    "pick_cool_then_place": ("fridge", COLD, COOLABLE, ("fridge", "garbagecan", "sinkbasin")),
    "look_at_obj_in_light": (None, 0, LIGHT_OBJECTS, ()),
}
_TEMPLATES = {
    "pick_and_place": ("put a {o} in {r}.", "put some {o} on {r}."),
    "pick_two_and_place": ("put two {o} in {r}.", "find two {o} and put them in {r}."),
    "pick_clean_then_place": ("put a clean {o} in {r}.", "clean some {o} and put it in {r}."),
    "pick_heat_then_place": ("put a hot {o} in {r}.", "heat some {o} and put it in {r}."),
    "pick_cool_then_place": ("put a cool {o} in {r}.", "cool some {o} and put it in {r}."),
    "look_at_obj_in_light": ("look at {o} under the {r}.", "examine the {o} with the {r}."),
}


def _stable_bucket(text: str) -> int:
    """A hash that, unlike `hash(str)`, is the same in every Python process."""
    return zlib.crc32(text.encode()) % 5


def is_unseen_pair(object_type: str, receptacle_type: str) -> bool:
    """Whether the goal pair (``"apple"``, ``"fridge"``) is held out for ``valid_unseen``, for
    every task type."""
    return _stable_bucket(f"{object_type}|{receptacle_type}") == 0


def is_unseen_layout(signature: tuple) -> bool:
    """Whether a layout (its room and receptacle counts, see
    `HouseholdTask.layout_signature`) is held out."""
    return _stable_bucket(repr(signature)) == 0


@dataclass(frozen=True)
class TaskConfig:
    """The generator's difficulty knobs (ranges are inclusive ``(low, high)``).

    Attributes:
        receptacles: how many receptacles a house has (fewer if its room has no more kinds).
        distractors: how many objects unrelated to the task are scattered around.
        task_types: the task types to draw from.
        closed: whether openable receptacles (cabinet, drawer, fridge, microwave, safe) start
            closed.
    """

    receptacles: tuple[int, int] = (15, 25)
    distractors: tuple[int, int] = (10, 20)
    task_types: tuple[str, ...] = TASK_TYPES
    closed: bool = True

    def tag(self) -> str:
        """A short name of the knobs, part of every task id."""
        kinds = "".join(str(TASK_TYPES.index(t)) for t in self.task_types)
        return (
            f"r{self.receptacles[0]}-{self.receptacles[1]}d{self.distractors[0]}-{self.distractors[1]}"
            f"t{kinds}{'c' if self.closed else 'o'}"
        )


@dataclass(frozen=True)
class HouseholdTask:
    """One generated task: the instruction, what success means, and the house it happens in."""

    task_id: str
    split: str
    room: str
    instruction: str
    goal: Goal
    layout: Layout
    layout_signature: tuple = field(default=(), compare=False)

    @property
    def task_type(self) -> str:
        return self.goal.task_type


@functools.cache
def goal_pairs(task_type: str) -> tuple[tuple[str, str], ...]:
    """Every (object type, receptacle type) goal of `task_type` that some room can host."""
    _, _, object_types, never = _TASK_TYPE_RULES[task_type]
    pairs = []
    for obj in object_types:
        targets = (
            (LAMP,)
            if task_type == "look_at_obj_in_light"
            else [r for r in PLACES[obj] if r not in never]
        )
        for rec in targets:
            if _rooms_for(task_type, obj, rec):
                pairs.append((obj, rec))
    return tuple(pairs)


@functools.cache
def _split_pairs(task_type: str, unseen: bool) -> tuple[tuple[str, str], ...]:
    return tuple(pair for pair in goal_pairs(task_type) if is_unseen_pair(*pair) == unseen)


@functools.cache
def _rooms_for(task_type: str, obj: str, rec: str) -> tuple[str, ...]:
    tool = _TASK_TYPE_RULES[task_type][0]
    rooms = []
    for room, kinds in ROOMS.items():
        needs = [tool] if tool else []
        if rec != LAMP:
            needs.append(rec)
        elif not set(LAMP_STANDS) & set(kinds):
            continue
        starts = [s for s in PLACES[obj] if s in kinds and s != rec]
        if starts and all(n in kinds for n in needs):
            rooms.append(room)
    return tuple(rooms)


def _validate(split: str, config: TaskConfig, task_type: str | None) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    unknown = [t for t in config.task_types if t not in TASK_TYPES]
    if unknown or not config.task_types:
        raise ValueError(
            f"unknown task types {unknown or '(none given)'}; choose from {list(TASK_TYPES)}"
        )
    if task_type is not None and task_type not in TASK_TYPES:
        raise ValueError(f"unknown task_type {task_type!r}; choose from {list(TASK_TYPES)}")
    for name, (low, high) in (
        ("receptacles", config.receptacles),
        ("distractors", config.distractors),
    ):
        if not 0 <= low <= high:
            raise ValueError(
                f"{name}=({low}, {high}) is not a range; give (low, high) with 0 <= low <= high"
            )
    if config.receptacles[1] < 3:
        raise ValueError(
            f"receptacles={config.receptacles} is too few; "
            "a task needs up to 3 (start, tool, target)"
        )


def generate_task(
    seed: int, split: str = "train", config: TaskConfig = TaskConfig(), task_type: str | None = None
) -> HouseholdTask:
    """The task numbered `seed` of `split` (deterministic).

    Args:
        seed: any integer; task ``seed`` of each split is fixed forever.
        split: ``"train"``, ``"valid_seen"`` or ``"valid_unseen"``.
        config: the difficulty knobs.
        task_type: force this task type (else drawn from ``config.task_types``).
    """
    _validate(split, config, task_type)
    rng = random.Random(f"household:{split}:{seed}:{task_type}:{config.tag()}")
    task_type = task_type or rng.choice(config.task_types)
    unseen = split == "valid_unseen"
    pairs = _split_pairs(task_type, unseen)
    for _ in range(1000):
        obj_type, rec_type = rng.choice(pairs)
        room = rng.choice(_rooms_for(task_type, obj_type, rec_type))
        drawn = _receptacle_counts(rng, task_type, obj_type, rec_type, room, config)
        if drawn is None:
            continue
        counts, start_kind, stand_kind = drawn
        signature = (room, tuple(sorted(counts.items())))
        if is_unseen_layout(signature) == unseen:
            break
    else:
        raise RuntimeError(
            f"could not draw a {split} {task_type} house with receptacles={config.receptacles}; "
            "allow more receptacles"
        )
    layout = _furnish(rng, task_type, obj_type, rec_type, counts, start_kind, stand_kind, config)
    _, condition, _, _ = _TASK_TYPE_RULES[task_type]
    goal = Goal(
        task_type,
        obj_type,
        rec_type,
        count=2 if task_type == "pick_two_and_place" else 1,
        condition=condition,
    )
    instruction = rng.choice(_TEMPLATES[task_type]).format(o=obj_type, r=rec_type)
    return HouseholdTask(
        f"{split}:{seed}:{task_type}:{config.tag()}",
        split,
        room,
        instruction,
        goal,
        layout,
        signature,
    )


def _receptacle_counts(
    rng: random.Random, task_type: str, obj_type: str, rec_type: str, room: str, config: TaskConfig
) -> tuple[dict[str, int], str, str | None] | None:
    """How many receptacles of each kind the house has (the kinds the task needs come first),
    the kind the first target object starts on, and the kind the desklamp stands on (light
    tasks)."""
    kinds = ROOMS[room]
    tool = _TASK_TYPE_RULES[task_type][0]
    start = rng.choice([s for s in PLACES[obj_type] if s in kinds and s != rec_type])
    stand = rng.choice([s for s in LAMP_STANDS if s in kinds]) if rec_type == LAMP else None
    counts = {
        kind: 1
        for kind in (start, tool, stand if rec_type == LAMP else rec_type)
        if kind is not None
    }
    if len(counts) > config.receptacles[1]:
        return None
    have = len(counts)
    total = rng.randint(max(config.receptacles[0], have), config.receptacles[1])
    room_left = [k for k in kinds if counts.get(k, 0) < MAX_COUNT.get(k, 1)]
    for _ in range(total - have):
        if not room_left:
            break
        kind = rng.choice(room_left)
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] == MAX_COUNT.get(kind, 1):
            room_left.remove(kind)
    return counts, start, stand


def _furnish(
    rng: random.Random,
    task_type: str,
    obj_type: str,
    rec_type: str,
    counts: dict[str, int],
    start_kind: str,
    stand_kind: str | None,
    config: TaskConfig,
) -> Layout:
    """Number the receptacles and place the task's objects, the lamp and the distractors."""
    receptacles = [f"{kind} {n}" for kind in sorted(counts) for n in range(1, counts[kind] + 1)]
    by_kind: dict[str, list[int]] = {}
    for index, name in enumerate(receptacles):
        by_kind.setdefault(name.rsplit(" ", 1)[0], []).append(index)

    placed: list[tuple[str, int]] = []  # (object type, receptacle index)
    n_targets = (2 if task_type == "pick_two_and_place" else 1) + rng.randint(0, 1)
    target_spots = [
        r for kind in PLACES[obj_type] if kind != rec_type for r in by_kind.get(kind, [])
    ]
    placed.append((obj_type, rng.choice(by_kind[start_kind])))
    placed += [(obj_type, rng.choice(target_spots)) for _ in range(n_targets - 1)]

    stands = [r for kind in LAMP_STANDS for r in by_kind.get(kind, [])]
    if stand_kind:
        placed.append((LAMP, rng.choice(by_kind[stand_kind])))
    elif stands and rng.random() < 0.5:
        placed.append((LAMP, rng.choice(stands)))

    spots = {t: [r for k in PLACES[t] for r in by_kind.get(k, ())] for t in PLACES if t != obj_type}
    others = [t for t in spots if spots[t]]
    for _ in range(rng.randint(*config.distractors)):
        kind = rng.choice(others)
        placed.append((kind, rng.choice(spots[kind])))

    # Objects are numbered per type and kept in name order, so listings read alphabetically.
    rng.shuffle(placed)
    numbered: dict[str, int] = {}
    objects = []
    for kind, rec in placed:
        numbered[kind] = numbered.get(kind, 0) + 1
        objects.append((kind, numbered[kind], rec))
    objects.sort()
    return Layout(
        receptacles=tuple(receptacles),
        objects=tuple(f"{kind} {n}" for kind, n, _ in objects),
        start=tuple(rec for _, _, rec in objects),
        closed=config.closed,
    )
