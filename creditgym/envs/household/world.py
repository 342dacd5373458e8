"""The household's state and rules: where everything is, what each command does, when the task
is won.

A `Layout` is the static house (receptacles, objects, where things start); a `Goal` says what
counts as success; a `World` is one live episode over a layout. The world is plain integers and
lists so a step costs a few microseconds: receptacles and objects are referred to by index,
the strings the agent sees are built once and cached.

Rules (ALFWorld's):
* The agent starts in the middle of the room and moves with ``go to <receptacle>``.
* It can see inside a receptacle only when it is there and the receptacle is open (or does not
  open at all); ``take``/``move`` need the same.
* It holds at most one object. ``clean``/``heat``/``cool`` act on the held object at a
  sinkbasin/microwave/fridge; heating undoes cold and cooling undoes hot.
* ``use desklamp N`` at the desklamp's receptacle switches the lamp on (or off again).
* A command that does not apply is "Nothing happens." and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from creditgym.envs.household import render

MIDDLE = -1  # the agent's location before its first `go to`
NOBODY = -1  # `held` when the hands are empty; an object's location while it is held

CLEAN, HOT, COLD = 1, 2, 4
CONDITION_NAMES = ((CLEAN, "clean"), (HOT, "hot"), (COLD, "cold"))
#: What each tool receptacle does to the held object: verb, condition set, condition cleared.
TOOLS = {
    "sinkbasin": ("clean", CLEAN, 0),
    "microwave": ("heat", HOT, COLD),
    "fridge": ("cool", COLD, HOT),
}
OPENABLE = frozenset({"cabinet", "drawer", "fridge", "microwave", "safe"})
LAMP = "desklamp"
LAMP_STANDS = ("desk", "dresser", "sidetable")  # where a desklamp stands (never in a closed one)

# Command verbs (the first element of a parsed command tuple).
GO, OPEN, CLOSE, TAKE, MOVE, TREAT, USE, EXAMINE_RECEPTACLE, EXAMINE_OBJECT, INVENTORY, LOOK = (
    range(11)
)


@dataclass(frozen=True)
class Layout:
    """A generated house. Object ``i`` starts in receptacle ``start[i]``.

    Attributes:
        receptacles: names in display order (``"cabinet 1"``, ...).
        objects: names (``"apple 1"``, ...), including a ``desklamp`` if the house has one
            (it sits on a receptacle and cannot be taken).
        start: starting receptacle index of every object.
        closed: whether openable receptacles start closed.
    """

    receptacles: tuple[str, ...]
    objects: tuple[str, ...]
    start: tuple[int, ...]
    closed: bool = True

    def __post_init__(self) -> None:
        names = (*self.receptacles, *self.objects)
        if len(set(names)) != len(names):
            raise ValueError(f"layout names must be unique, got {names}")
        malformed = [n for n in names if not n.rsplit(" ", 1)[-1].isdigit() or " " not in n]
        if malformed:
            raise ValueError(
                f"layout names must read '<kind> <number>' like 'cabinet 1'; got {malformed}"
            )
        if len(self.start) != len(self.objects) or not all(
            0 <= r < len(self.receptacles) for r in self.start
        ):
            raise ValueError(
                f"start={self.start} must give one receptacle index "
                f"(0..{len(self.receptacles) - 1}) per object ({len(self.objects)} objects)"
            )


@dataclass(frozen=True)
class Goal:
    """What success means, at the level of types (any ``apple`` in any ``fridge``), like ALFWorld.

    Attributes:
        task_type: one of `creditgym.envs.household.tasks.TASK_TYPES`.
        object_type: the type to handle (``"apple"``).
        receptacle_type: where it must end up (``"fridge"``), or ``"desklamp"`` for
            look_at_obj_in_light.
        count: how many objects must end up in one receptacle of that type (1 or 2).
        condition: `CLEAN`, `HOT`, `COLD` or 0: the state each placed object must be in.
    """

    task_type: str
    object_type: str
    receptacle_type: str
    count: int = 1
    condition: int = 0

    @property
    def in_light(self) -> bool:
        return self.receptacle_type == LAMP


def kind(name: str) -> str:
    """``"cabinet 3"`` -> ``"cabinet"``."""
    return name.rsplit(" ", 1)[0]


class World:
    """One episode's live state over a `Layout`, with ALFWorld's commands as methods.

    Args:
        layout: the house.
        goal: the task's success condition.
        key: identifies the layout and goal; the first element of every `anchor`, so states
            of different tasks never share an anchor.
    """

    def __init__(self, layout: Layout, goal: Goal, key: str = "") -> None:
        self.layout, self.goal, self.key = layout, goal, key
        self.rec_names = layout.receptacles
        self.rec_kinds = tuple(kind(name) for name in layout.receptacles)
        self.openable = tuple(k in OPENABLE for k in self.rec_kinds)
        self.obj_names = layout.objects
        self.obj_kinds = tuple(kind(name) for name in layout.objects)
        self.lamp = self.obj_kinds.index(LAMP) if LAMP in self.obj_kinds else NOBODY
        self.targets = tuple(i for i, k in enumerate(self.obj_kinds) if k == goal.object_type)
        self.goal_receptacles = tuple(
            i for i, k in enumerate(self.rec_kinds) if k == goal.receptacle_type
        )
        self.is_target = [k == goal.object_type for k in self.obj_kinds]
        self._go_commands = [f"go to {name}" for name in self.rec_names]
        self._go_everywhere = {text: (GO, rec) for rec, text in enumerate(self._go_commands)}
        self._admissible_cache: dict[tuple, tuple[list[str], dict[str, tuple]]] = {}
        self._symbolic_cache: dict[tuple, dict[str, float]] = {}  # anchor -> symbolic state

        self.loc = MIDDLE
        self.held = NOBODY
        self.lamp_on = False
        self.is_open = [not (layout.closed and openable) for openable in self.openable]
        self.obj_loc = list(layout.start)
        self.cond = [0] * len(layout.objects)
        self.contents: list[list[int]] = [[] for _ in layout.receptacles]
        for obj, rec in enumerate(layout.start):
            self.contents[rec].append(obj)
        self._seen: list[str | None] = [None] * len(layout.receptacles)  # cached `render.contents`
        self._open_bits = sum(1 << r for r, is_open in enumerate(self.is_open) if is_open)
        self._cond_bits = 0
        self._locations: tuple[int, ...] | None = None  # rebuilt only after take/move
        self.won = self._check_won()

    def copy(self) -> World:
        """An independent copy of the live state. The layout, goal, names and the caches (pure
        functions of the state) are shared, so a copy costs a few list copies."""
        other = object.__new__(World)
        vars(other).update(vars(self))
        other.is_open = list(self.is_open)
        other.obj_loc = list(self.obj_loc)
        other.cond = list(self.cond)
        other.contents = [list(objects) for objects in self.contents]
        other._seen = list(self._seen)
        return other

    def __deepcopy__(self, memo: dict) -> World:
        return self.copy()  # `copy.deepcopy` of an env holding a world stays cheap

    # ------------------------------------------------------------------ views of the state
    def anchor(self) -> tuple:
        """Canonical key of everything that decides the future (never the step count)."""
        if self._locations is None:
            self._locations = tuple(self.obj_loc)
        return (
            self.key,
            self.loc,
            self.held,
            self._open_bits,
            self._cond_bits,
            self.lamp_on,
            self._locations,
        )

    def visible(self, rec: int) -> list[int]:
        """Objects the agent sees at `rec` (nothing while it is closed)."""
        return self.contents[rec] if self.is_open[rec] else []

    def seen(self, rec: int) -> str:
        """What `rec` shows now (``"On the countertop 1, you see a apple 1."``), cached."""
        text = self._seen[rec]
        if text is None:
            names = [self.obj_names[obj] for obj in self.contents[rec]]
            text = render.contents(
                self.rec_names[rec], self.openable[rec], self.is_open[rec], names
            )
            self._seen[rec] = text
        return text

    def admissible(self) -> tuple[list[str], dict[str, tuple]]:
        """Sorted commands that do something now, and the parsed command for each.

        The result is shared with a cache: copy the list before handing it out.
        """
        loc, held = self.loc, self.held
        here = tuple(self.contents[loc]) if loc != MIDDLE and self.is_open[loc] else ()
        cache_key = (loc, held, loc != MIDDLE and self.is_open[loc], here)
        cached = self._admissible_cache.get(cache_key)
        if cached is None:
            commands = self._commands(loc, held, here)
            cached = (sorted(commands), commands)
            self._admissible_cache[cache_key] = cached
        return cached

    def _commands(self, loc: int, held: int, here: tuple[int, ...]) -> dict[str, tuple]:
        commands = dict(self._go_everywhere)
        commands["inventory"], commands["look"] = (INVENTORY,), (LOOK,)
        if loc != MIDDLE:
            del commands[self._go_commands[loc]]
        if held != NOBODY:
            commands[f"examine {self.obj_names[held]}"] = (EXAMINE_OBJECT, held)
        if loc == MIDDLE:
            return commands
        name = self.rec_names[loc]
        commands[f"examine {name}"] = (EXAMINE_RECEPTACLE, loc)
        if self.openable[loc]:
            commands[f"close {name}" if self.is_open[loc] else f"open {name}"] = (
                CLOSE if self.is_open[loc] else OPEN,
                loc,
            )
        for obj in here:
            if obj == self.lamp:
                commands[f"use {self.obj_names[obj]}"] = (USE, obj)
            elif held == NOBODY:
                commands[f"take {self.obj_names[obj]} from {name}"] = (TAKE, obj, loc)
        if held != NOBODY:
            if self.is_open[loc]:
                commands[f"move {self.obj_names[held]} to {name}"] = (MOVE, held, loc)
            tool = TOOLS.get(self.rec_kinds[loc])
            if tool is not None:
                commands[f"{tool[0]} {self.obj_names[held]} with {name}"] = (TREAT, held, loc)
        return commands

    # ------------------------------------------------------------------ rules
    def execute(self, command: tuple) -> tuple[str, list[str]]:
        """Apply one admissible command; returns the feedback text and the events it caused."""
        events: list[str] = []
        text = _VERB_RULES[command[0]](self, *command[1:], events)
        if command[0] in (GO, TAKE, MOVE, USE) and not self.won:
            self.won = self._check_won()
        return text, events

    def _go(self, rec: int, events: list[str]) -> str:
        self.loc = rec
        self._note_found(rec, events)
        return render.arrive(self.rec_names[rec], self.seen(rec))

    def _open(self, rec: int, events: list[str]) -> str:
        self._set_open(rec, True)
        events.append(f"opened {self.rec_names[rec]}")
        self._note_found(rec, events)
        return render.open_(self.rec_names[rec], self.seen(rec))

    def _close(self, rec: int, events: list[str]) -> str:
        self._set_open(rec, False)
        events.append(f"closed {self.rec_names[rec]}")
        return render.close(self.rec_names[rec])

    def _take(self, obj: int, rec: int, events: list[str]) -> str:
        self.contents[rec].remove(obj)
        self._relocate(obj, NOBODY, rec)
        self.held = obj
        events.append(f"took {self.obj_names[obj]}")
        return render.take(self.obj_names[obj], self.rec_names[rec])

    def _move(self, obj: int, rec: int, events: list[str]) -> str:
        self.contents[rec].append(obj)
        self.contents[rec].sort()  # listings and anchors must not depend on the order of moves
        self._relocate(obj, rec, rec)
        self.held = NOBODY
        events.append(f"placed {self.obj_names[obj]} in {self.rec_names[rec]}")
        return render.move(self.obj_names[obj], self.rec_names[rec])

    def _treat(self, obj: int, rec: int, events: list[str]) -> str:
        verb, added, removed = TOOLS[self.rec_kinds[rec]]
        old = self.cond[obj]
        self.cond[obj] = (old | added) & ~removed
        self._cond_bits += (self.cond[obj] - old) << (3 * obj)
        events.append(f"{verb}ed {self.obj_names[obj]}")  # cleaned, heated, cooled
        return render.treat(verb, self.obj_names[obj], self.rec_names[rec])

    def _use(self, lamp: int, events: list[str]) -> str:
        self.lamp_on = not self.lamp_on
        events.append(f"{'used' if self.lamp_on else 'switched off'} {self.obj_names[lamp]}")
        return render.use(self.obj_names[lamp], self.lamp_on)

    def _examine_receptacle(self, rec: int, events: list[str]) -> str:
        return self.seen(rec)

    def _examine_object(self, obj: int, events: list[str]) -> str:
        conditions = [name for bit, name in CONDITION_NAMES if self.cond[obj] & bit]
        return render.examine_object(self.obj_names[obj], conditions)

    def _inventory(self, events: list[str]) -> str:
        return render.inventory(None if self.held == NOBODY else self.obj_names[self.held])

    def _look(self, events: list[str]) -> str:
        if self.loc == MIDDLE:
            return render.room(self.rec_names)
        return render.facing(self.rec_names[self.loc])

    def _set_open(self, rec: int, is_open: bool) -> None:
        self.is_open[rec] = is_open
        self._open_bits ^= 1 << rec
        self._seen[rec] = None

    def place(self, obj: int, rec: int) -> None:
        """Put `obj` (not held) into receptacle `rec` (for what-if copies: where a hidden
        object might be)."""
        old = self.obj_loc[obj]
        self.contents[old].remove(obj)
        self.contents[rec].append(obj)
        self.contents[rec].sort()
        self._relocate(obj, rec, rec)
        self._seen[old] = None

    def _relocate(self, obj: int, new_loc: int, rec: int) -> None:
        self.obj_loc[obj] = new_loc
        self._locations = None
        self._seen[rec] = None

    def _note_found(self, rec: int, events: list[str]) -> None:
        for obj in self.visible(rec):
            if self.is_target[obj]:
                events.append(f"found {self.obj_names[obj]}")

    # ------------------------------------------------------------------ the goal
    def ready(self, obj: int) -> bool:
        """Whether `obj` is of the goal type and in the goal's condition."""
        return self.is_target[obj] and (self.cond[obj] & self.goal.condition) == self.goal.condition

    def placed(self) -> int:
        """Most ready goal objects in any one receptacle of the goal type (0 for light tasks)."""
        per_receptacle: dict[int, int] = {}
        for obj in self.targets:
            rec = self.obj_loc[obj]
            if (
                rec != NOBODY
                and self.rec_kinds[rec] == self.goal.receptacle_type
                and self.ready(obj)
            ):
                per_receptacle[rec] = per_receptacle.get(rec, 0) + 1
        return max(per_receptacle.values(), default=0)

    def lit_here(self) -> bool:
        """Whether a switched-on lamp stands where the agent is."""
        return self.lamp_on and self.lamp != NOBODY and self.obj_loc[self.lamp] == self.loc

    def _check_won(self) -> bool:
        if self.goal.in_light:
            return self.held != NOBODY and self.is_target[self.held] and self.lit_here()
        return self.placed() >= self.goal.count

    def symbolic_state(self) -> dict[str, float]:
        """Flat named numbers for latent-reward code (LaRe); `progress` is the fraction of
        subgoals done.

        A fresh dict each call (callers may add to it); computed once per state.
        """
        anchor = self.anchor()
        cached = self._symbolic_cache.get(anchor)
        if cached is None:
            cached = self._symbolic_cache[anchor] = self._compute_symbolic_state()
        return dict(cached)

    def _compute_symbolic_state(self) -> dict[str, float]:
        goal = self.goal
        holding_target = self.held != NOBODY and self.is_target[self.held]
        ready_in_hand = holding_target and self.ready(self.held)
        loc = self.loc
        visible = 0 if loc == MIDDLE else sum(self.is_target[obj] for obj in self.visible(loc))
        if goal.in_light:
            placed = 0
            done = holding_target + (holding_target and self.lit_here())
            stages = 2
            at_target = loc != MIDDLE and loc == self.obj_loc[self.lamp]
        else:
            placed = self.placed()
            per_object = 3 if goal.condition else 2
            in_hand = (
                (1 + (goal.condition != 0 and ready_in_hand))
                if holding_target and placed < goal.count
                else 0
            )
            done = placed * per_object + in_hand
            stages = goal.count * per_object
            at_target = loc != MIDDLE and self.rec_kinds[loc] == goal.receptacle_type
        return {
            "holding": float(self.held != NOBODY),
            "holding_target": float(holding_target),
            "target_ready_in_hand": float(ready_in_hand),
            "targets_visible": float(visible),
            "at_target_receptacle": float(at_target),
            "lamp_on": float(self.lamp_on),
            "placed": float(placed),
            "needed": float(goal.count),
            "progress": 1.0 if self.won else min(done / stages, 1.0),
        }


#: The rule for each command verb, in verb order (`GO`, `OPEN`, ... `LOOK`).
_VERB_RULES = (
    World._go,
    World._open,
    World._close,
    World._take,
    World._move,
    World._treat,
    World._use,
    World._examine_receptacle,
    World._examine_object,
    World._inventory,
    World._look,
)
