"""`ScienceWorldEnv`: ScienceWorld's 30 science tasks, played through the engine itself."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from creditgym.envs import info as keys
from creditgym.envs import java_engines
from creditgym.envs.engine_text import normalize_command, printable
from creditgym.envs.oracle import cannot_clone
from creditgym.envs.reset_args import reset_arguments
from creditgym.envs.sciworld.actions import FORBIDDEN_COMMANDS, admissible_actions
from creditgym.envs.sciworld.engine import (
    ENGINE_KIND,
    SPLITS,
    load_task,
    start_engine,
    task_names,
    variation_folds,
)
from creditgym.envs.sciworld.state import state_anchor, subgoals
from creditgym.envs.spaces import text_space

__all__ = ["ScienceWorldEnv"]

MAX_TEXT = 8192
GAME_OVER = "The task is over. Call reset() to play again."
UNKNOWN_ACTION = "No known action matches that input."
#: The engine asks which reading of an ambiguous command was meant, and waits for a number.
AMBIGUOUS = "Ambiguous request"
DEFAULT_MAX_ADMISSIBLE = 256


class ScienceWorldEnv(gym.Env):
    """ScienceWorld (Wang et al. 2022, arXiv 2203.07540) through its own simulator.

    ## Description
    ScienceWorld is a text simulator of a house, a greenhouse, a workshop and the outdoors
    with thermodynamics, electricity, chemistry, genetics and life cycles. Its 30 tasks
    (boil, freeze, build a circuit, test conductivity, grow a plant, find a living thing,
    measure a melting point, Mendelian genetics, ...) each come in many *variations* (other
    substances, objects, rooms), split by the engine into train, dev and test folds. This env
    runs the ``scienceworld`` package's Scala engine (a JVM started through py4j; Java 11+).

    ## Action space
    `text_space()`: one command such as ``open door to kitchen``, ``pick up thermometer``,
    ``move metal pot to stove``, ``focus on water``, ``wait1``. Whitespace is collapsed,
    trailing punctuation dropped, and a command equal to an admissible action but for case
    becomes it; commands over 200 characters,
    characters outside letters, digits, spaces and ``'-(),``, non-strings and ``reset task``
    are refused without reaching the engine. An ambiguous command is resolved to the engine's
    first reading (the engine asks for a number; the env answers ``0``).

    ## Observation space
    `text_space(8192)`: after `reset`, the task description and the engine's ``look around``;
    after a step, the engine's response.

    ## Rewards
    The change of the engine's score (0-100) divided by 100: ScienceWorld scores partial
    progress (subgoals), so rewards are dense and a completed task's rewards sum to 1. A
    failed task (focusing on the wrong object) sets the score to -100 (rewards sum to -1).

    ## Starting state
    Task ``n`` of the split: ``reset(seed=n)`` plays task type ``tasks[n % len(tasks)]``,
    variation ``folds[split][n // len(tasks) % len(folds[split])]`` of it, so seeds
    ``0 .. len(tasks)-1`` visit every task type once. Unseeded resets draw ``n`` from the
    env's RNG. The engine is deterministic: the same task and commands give the same episode.

    ## Episode end
    Terminated when the engine says the task is complete (``won``) or failed (score below
    zero, ``lost``). Truncated after ``max_steps`` steps (refused commands count).

    ## Arguments
    * ``task`` ("all"): a task name (``"boil"``, ``"find-animal"``, ... as the engine names
      them), a list of names, or ``"all"`` for the 30.
    * ``split`` ("train"): ``"train"``, ``"dev"`` or ``"test"``: the engine's variation fold.
    * ``max_steps`` (None): the step budget; by default 100, or twice the gold path where that
      is longer (the longest gold paths, inclined planes and genetics, run to 100-180 steps).
    * ``max_admissible`` (256): the most admissible actions offered (None: all; below).
    * ``simplifications`` (""): the engine's simplification string (``"easy"``,
      ``"teleportAction,openDoors"``, ...); the papers' numbers use none.
    * ``cache_dir`` (None): where the variation folds and gold paths are cached
      (``<cache>/scienceworld/<version>``; ``$CREDITGYM_CACHE`` or ``~/.cache/creditgym``).

    ## Task types
    ``info["task_type"]``: the engine's task name (``boil``, ``chemistry-mix``, ...).

    ## Info keys
    * ``task``: the engine's task description. ``admissible_actions``: the engine's valid
      actions, one per (template, objects), ``reset task`` dropped, capped at
      ``max_admissible`` by keeping the zero- and one-object actions and a sample of the
      two-object ones seeded by the state (`actions.py`); the gold action is never added, and
      the env accepts any command the engine parses, listed or not. The engine's gold paths
      use names its valid list never produces (``examine lead``, other names of a door), so
      a good share of the expert's actions are not in the list.
    * ``anchor``: a digest of the engine's whole object tree with its object ids removed
      (`state.py`): every object's place, properties, state of matter and device state;
      temperatures are left out (the engine does not reproduce them to the last digit).
    * ``won``; ``valid``: the engine understood the command (not refused by the env, not "No
      known action matches that input.").
    * ``symbolic_state``: score, steps, moves, subgoals_done, subgoals_total, num_valid
      (distinct valid actions before the cap), num_admissible, won, lost.
    * ``events``: ``"subgoal: <description>"`` when one of the engine's goal-progress
      subgoals becomes true for the first time, ``"score: S"`` when the score goes up,
      ``"won"``, ``"lost"``.
    * ``score`` (0-100), ``variation``, ``split``, ``gold_length``, ``look``, ``inventory``.

    ## The expert
    ``env.unwrapped.expert_action()``: the next action of the engine's gold action sequence
    (generated with the task). The expert tracks how far along it the episode is: a step that
    plays the gold path's next action advances it; any other step leaves it where it is, so
    after a deviation the expert proposes the same gold action again, which works where the
    deviation changed nothing the rest of the path needs (looking, examining) and may fail
    otherwise (ScienceWorld gives no way to re-plan from an arbitrary state). ``"look around"``
    once the gold path is used up. There is no ``steps_to_go``: the gold path is not shortest
    and cannot be recomputed from the current state.

    ## Cloning
    Not supported (`clone_state` raises NotImplementedError, and ``supports_state_cloning``
    is False, so branch rollouts and Monte-Carlo credit refuse up front): the engine has no
    snapshot, and replaying a prefix costs a task load (about a second) plus 10-20 ms a step.

    ## Version history
    * v0: initial version (scienceworld 1.2).
    """

    metadata = {  # noqa: RUF012  (Gymnasium's convention)
        "render_modes": ["ansi"],
        "eval_splits": ("dev", "test"),
    }
    supports_state_cloning = False  # see `clone_state`

    def __init__(
        self,
        task: str | Sequence[str] = "all",
        split: str = "train",
        max_steps: int | None = None,
        max_admissible: int | None = DEFAULT_MAX_ADMISSIBLE,
        simplifications: str = "",
        cache_dir: str | os.PathLike | None = None,
        render_mode: str | None = None,
    ) -> None:
        known = task_names()  # imports scienceworld (or says which extra installs it)
        self.tasks = _task_list(task, known)
        if split not in SPLITS:
            raise ValueError(f"split={split!r}; expected one of {sorted(SPLITS)}")
        if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
            raise ValueError(f"max_steps={max_steps!r}; expected a positive int or None")
        if max_admissible is not None and (
            not isinstance(max_admissible, int) or max_admissible < 1
        ):
            raise ValueError(f"max_admissible={max_admissible!r}; expected a positive int or None")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.split = split
        self.max_steps = max_steps
        self.max_admissible = max_admissible
        self.simplifications = str(simplifications)
        self.cache_dir = cache_dir
        self.render_mode = render_mode
        self.observation_space = text_space(MAX_TEXT)
        self.action_space = text_space()
        self._engine: Any = start_engine()
        self._task = ""
        self._variation = -1
        self._gold: list[str] = []
        self._gold_index = 0
        self._budget = 0
        self._steps = 0
        self._score = 0
        self._over = False
        self._won = False
        self._done_subgoals: set[int] = set()
        self._subgoals_total = 0
        self._observation = ""
        self._engine_view: dict[str, Any] = {}  # what the engine said about this state

    # -- Gymnasium API -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict]:
        seed, options = reset_arguments(seed, options, type(self).__name__)
        super().reset(seed=seed)
        if options:
            raise ValueError(
                f"unknown reset options {sorted(options)}; ScienceWorldEnv takes none (choose "
                "the task with make(..., task=...) and the variation with the seed)"
            )
        index = seed if seed is not None else int(self.np_random.integers(2**31 - 1))
        task = self.tasks[index % len(self.tasks)]
        fold = variation_folds(self._engine, task, self.cache_dir)[SPLITS[self.split]]
        variation = fold[(index // len(self.tasks)) % len(fold)]
        self._gold = load_task(self._engine, task, variation, self.simplifications, self.cache_dir)
        self._task, self._variation = task, variation
        self._gold_index = 0
        self._budget = self.max_steps or max(100, 2 * len(self._gold))
        self._steps, self._score = 0, 0
        self._over = self._won = False
        goals = subgoals(self._engine.get_goal_progress())
        self._done_subgoals = {i for i, (_, done) in enumerate(goals) if done}
        self._subgoals_total = len(goals)
        description = printable(self._engine.get_task_description())
        self._observation = printable(f"{description}\n\n{self._engine.look()}", MAX_TEXT)
        self._engine_view = {}
        return self._observation, self._info(valid=True, events=[])

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict]:
        if not self._task:
            raise gym.error.ResetNeeded("call reset() before step() on ScienceWorldEnv")
        if self._over:
            return GAME_OVER, 0.0, True, False, self._info(valid=False, events=[], refused=True)
        self._steps += 1
        command, problem = normalize_command(action, self._engine_view.get("offered", ()))
        if problem is None and command in FORBIDDEN_COMMANDS:
            problem = f"The command {command!r} is disabled in this environment."
        reward, events, valid = 0.0, [], False
        if problem is not None:
            self._observation = problem
        else:
            self._observation, valid = self._play(command)
            score = int(round(100 * float(self._engine.server.getScore())))
            reward = (score - self._score) / 100.0
            events = self._events(score)
            self._score = score
            completed = bool(self._engine.server.getCompleted())
            self._won = completed and score > 0
            self._over = completed or score < 0
            if self._won:
                events.append("won")
            elif self._over:
                events.append("lost")
        truncated = not self._over and self._steps >= self._budget
        info = self._info(valid, events, refused=problem is not None)
        return self._observation, float(reward), self._over, truncated, info

    def render(self) -> str | None:
        return self._observation if self.render_mode == "ansi" else None

    def close(self) -> None:
        if self._engine is not None:
            java_engines.release(ENGINE_KIND, self._engine)
            self._engine = None
            self._task = ""

    # -- The expert ----------------------------------------------------------------------------
    def expert_action(self) -> str:
        """The gold action sequence's next action (see the class docstring)."""
        if not self._task:
            raise gym.error.ResetNeeded("call reset() before expert_action()")
        if self._over or self._gold_index >= len(self._gold):
            return "look around"
        return self._gold[self._gold_index]

    def clone_state(self) -> object:
        """Not supported: raises NotImplementedError (see the class docstring)."""
        raise cannot_clone(
            self, "the ScienceWorld engine has no snapshot of a running task to restore"
        )

    def restore_state(self, snapshot: object) -> tuple[str, dict]:
        """Not supported, like `clone_state`."""
        raise cannot_clone(
            self, "the ScienceWorld engine has no snapshot of a running task to restore"
        )

    # -- Internals -----------------------------------------------------------------------------
    def _play(self, command: str) -> tuple[str, bool]:
        """Send `command` to the engine (answering an ambiguity with its first reading)."""
        if self._gold_index < len(self._gold) and command == self._gold[self._gold_index]:
            self._gold_index += 1
        response = str(self._engine.server.step(command))
        if response.startswith(AMBIGUOUS):
            response = str(self._engine.server.step("0"))
        valid = not response.strip().startswith(UNKNOWN_ACTION)
        return printable(response, MAX_TEXT).strip() or "Nothing happens.", valid

    def _events(self, score: int) -> list[str]:
        events = []
        for i, (description, done) in enumerate(subgoals(self._engine.get_goal_progress())):
            if done and i not in self._done_subgoals:
                self._done_subgoals.add(i)
                events.append(f"subgoal: {description}")
        if score > self._score:
            events.append(f"score: {score}")
        return events

    def _info(self, valid: bool, events: list[str], refused: bool = False) -> dict[str, Any]:
        """The info of the current state; the engine is asked again unless the last command
        was refused before reaching it (or the task is over), which changes nothing."""
        if not (refused or (self._over and not events)) or not self._engine_view:
            anchor = state_anchor(self._task, self._engine.getObjectTree())
            if self._over:
                offered, num_valid = [], 0
            else:
                valid_records = self._engine.get_valid_action_object_combinations_with_templates()
                offered, num_valid = admissible_actions(valid_records, self.max_admissible, anchor)
            self._engine_view = {
                "anchor": anchor,
                "offered": offered,
                "num_valid": num_valid,
                "moves": int(self._engine.get_num_moves()),
                "look": printable(self._engine.look()),
                "inventory": printable(self._engine.inventory()),
                "task": printable(self._engine.get_task_description()),
            }
        view = self._engine_view
        lost = self._over and not self._won
        return {
            keys.TASK: view["task"],
            keys.TASK_TYPE: self._task,
            keys.ADMISSIBLE_ACTIONS: list(view["offered"]),
            keys.ANCHOR: view["anchor"],
            keys.WON: self._won,
            keys.VALID: valid,
            keys.SYMBOLIC_STATE: {
                "score": float(self._score),
                "steps": float(self._steps),
                "moves": float(view["moves"]),
                "subgoals_done": float(len(self._done_subgoals)),
                "subgoals_total": float(self._subgoals_total),
                "num_valid": float(view["num_valid"]),
                "num_admissible": float(len(view["offered"])),
                "won": float(self._won),
                "lost": float(lost),
            },
            keys.EVENTS: events,
            "score": float(self._score),
            "variation": self._variation,
            "split": self.split,
            "gold_length": len(self._gold),
            "look": view["look"],
            "inventory": view["inventory"],
        }


def _task_list(task: str | Sequence[str], known: list[str]) -> list[str]:
    """The task names `task` asks for, checked against the engine's."""
    if isinstance(task, str):
        if task == "all":
            return list(known)
        names = [task]
    else:
        names = [str(name) for name in task]
    if not names:
        raise ValueError("task=[]; name at least one ScienceWorld task, or task='all'")
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown ScienceWorld task {name!r}{hint}; expected 'all' or one of: "
                f"{', '.join(known)}"
            )
    return names
