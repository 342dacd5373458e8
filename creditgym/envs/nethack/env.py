"""`MiniHackTextEnv`: a MiniHack task played through text commands and text observations."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from creditgym.envs import info as keys
from creditgym.envs.nethack import view
from creditgym.envs.nethack.commands import command_name, command_table, parse_command
from creditgym.envs.nethack.expert import Expert
from creditgym.envs.optional import require
from creditgym.envs.oracle import cannot_clone
from creditgym.envs.reset_args import reset_arguments
from creditgym.envs.spaces import text_space

__all__ = ["TASKS", "MiniHackTextEnv"]

MAX_TEXT = 8192
OBSERVATION_KEYS = ("chars", "glyphs", "blstats", "message", "inv_strs", "inv_letters")
GAME_OVER = "The episode is over. Call reset() to play again."
_APPLY = ord("a")
#: Instruction per MiniHack task family (matched by prefix of the task id).
TASKS: dict[str, tuple[str, str]] = {
    "MiniHack-Room": ("room", "Walk to the staircase down (>) in this room."),
    "MiniHack-KeyRoom": (
        "keyroom",
        (
            "The staircase down (>) is in a small room behind a locked door. Pick up the key, "
            "stand next to the door (north, south, east or west of it), apply the key to unlock "
            "and open it, then walk to the staircase down."
        ),
    ),
    "MiniHack-MazeWalk": ("mazewalk", "Find your way through the maze to the staircase down (>)."),
    "MiniHack-River": (
        "river",
        (
            "A river blocks the way to the staircase down (>). Push boulders (`) into the water "
            "to fill it and make a crossing, then walk to the staircase down."
        ),
    ),
}


class MiniHackTextEnv(gym.Env):
    """A MiniHack task (NetHack Learning Environment) as a text game: reach the stairs.

    ## Description
    MiniHack (Samvelyan et al. 2021, arXiv 2109.13202) builds small NetHack levels on NLE
    (Küttler et al. 2020). This env runs a real MiniHack task and talks text: the observation
    describes what the agent sees, actions are text commands mapped to NLE actions. Presets:
    Room 5x5 (walk to the stairs), KeyRoom S5 (key, locked door, stairs), MazeWalk 9x9 (a dark
    maze), River Narrow (push boulders into a two-wide river to cross it).

    ## Action space
    `text_space()`: a command naming one of the task's actions: ``move north`` ... ``move
    northwest`` (also ``go north``, ``north``, ``n``), and in KeyRoom ``pick up`` and ``apply
    key`` (also ``open door``, ``unlock door``). In KeyRoom, ``apply key`` with the key is
    refused unless the door is north, south, east or west of the agent (MiniHack then opens
    it; applied diagonally, MiniHack's own door-opening loop would never end). Anything else
    is refused without a game step (``valid=False``).

    ## Observation space
    `text_space(8192)`: the game message, the known part of the map as ASCII (NLE's
    ``chars``: ``@`` you, ``>`` stairs down, ``+`` closed door, `````` boulder, ``}`` water,
    ``(`` the key), one line per kind of visible thing with direction and distance
    (``staircase down: 3 south, 2 east``), hit points and the inventory.

    ## Rewards
    MiniHack's: 1 for reaching the stairs, and NLE's -0.01 for a step on which game time
    did not pass (walking into a wall).

    ## Starting state
    The level NetHack generates for the seed: ``reset(seed=s)`` seeds NLE's core and display
    RNGs with ``s`` (no reseeding, moon phase fixed by the seed), so the same seed gives the
    same level and the same transitions; unseeded resets draw the level seed from the env's RNG.

    ## Episode end
    Terminated on reaching the stairs or dying. Truncated after ``max_steps`` steps (the
    task's own budget by default: Room 100, KeyRoom 200, MazeWalk 200, River 350); refused
    commands count.

    ## Arguments
    * ``task`` ("MiniHack-Room-5x5-v0"): any registered MiniHack navigation task id.
    * ``instruction`` (None): the task text; by default one per task family (`TASKS`).
    * ``max_steps`` (None): step budget; the task's own by default.

    ## Task types
    ``info["task_type"]``: ``room``, ``keyroom``, ``mazewalk``, ``river`` or ``minihack``.

    ## Info keys
    * ``task``; ``admissible_actions``: the canonical commands of the task's actions.
    * ``anchor``: (x, y, the glyph map as bytes, the inventory): the true state of the level
      as far as it shows, the agent's memory of the map included.
    * ``won``: MiniHack's success (on the stairs). ``valid``: the command named an action and
      changed the state or let game time pass (walking into a wall is not valid).
    * ``symbolic_state``: x, y, hp, max_hp, time, steps, inventory_size, has_key,
      stairs_visible, distance_to_stairs (-1 if not seen), boulders_visible, water_visible,
      closed_doors_visible, explored_cells.
    * ``events``: from the game state: ``picked up <item>``, ``door opened`` (MiniHack unlocks
      and opens the door in one ``apply key``), ``staircase down in view``, ``water filled by
      a boulder``, ``reached the staircase down``, ``died``.
    * ``message``: the game's message; ``end_status``: NLE's step status name.

    ## The expert
    ``env.unwrapped.expert_action()``: a breadth-first-search solver over the map the agent
    has seen (`expert.py`): walk to the stairs; fetch the key and unlock the door; push
    boulders into the river; otherwise explore. ``env.unwrapped.steps_to_go()`` is the
    length of its walk to the stairs once it knows a walkable way there (0 once won, the step
    budget ignored), None before that (while it must still explore, fetch the key or build a
    bridge) and once the game is lost. The state cannot be cloned (`clone_state` raises
    NotImplementedError): NLE offers no snapshot of a running game.

    ## Version history
    * v0: initial version.
    """

    metadata = {  # noqa: RUF012  (Gymnasium's convention)
        "render_modes": ["ansi"],
        # how to read an observation, for LLM judges (CALM's "symset")
        "judge_legend": (
            "Each observation has an optional game message, a map of the dungeon around the agent, "
            "a list of what the agent sees with directions, and its hit points and inventory. On "
            "the map: @ is the agent, . is floor, | and - are walls, + is a closed door, a door "
            "shown as | or - inside a wall is open, ( is an item such as a key, > is the staircase "
            "down, < the staircase up, } is water, ` is a boulder, # is a corridor."
        ),
    }

    supports_state_cloning = False  # see `clone_state`

    def __init__(
        self,
        task: str = "MiniHack-Room-5x5-v0",
        instruction: str | None = None,
        max_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        with warnings.catch_warnings():  # minihack imports the deprecated pkg_resources
            warnings.simplefilter("ignore")
            require("nle", "minihack")
            require("minihack", "minihack")
        if task not in gym.envs.registry:
            known = sorted(
                env_id for env_id in gym.envs.registry if str(env_id).startswith("MiniHack-")
            )
            raise ValueError(
                f"unknown MiniHack task {task!r}; registered MiniHack tasks: {', '.join(known)}"
            )
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        extra = {} if max_steps is None else {"max_episode_steps": max_steps}
        # The task's class itself: gym.make would take max_episode_steps for its own TimeLimit.
        spec = gym.spec(task)
        make_task = gym.envs.registration.load_env_creator(spec.entry_point)
        self._nle = make_task(
            **{**spec.kwargs, "observation_keys": OBSERVATION_KEYS, "fix_moon_phase": True, **extra}
        )
        self.task = task
        family = next((value for prefix, value in TASKS.items() if task.startswith(prefix)), None)
        self.task_type = family[0] if family else "minihack"
        self.instruction = instruction or (family[1] if family else "Reach the staircase down (>).")
        self.max_steps = int(self._nle._max_episode_steps)
        self.render_mode = render_mode
        self.observation_space = text_space(MAX_TEXT)
        self.action_space = text_space()
        self._actions = tuple(int(action) for action in self._nle.actions)
        self._commands = [command_name(action) for action in self._actions]
        self._table = command_table(self._actions)
        self._expert = Expert()
        self._frame: view.Frame | None = None
        self._observation = ""
        self._steps = 0
        self._over = False
        self._end_status = "RUNNING"
        self._stairs_seen = False
        self.level_seed: int | None = None

    # -- Gymnasium API -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict]:
        seed, options = reset_arguments(seed, options, type(self).__name__)
        super().reset(seed=seed)
        level_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31 - 1))
        self._nle.seed(level_seed, level_seed, reseed=False)
        observation, _ = self._nle.reset()
        self._frame = view.decode(observation)
        self._expert.reset()
        self._expert.observe(self._frame)
        self._steps, self._over, self._end_status = 0, False, "RUNNING"
        self._stairs_seen = bool(self._count(self._frame, "stairs_down"))
        self.level_seed = level_seed
        self._observation = self._text(self._frame)
        return self._observation, self._info(valid=True, events=[])

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self._frame is None:
            raise gym.error.ResetNeeded("call reset() before step() on MiniHackTextEnv")
        if self._over:
            return GAME_OVER, 0.0, True, False, self._info(valid=False, events=[])
        self._steps += 1
        index = parse_command(action, self._table)
        problem = self._refusal(action, index)
        reward, terminated, truncated, events, valid = 0.0, False, False, [], False
        if problem is not None:
            self._observation = self._text(self._frame, problem)
        else:
            previous = self._frame
            observation, reward, done, truncated, info = self._nle.step(index)
            frame = view.decode(observation)
            if not done or frame.chars.any():  # after the game ends NLE may show a blank screen
                self._frame = frame
            self._end_status = info["end_status"].name
            won = self._end_status == "TASK_SUCCESSFUL"
            # NLE ends an over-long episode as ABORTED but may not flag it as truncated.
            truncated = bool(truncated) or self._end_status == "ABORTED"
            terminated = bool(done) and not truncated
            events = self._events(previous, self._frame, won)
            valid = self._frame.time != previous.time or _anchor(self._frame) != _anchor(previous)
            self._expert.observe(self._frame, self._commands[index])
            self._observation = self._text(self._frame)
        truncated = bool(truncated or (not terminated and self._steps >= self.max_steps))
        self._over = terminated or truncated
        return self._observation, float(reward), terminated, truncated, self._info(valid, events)

    def render(self) -> str | None:
        return self._observation if self.render_mode == "ansi" else None

    def close(self) -> None:
        self._nle.close()

    # -- The expert ----------------------------------------------------------------------------
    def expert_action(self) -> str:
        """The scripted solver's next command for the current state."""
        if self._frame is None:
            raise gym.error.ResetNeeded("call reset() before expert_action()")
        return self._expert.act()

    def steps_to_go(self) -> int | None:
        """The expert's walk length to the stairs over the map seen so far (see the class
        docstring): 0 once won, None where its plan to get there is not known yet."""
        if self._frame is None:
            raise gym.error.ResetNeeded("call reset() before steps_to_go() on MiniHackTextEnv")
        if self._end_status == "TASK_SUCCESSFUL":
            return 0
        if self._over and self._end_status != "ABORTED" and self._steps < self.max_steps:
            return None  # died or otherwise lost; a budget cut still gets its walk length
        return self._expert.walk_length()

    def clone_state(self) -> object:
        """Not supported: raises NotImplementedError (see the class docstring)."""
        raise cannot_clone(self, "NLE offers no snapshot of a running NetHack game")

    def restore_state(self, snapshot: object) -> tuple[str, dict]:
        """Not supported, like `clone_state`."""
        raise cannot_clone(self, "NLE offers no snapshot of a running NetHack game")

    # -- Internals -----------------------------------------------------------------------------
    def _refusal(self, action: Any, index: int | None) -> str | None:
        """Why a command is refused without a game step, or None to play it."""
        if index is None:
            shown = view.printable(str(action), 60)
            return f"Unknown command {shown!r}. Commands: {', '.join(self._commands)}."
        if self._actions[index] == _APPLY and self._frame.has("key"):
            kinds = view.glyph_tables().kind
            x, y = self._frame.x, self._frame.y
            around = [
                (x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if (dx, dy) != (0, 0)
            ]
            doors = [
                (cx, cy)
                for cx, cy in around
                if 0 <= cy < 21
                and 0 <= cx < 79
                and kinds[self._frame.glyphs[cy, cx]] == view.CLOSED_DOOR
            ]
            if doors and all(cx != x and cy != y for cx, cy in doors):
                return (
                    "You can't reach the door diagonally: stand north, south, east or west of it."
                )
        return None

    def _text(self, frame: view.Frame, prefix: str = "") -> str:
        return view.printable(view.render(frame, prefix), MAX_TEXT)

    @staticmethod
    def _count(frame: view.Frame, table: str) -> int:
        return int(getattr(view.glyph_tables(), table)[frame.glyphs.astype(np.int64)].sum())

    def _kind_count(self, frame: view.Frame, kind: int) -> int:
        return int((view.glyph_tables().kind[frame.glyphs.astype(np.int64)] == kind).sum())

    def _events(self, before: view.Frame, after: view.Frame, won: bool) -> list[str]:
        events = []
        held = {letter for letter, _ in before.inventory}
        events += [f"picked up {text}" for letter, text in after.inventory if letter not in held]
        if self._kind_count(after, view.CLOSED_DOOR) < self._kind_count(before, view.CLOSED_DOOR):
            events.append("door opened")
        if self._kind_count(after, view.WATER_CELL) < self._kind_count(before, view.WATER_CELL):
            events.append("water filled by a boulder")
        if not self._stairs_seen and self._count(after, "stairs_down"):
            self._stairs_seen = True
            events.append("staircase down in view")
        if won:
            events.append("reached the staircase down")
        if self._end_status == "DEATH":
            events.append("died")
        return events

    def _info(self, valid: bool, events: list[str]) -> dict[str, Any]:
        frame = self._frame
        tables = view.glyph_tables()
        glyphs = frame.glyphs.astype(np.int64)
        stairs = np.argwhere(tables.stairs_down[glyphs])
        distance = min(
            (max(abs(int(x) - frame.x), abs(int(y) - frame.y)) for y, x in stairs), default=-1
        )
        won = self._end_status == "TASK_SUCCESSFUL"
        return {
            keys.TASK: self.instruction,
            keys.TASK_TYPE: self.task_type,
            keys.ADMISSIBLE_ACTIONS: [] if self._over else list(self._commands),
            keys.ANCHOR: _anchor(frame),
            keys.WON: won,
            keys.VALID: valid,
            keys.SYMBOLIC_STATE: {
                "x": float(frame.x),
                "y": float(frame.y),
                "hp": float(frame.hp),
                "max_hp": float(frame.max_hp),
                "time": float(frame.time),
                "steps": float(self._steps),
                "inventory_size": float(len(frame.inventory)),
                "has_key": float(frame.has("key")),
                "stairs_visible": float(len(stairs) > 0),
                "distance_to_stairs": float(distance),
                "boulders_visible": float(tables.boulder[glyphs].sum()),
                "water_visible": float((tables.kind[glyphs] == view.WATER_CELL).sum()),
                "closed_doors_visible": float((tables.kind[glyphs] == view.CLOSED_DOOR).sum()),
                "explored_cells": float((frame.chars != ord(" ")).sum()),
            },
            keys.EVENTS: events,
            "message": frame.message,
            "end_status": self._end_status,
            "level_seed": self.level_seed,
        }


def _anchor(frame: view.Frame) -> tuple:
    return (frame.x, frame.y, frame.glyphs.tobytes(), frame.inventory)
