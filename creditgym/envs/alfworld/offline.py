"""ALFWorld games made offline, in ALFWorld's own format, from what the ``alfworld`` package ships.

ALFWorld's official games (``alfworld-download``) are PDDL problems written from ALFRED's
recorded AI2-THOR scenes. The package itself ships, per floor plan (``alfworld/gen/layouts``),
the object types present (``FloorPlanN-objects.json``), every receptacle with the pose the
agent stands at to reach it (``FloorPlanN-openable.json``) and the navigable points
(``FloorPlanN-layout.npy``), plus the PDDL domain and TextWorld grammar
(``alfworld/data/alfred.pddl``, ``alfred.twl2``), the goal library (``alfworld.gen.goal_library``)
and the object affordance tables (``alfworld.gen.constants``). From those this module writes a
game as ALFWorld's own tools do (``alfworld-generate``): a folder with ``traj_data.json`` (task
type and ``pddl_params``) and ``game.tw-pddl`` (domain, grammar with the task sentence, problem).

What is sampled (seeded) rather than recorded: where each object instance lies (a receptacle
type of the floor plan that ALFWorld's table ``VAL_RECEPTACLE_OBJECTS`` says can hold it, then
one receptacle of that type), how many instances of each type there are (1-3, ALFRED's
``MAX_NUM_OF_OBJ_INSTANCES``), the agent's start point (never where a receptacle is), one
instance of a receptacle type the objects file lists but the receptacle file lacks (stove
burners, toasters, garbage cans, ...), and the goal (task type, object, receptacle) among those
the room makes possible. Goals follow ALFRED's rules: the object never starts in a receptacle of
the goal's type, heating needs a microwave, cooling a fridge, cleaning a sink basin (the
domain's ``CleanObject`` accepts only ``SinkBasinType``), looking under a lamp a desk or floor
lamp.

Splits follow ALFRED's: ``train`` and ``valid_seen`` draw from the same floor plans (different
games), ``valid_unseen`` only from ALFRED's four held-out floor plans (10, 219, 308, 424).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from creditgym.envs.optional import require

__all__ = [
    "GENERATOR_VERSION",
    "OFFLINE_SPLITS",
    "TASK_TYPES",
    "OfflineGame",
    "floor_plans",
    "offline_game",
    "offline_root",
    "seeded_global_random",
]

#: Bumped whenever the games this module writes change, so cached games are rebuilt.
GENERATOR_VERSION = 2
#: ALFWorld's six task types (``alfworld.agents.environment.alfred_tw_env.TASK_TYPES``).
TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
#: Games per offline split; the held-out sizes are those of ALFWorld's official splits.
OFFLINE_SPLITS = {"train": 3553, "valid_seen": 140, "valid_unseen": 134}
#: ALFRED's valid_unseen floor plans (kitchen, living room, bedroom, bathroom).
UNSEEN_FLOOR_PLANS = (10, 219, 308, 424)
#: Receptacles a lamp may stand on (the lamp tables list none: lamps are not placed objects).
LAMP_STANDS = ("Desk", "SideTable", "Dresser", "CoffeeTable", "DiningTable", "Shelf", "TVStand")
LAMPS = ("DeskLamp", "FloorLamp")
#: A step of the agent's grid in metres (ALFRED's ``AGENT_STEP_SIZE``).
GRID = 0.25


@dataclass(frozen=True)
class OfflineGame:
    """One generated game: its folder holds ``game.tw-pddl`` and ``traj_data.json``."""

    folder: Path
    task_type: str
    floor_plan: int

    @property
    def game_file(self) -> Path:
        return self.folder / "game.tw-pddl"


@contextmanager
def seeded_global_random(seed: int) -> Iterator[None]:
    """Run a block with Python's global `random` seeded, then put its previous state back.

    ALFWorld's template choice and handcoded expert draw from the global `random` module; this
    makes them deterministic without disturbing anyone else's use of it.
    """
    saved = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(saved)


def floor_plans(split: str) -> tuple[int, ...]:
    """The floor plans a split draws from (ALFRED's train scenes, or its unseen ones)."""
    constants = require("alfworld.gen.constants", "alfworld")
    if split == "valid_unseen":
        return UNSEEN_FLOOR_PLANS
    return tuple(n for n in constants.TRAIN_SCENE_NUMBERS if n not in UNSEEN_FLOOR_PLANS)


def offline_root(cache: Path) -> Path:
    """The data folder of generated games: laid out like ``$ALFWORLD_DATA``, so ALFWorld's own
    tools and ``creditgym/ALFWorld-v0`` (``data_dir=``) can play them too."""
    return cache / f"offline-v{GENERATOR_VERSION}"


def offline_game(split: str, index: int, cache: Path) -> OfflineGame:
    """Game `index` of offline `split` (task type ``TASK_TYPES[index % 6]``), written under
    `cache` on first use (atomically)."""
    if split not in OFFLINE_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(OFFLINE_SPLITS)}")
    task_type = TASK_TYPES[index % len(TASK_TYPES)]
    folder = offline_root(cache) / "json_2.1.1" / split / f"{task_type}-{index:05d}" / "trial"
    traj_file = folder / "traj_data.json"
    if (folder / "game.tw-pddl").is_file() and traj_file.is_file():
        traj = json.loads(traj_file.read_text())
        return OfflineGame(folder, traj["task_type"], int(traj["scene"]["scene_num"]))
    seed = int.from_bytes(hashlib.sha256(f"{split}/{index}".encode()).digest()[:8], "big")
    rng = random.Random(seed)
    plans = floor_plans(split)
    for _ in range(100):  # a floor plan that cannot host the task type is redrawn
        scene = _Scene.load(rng.choice(plans), rng)
        goal = _draw_goal(task_type, scene, rng)
        if goal is not None:
            break
    else:  # pragma: no cover - every task type fits many floor plans
        raise RuntimeError(f"no floor plan of {split!r} fits game {index}")
    traj, gamedata = _game_files(scene, task_type, goal, seed)
    _write_atomically(folder, {"traj_data.json": traj, "game.tw-pddl": gamedata})
    return OfflineGame(folder, task_type, scene.number)


