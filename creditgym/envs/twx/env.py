"""`TextWorldExpressEnv`: TextWorld Commonsense, CookingWorld and Coin through TextWorldExpress."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from creditgym.envs import info as keys
from creditgym.envs import java_engines
from creditgym.envs.engine_text import normalize_command, printable
from creditgym.envs.reset_args import reset_arguments
from creditgym.envs.spaces import text_space
from creditgym.envs.twx.engine import (
    ENGINE_KIND,
    SPLITS,
    cached_gold_path,
    game_params,
    start_engine,
    state_anchor,
)

__all__ = ["TextWorldExpressEnv"]

MAX_TEXT = 8192
GAME_OVER = "The game is over. Call reset() to play again."
TASK_TYPES = {"twc": "twc", "cookingworld": "cookingworld", "coin": "coin"}
#: Attributes that are configuration or the engine itself, never part of a snapshot.
_NOT_STATE = frozenset({"_engine", "observation_space", "action_space", "spec", "metadata"})


@dataclass(frozen=True)
class _Snapshot:
    """A TextWorldExpress state: the env's attributes; the engine's state is replayed from the
    game seed and the commands sent so far (``_commands`` among them)."""

    state: dict[str, Any]


class TextWorldExpressEnv(gym.Env):
    """A TextWorldExpress game (Jansen & Côté 2022, arXiv 2208.01174) through its own engine.

    ## Description
    TextWorldExpress re-implements three TextWorld benchmarks in Scala, generating a game from
    a seed in microseconds: ``twc`` (TextWorld Commonsense: put household objects away where
    they belong), ``cookingworld`` (the First TextWorld Problems cooking games: read the
    recipe, gather, cut and cook the ingredients, prepare and eat the meal) and ``coin``
    (find the coin). This env runs the ``textworld_express`` package's engine (a JVM started
    through py4j; Java 11+).

    ## Action space
    `text_space()`: one command such as ``take clean brown shirt``, ``open fridge``, ``move
    north``, ``cook red apple in oven``. Whitespace is collapsed and trailing punctuation
    dropped, and a command equal to an admissible action but for case becomes it (the engine
    matches names exactly: ``box of Q-tips``); commands over 200 characters, characters
    outside letters, digits, spaces and ``'-(),`` and non-strings are refused without
    reaching the engine.

    ## Observation space
    `text_space(8192)`: after `reset`, the task description and the engine's first
    observation (the room); after a step, the engine's response.

    ## Rewards
    The change of the engine's normalized score (0-1): twc scores each object put away,
    cookingworld each recipe step, coin taking the coin; a won game's rewards sum to 1.

    ## Starting state
    Game ``n`` of the split: ``reset(seed=n)`` plays the engine's seed ``folds[split][n %
    len]`` (train 0-999, dev 10000-10999, test 20000-20999: their worlds share no seed);
    unseeded resets draw ``n`` from the env's RNG. The engine is deterministic: the same seed
    and commands give the same game.

    ## Episode end
    Terminated when the engine reports success or failure (cookingworld fails on a wrongly
    prepared ingredient or an eaten wrong meal). Truncated after ``max_steps`` steps (refused
    and unknown commands count).

    ## Arguments
    * ``game`` ("twc"): ``"twc"``, ``"cookingworld"`` or ``"coin"``.
    * ``params`` (None): the engine's generation parameters, e.g. ``{"numLocations": 1,
      "includeDoors": 0}`` (`engine.GAMES` lists each game's); the engine's defaults
      otherwise (twc: 3 rooms, 4 objects; cookingworld: 11 rooms, 3 ingredients, 10
      distractors, doors; coin: 11 rooms, doors).
    * ``split`` ("train"): ``"train"``, ``"dev"`` or ``"test"``: the engine's seed fold.
    * ``max_steps`` (None): the step budget; 100, or twice the gold path where that is longer.
    * ``cache_dir`` (None): where gold paths are cached (``<cache>/textworld_express``;
      ``$CREDITGYM_CACHE`` or ``~/.cache/creditgym``).

    ## Task types
    ``info["task_type"]``: the game (``twc``, ``cookingworld``, ``coin``).

    ## Info keys
    * ``task``: the engine's task description. ``admissible_actions``: the engine's valid
      actions, sorted (5-40 per state: no cap).
    * ``anchor``: a digest of the engine's whole game state (`engine.state_anchor`): every
      room with everything in it and each object's properties (open, cut, cooked, ...), the
      inventory, the agent's room and the seed.
    * ``won``; ``valid``: the command was one of the engine's valid actions.
    * ``symbolic_state``: score (0-1), score_raw, steps, num_admissible, won, lost.
    * ``events``: ``"score: S"`` (the raw score) when the score goes up, ``"won"``,
      ``"lost"``; the engine exposes no finer subgoals.
    * ``score`` (0-100), ``game_seed``, ``split``, ``gold_length``, ``look``, ``inventory``.

    ## The expert
    ``env.unwrapped.expert_action()``: the next action of the engine's gold path (generated
    with the game; the engine draws coin's walk unseeded, so the first path drawn for a game
    is cached on disk and reused: `engine.cached_gold_path`). A step that plays the gold
    path's next action advances it; any other step leaves it where it is, so after a
    deviation the expert proposes the same gold action again, which works where the deviation
    changed nothing the rest of the path needs (looking, examining, inventory) and may fail
    otherwise (a move away). ``"look around"`` once the gold path is used up. There is no
    ``steps_to_go``: the gold path is not shortest (coin's sweeps rooms) and the engine
    cannot re-plan from the current state.

    ## Cloning
    ``clone_state()`` snapshots the env's attributes and the commands sent since the game was
    generated; ``restore_state(snapshot)`` regenerates the game from its seed and replays
    them (the engine's own ``serialize``/``deserialize`` do the same), which costs about a
    millisecond per step of the prefix, and returns the snapshot's observation and info.

    ## Version history
    * v0: initial version (textworld-express 1.1).
    """

    metadata = {  # noqa: RUF012  (Gymnasium's convention)
        "render_modes": ["ansi"],
        "eval_splits": ("dev", "test"),
    }

    def __init__(
        self,
        game: str = "twc",
        params: Mapping[str, int] | None = None,
        split: str = "train",
        max_steps: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.params = game_params(game, params)  # checks game and params before Java starts
        if split not in SPLITS:
            raise ValueError(f"split={split!r}; expected one of {sorted(SPLITS)}")
        if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
            raise ValueError(f"max_steps={max_steps!r}; expected a positive int or None")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.game = game
        self.split = split
        self.max_steps = max_steps
        self.cache_dir = cache_dir
        self.render_mode = render_mode
        self.observation_space = text_space(MAX_TEXT)
        self.action_space = text_space()
        self._engine: Any = start_engine()
        self._seeds: list[int] = self._fold_seeds()
        self._game_seed: int | None = None
        self._commands: list[str] = []  # sent to the engine since the game was generated
        self._gold: list[str] = []
        self._gold_index = 0
        self._budget = 0
        self._steps = 0
        self._score = 0.0
        self._score_raw = 0.0
        self._over = False
        self._won = False
        self._lost = False
        self._admissible: list[str] = []
        self._observation = ""
        self._last_info: dict[str, Any] = {}

    # -- Gymnasium API -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict]:
        seed, options = reset_arguments(seed, options, type(self).__name__)
        super().reset(seed=seed)
        if options:
            raise ValueError(
                f"unknown reset options {sorted(options)}; TextWorldExpressEnv takes none "
                "(choose the game with the seed)"
            )
        index = seed if seed is not None else int(self.np_random.integers(2**31 - 1))
        self._game_seed = self._seeds[index % len(self._seeds)]
        response = self._generate(self._game_seed)
        self._gold = cached_gold_path(
            self._engine, self.game, self.params, self._game_seed, self.cache_dir
        )
        self._gold_index = 0
        self._budget = self.max_steps or max(100, 2 * len(self._gold))
        self._steps = 0
        self._score, self._score_raw = float(response["score"]), float(response["scoreRaw"])
        self._over = self._won = self._lost = False
        self._admissible = sorted(str(a) for a in response["validActions"])
        task = printable(self._engine.server.getTaskDescription())
        self._observation = printable(f"{task}\n\n{response['observation']}", MAX_TEXT).strip()
        self._last_info = self._info(response, task, valid=True, events=[])
        return self._observation, copy.deepcopy(self._last_info)

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict]:
        if self._game_seed is None:
            raise gym.error.ResetNeeded("call reset() before step() on TextWorldExpressEnv")
        if self._over:
            info = {**copy.deepcopy(self._last_info), keys.VALID: False, keys.EVENTS: []}
            return GAME_OVER, 0.0, True, False, info
        self._steps += 1
        command, problem = normalize_command(action, self._admissible)
        reward = 0.0
        if problem is not None:
            self._observation = problem
            info = {**copy.deepcopy(self._last_info), keys.VALID: False, keys.EVENTS: []}
            info[keys.SYMBOLIC_STATE]["steps"] = float(self._steps)
        else:
            valid = command in self._admissible
            if self._gold_index < len(self._gold) and command == self._gold[self._gold_index]:
                self._gold_index += 1
            response = self._send(command)
            score, score_raw = float(response["score"]), float(response["scoreRaw"])
            reward = score - self._score
            events = [f"score: {score_raw:g}"] if score_raw > self._score_raw else []
            self._score, self._score_raw = score, score_raw
            self._won = bool(response["tasksuccess"]) or score >= 1.0
            self._lost = bool(response["taskfailure"]) and not self._won
            self._over = self._won or self._lost
            events += ["won"] if self._won else ["lost"] if self._lost else []
            self._admissible = [] if self._over else sorted(map(str, response["validActions"]))
            self._observation = printable(response["observation"], MAX_TEXT).strip()
            task = self._last_info[keys.TASK]
            self._last_info = info = self._info(response, task, valid, events)
            info = copy.deepcopy(info)
        truncated = not self._over and self._steps >= self._budget
        return self._observation, float(reward), self._over, truncated, info

    def render(self) -> str | None:
        return self._observation if self.render_mode == "ansi" else None

    def close(self) -> None:
        if self._engine is not None:
            java_engines.release(ENGINE_KIND, self._engine)
            self._engine = None
            self._game_seed = None

    # -- The expert and cloning -----------------------------------------------------------------
    def expert_action(self) -> str:
        """The gold path's next action (see the class docstring)."""
        if self._game_seed is None:
            raise gym.error.ResetNeeded("call reset() before expert_action()")
        if self._over or self._gold_index >= len(self._gold):
            return "look around"
        return self._gold[self._gold_index]

    def clone_state(self) -> object:
        """A snapshot of this env's state (restored by replaying; see the class docstring)."""
        if self._game_seed is None:
            raise gym.error.ResetNeeded("call reset() before clone_state()")
        state = {name: value for name, value in vars(self).items() if name not in _NOT_STATE}
        return _Snapshot(copy.deepcopy(state))

    def restore_state(self, snapshot: object) -> tuple[str, dict]:
        """Put the env back in `snapshot`'s state (from `clone_state` of an env made with the
        same arguments); returns its observation and info."""
        if not isinstance(snapshot, _Snapshot):
            raise TypeError(
                f"restore_state takes a snapshot from TextWorldExpressEnv.clone_state(), not "
                f"{type(snapshot).__name__}"
            )
        state = copy.deepcopy(snapshot.state)
        if (state["game"], state["params"], state["split"]) != (
            self.game,
            self.params,
            self.split,
        ):
            raise ValueError(
                "this snapshot comes from a TextWorldExpressEnv with other arguments "
                f"(game={state['game']!r}, params={state['params']!r}, split={state['split']!r})"
            )
        self._generate(state["_game_seed"])
        for command in state["_commands"]:
            self._send(command, record=False)
        vars(self).update(state)
        return self._observation, copy.deepcopy(self._last_info)

    # -- Internals -----------------------------------------------------------------------------
    def _fold_seeds(self) -> list[int]:
        server = self._engine.server
        fetch = {"train": server.getSeedsTrain, "dev": server.getSeedsDev}
        seeds = [int(s) for s in fetch.get(self.split, server.getSeedsTest)()]
        if not seeds:
            raise RuntimeError(f"TextWorldExpress lists no {self.split} seeds")
        return seeds

    def _generate(self, game_seed: int) -> dict[str, Any]:
        """A fresh game of `game_seed` in the engine; its first response."""
        message = self._engine.server.load(self.game, self.params)
        if message:
            raise ValueError(f"TextWorldExpress refused game {self.game!r}: {message}")
        self._commands = []
        fold = SPLITS[self.split]
        return json.loads(self._engine.server.generateNewGameJSON(game_seed, fold, True))

    def _send(self, command: str, record: bool = True) -> dict[str, Any]:
        if record:
            self._commands.append(command)
        return json.loads(self._engine.server.stepJSON(command))

    def _info(
        self, response: Mapping[str, Any], task: str, valid: bool, events: list[str]
    ) -> dict[str, Any]:
        return {
            keys.TASK: task,
            keys.TASK_TYPE: TASK_TYPES[self.game],
            keys.ADMISSIBLE_ACTIONS: list(self._admissible),
            keys.ANCHOR: state_anchor(self._engine, int(self._game_seed or 0)),
            keys.WON: self._won,
            keys.VALID: valid,
            keys.SYMBOLIC_STATE: {
                "score": self._score,
                "score_raw": self._score_raw,
                "steps": float(self._steps),
                "num_admissible": float(len(self._admissible)),
                "won": float(self._won),
                "lost": float(self._lost),
            },
            keys.EVENTS: events,
            "score": 100.0 * self._score,
            "game_seed": self._game_seed,
            "split": self.split,
            "gold_length": len(self._gold),
            "look": printable(response.get("look", "")),
            "inventory": printable(response.get("inventory", "")),
        }