# -- The room ----------------------------------------------------------------------------------
@dataclass
class _Scene:
    """A floor plan's receptacles (id -> type, location) and placed objects (id -> receptacle)."""

    number: int
    receptacles: dict[str, tuple[str, str]]
    objects: dict[str, str]
    object_types: dict[str, str]
    agent_location: str

    @classmethod
    def load(cls, number: int, rng: random.Random) -> _Scene:
        constants = require("alfworld.gen.constants", "alfworld")
        import numpy as np

        layouts = Path(require("alfworld.gen", "alfworld").__file__).parent / "layouts"
        present = json.loads((layouts / f"FloorPlan{number}-objects.json").read_text())
        poses = json.loads((layouts / f"FloorPlan{number}-openable.json").read_text())
        points = np.load(layouts / f"FloorPlan{number}-layout.npy").tolist()

        receptacles: dict[str, tuple[str, str]] = {}
        for thor_id, pose in sorted(poses.items()):
            kind = thor_id.split("|")[0]
            if kind in ("Sink", "Bathtub") and not thor_id.endswith("Basin"):
                thor_id, kind = f"{thor_id}|{kind}Basin", f"{kind}Basin"
            elif thor_id.endswith("Basin"):
                kind = thor_id.split("|")[-1]
            if kind in constants.RECEPTACLES and kind not in constants.MOVABLE_RECEPTACLES:
                receptacles[thor_id] = (kind, _location(pose))
        kinds = {kind for kind, _ in receptacles.values()}
        for kind in sorted(set(present) - kinds):  # listed in the room, but with no pose
            if kind in constants.RECEPTACLES and kind not in constants.MOVABLE_RECEPTACLES:
                x, z = rng.choice(points)
                pose = [x, z, 90 * rng.randrange(4), 30]
                thor_id = f"{kind.removesuffix('Basin')}|{x:+06.2f}|+00.00|{z:+06.2f}"
                if kind.endswith("Basin"):  # ALFWorld names a basin after its sink or bathtub
                    thor_id += f"|{kind}"
                receptacles[thor_id] = (kind, _location(pose))
        taken = {loc for _, loc in receptacles.values()}
        start = _location([*rng.choice(points), 90 * rng.randrange(4), 30])
        while start in taken:  # at a receptacle, ALFWorld's intro would list none
            start = _location([*rng.choice(points), 90 * rng.randrange(4), 30])
        scene = cls(number, receptacles, {}, {}, start)
        scene._place_objects(present, rng)
        return scene

    def _place_objects(self, present: list[str], rng: random.Random) -> None:
        constants = require("alfworld.gen.constants", "alfworld")
        for kind in sorted(set(present)):
            if kind in LAMPS:
                holders = [r for r, (k, _) in self.receptacles.items() if k in LAMP_STANDS]
            elif kind in constants.RECEPTACLES and kind not in constants.MOVABLE_RECEPTACLES:
                continue
            else:
                holders = self.holders_of(kind)
            if not holders:
                continue
            for number in range(rng.randint(1, 1 if kind in LAMPS else 3)):
                holder = self.pick_holder(holders, rng)
                x, z = rng.uniform(-3, 3), rng.uniform(-3, 3)  # THOR-like ids: type|x|y|z
                object_id = f"{kind}|{x:+06.2f}|+0{number}.00|{z:+06.2f}"
                self.objects[object_id] = holder
                self.object_types[object_id] = kind

    def holders_of(self, kind: str) -> list[str]:
        """Receptacles of this room that ALFWorld's table lets hold an object of `kind`."""
        constants = require("alfworld.gen.constants", "alfworld")
        return [
            r
            for r, (k, _) in self.receptacles.items()
            if kind in constants.VAL_RECEPTACLE_OBJECTS.get(k, ())
        ]

    def pick_holder(self, holders: list[str], rng: random.Random) -> str:
        """A receptacle type among `holders`', then one of its instances: a room with fourteen
        drawers does not put nearly everything in a drawer."""
        kinds = sorted({self.receptacles[r][0] for r in holders})
        kind = rng.choice(kinds)
        return rng.choice([r for r in holders if self.receptacles[r][0] == kind])

    def instances(self, kind: str) -> list[str]:
        return [o for o, k in self.object_types.items() if k == kind]


def _location(pose: list[float]) -> str:
    """ALFRED's ``loc|x|z|rotation|horizon`` name of an agent pose (grid steps, quarter turns)."""
    x, z, rotation, horizon = pose
    return f"loc|{round(x / GRID)}|{round(z / GRID)}|{round(rotation / 90) % 4}|{round(horizon)}"


# -- The goal ----------------------------------------------------------------------------------
def _draw_goal(task_type: str, scene: _Scene, rng: random.Random) -> dict[str, str] | None:
    """``pddl_params`` of a goal the room allows, moving objects out of the goal receptacle;
    None when the room cannot host `task_type`."""
    constants = require("alfworld.gen.constants", "alfworld")
    kinds = {k for k, _ in scene.receptacles.values()}
    needs = {
        "pick_clean_then_place_in_recep": ("Cleanable", "SinkBasin"),
        "pick_heat_then_place_in_recep": ("Heatable", "Microwave"),
        "pick_cool_then_place_in_recep": ("Coolable", "Fridge"),
    }
    placed = sorted(set(scene.object_types.values()) - set(LAMPS))
    if task_type == "look_at_obj_in_light":
        lamps = sorted({k for k in scene.object_types.values() if k in LAMPS})
        if not lamps or not placed:
            return None
        obj = rng.choice(placed)
        toggle = rng.choice(lamps)
        return {"object_target": obj, "parent_target": "", "toggle_target": toggle}
    if task_type in needs:
        affordance, tool = needs[task_type]
        if tool not in kinds:
            return None
        placed = [k for k in placed if k in constants.VAL_ACTION_OBJECTS[affordance]]
    tool = needs.get(task_type, ("", ""))[1]  # heating an egg to leave it in the microwave: no
    wanted = 2 if task_type == "pick_two_obj_and_place" else 1
    candidates = []
    for obj in placed:
        if len(scene.instances(obj)) < wanted:
            continue
        for parent in sorted({scene.receptacles[r][0] for r in scene.holders_of(obj)} - {tool}):
            others = [r for r in scene.holders_of(obj) if scene.receptacles[r][0] != parent]
            if others:
                candidates.append((obj, parent, others))
    if not candidates:
        return None
    obj, parent, others = rng.choice(candidates)
    for object_id in scene.instances(obj):  # ALFRED: the object never starts in the goal
        if scene.receptacles[scene.objects[object_id]][0] == parent:
            scene.objects[object_id] = scene.pick_holder(others, rng)
    return {"object_target": obj, "parent_target": parent, "toggle_target": ""}


# -- The files ---------------------------------------------------------------------------------
def _pddl_name(thor_id: str) -> str:
    """ALFWorld's escaping of THOR ids into PDDL names (``PlannedGameState.fix_pddl_str_chars``)."""
    for old, new in (("-", "_minus_"), ("|", "_bar_"), ("+", "_plus_"), (".", "_dot_")):
        thor_id = thor_id.replace(old, new)
    return thor_id.replace(",", "_comma_")


def _problem(scene: _Scene, task_type: str, params: dict[str, str], seed: int) -> str:
    constants = require("alfworld.gen.constants", "alfworld")
    goal_library = require("alfworld.gen.goal_library", "alfworld")
    receptacle_kinds = sorted({k for k, _ in scene.receptacles.values()})
    object_kinds = sorted(set(scene.object_types.values()))
    locations = sorted({loc for _, loc in scene.receptacles.values()} | {scene.agent_location})
    name = {key: _pddl_name(key) for key in [*scene.receptacles, *scene.objects, *locations]}

    declared = ["agent1 - agent"]
    declared += [f"{name[r]} - receptacle" for r in sorted(scene.receptacles)]
    declared += [f"{name[o]} - object" for o in sorted(scene.objects)]
    declared += [f"{name[loc]} - location" for loc in locations]
    declared += [f"{k}Type - rtype" for k in receptacle_kinds]
    declared += [f"{k}Type - otype" for k in object_kinds]

    init = [f"(atLocation agent1 {name[scene.agent_location]})"]
    for r, (kind, loc) in sorted(scene.receptacles.items()):
        init.append(f"(receptacleType {name[r]} {kind}Type)")
        init.append(f"(receptacleAtLocation {name[r]} {name[loc]})")
        if kind in constants.OPENABLE_CLASS_SET:
            init.append(f"(openable {name[r]})")
    for o, holder in sorted(scene.objects.items()):
        kind = scene.object_types[o]
        init.append(f"(objectType {name[o]} {kind}Type)")
        init.append(f"(inReceptacle {name[o]} {name[holder]})")
        init.append(f"(objectAtLocation {name[o]} {name[scene.receptacles[holder][1]]})")
        if kind not in LAMPS:
            init.append(f"(pickupable {name[o]})")
        if kind in constants.MOVABLE_RECEPTACLES_SET:
            init.append(f"(isReceptacleObject {name[o]})")
        for affordance, predicate in (
            ("Cleanable", "cleanable"),
            ("Heatable", "heatable"),
            ("Coolable", "coolable"),
            ("Toggleable", "toggleable"),
            ("Sliceable", "sliceable"),
        ):
            if kind in constants.VAL_ACTION_OBJECTS[affordance]:
                init.append(f"({predicate} {name[o]})")
    for rkind in receptacle_kinds:
        for okind in object_kinds:
            if okind in constants.VAL_RECEPTACLE_OBJECTS.get(rkind, ()):
                init.append(f"(canContain {rkind}Type {okind}Type)")

    goal = goal_library.gdict[task_type]["pddl"].format(
        obj=params["object_target"],
        recep=params["parent_target"],
        toggle=params["toggle_target"],
        mrecep="",
    )
    goal = goal.replace("#", "-")  # the library writes types as '?r # receptacle'
    newline = "\n        "
    return (
        f"(define (problem plan_offline_{seed:016x})\n"
        "    (:domain alfred)\n"
        f"    (:objects\n        {newline.join(declared)}\n    )\n"
        f"    (:init\n        {newline.join(init)}\n    )\n"
        f"{goal}"
    )


def _game_files(
    scene: _Scene, task_type: str, params: dict[str, str], seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    data = Path(require("alfworld", "alfworld").__file__).parent / "data"
    misc = require("alfworld.agents.utils.misc", "alfworld")
    traj = {
        "task_type": task_type,
        "pddl_params": {**params, "mrecep_target": "", "object_sliced": False},
        "scene": {"floor_plan": f"FloorPlan{scene.number}", "scene_num": scene.number},
        "task_id": f"offline_{seed:016x}",
        "creditgym": f"generated offline by creditgym (generator v{GENERATOR_VERSION})",
    }
    with seeded_global_random(seed):  # ALFWorld picks the sentence template with `random`
        grammar = misc.add_task_to_grammar((data / "alfred.twl2").read_text(), traj)
    gamedata = {
        "pddl_domain": (data / "alfred.pddl").read_text(),
        "grammar": grammar,
        "pddl_problem": _problem(scene, task_type, params, seed),
        "solvable": True,  # by construction; the expert's benchmark measures it
        "walkthrough": None,
    }
    return traj, gamedata


def _write_atomically(folder: Path, files: dict[str, Any]) -> None:
    """Write `files` into a scratch folder beside `folder`, then move it into place, so a
    concurrent reader never sees half a game."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".writing-", dir=folder.parent))
    try:
        for file_name, content in files.items():
            (scratch / file_name).write_text(json.dumps(content))
        scratch.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        try:
            os.replace(scratch, folder)
        except OSError:  # another process wrote it first: theirs is the same game
            pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
