"""`ALFWorldEnv`: ALFWorld's text games through ALFWorld's own TextWorld-PDDL engine."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import gymnasium as gym

from creditgym.cache import cache_root
from creditgym.envs import info as keys
from creditgym.envs.alfworld.engine import AlfredEngine
from creditgym.envs.alfworld.games import OFFICIAL_SPLITS, official_games
from creditgym.envs.alfworld.goals import GoalTracker
from creditgym.envs.alfworld.offline import OFFLINE_SPLITS, TASK_TYPES, offline_game
from creditgym.envs.optional import require
from creditgym.envs.oracle import cannot_clone
from creditgym.envs.reset_args import reset_arguments
from creditgym.envs.spaces import TEXT_CHARSET, text_space

__all__ = ["ALFWorldEnv"]

MAX_TEXT = 8192
MAX_COMMAND_LENGTH = 200
GAME_OVER = "The game is over. Call reset() to play again."
#: The engine's answer to a command it does not know (`textworld.envs.PddlEnv.step`).
NOTHING_HAPPENS = "Nothing happens."
_TASK_LINE = re.compile(r"Your task is to: (.*)")
_CLONE_REASON = (
    "its state lives in Fast Downward's C library, and a copy by replay would cost a fresh "
    "PDDL translation (seconds) per snapshot"
)


class ALFWorldEnv(gym.Env):
    """ALFWorld (Shridhar et al. 2021, arXiv 2010.03768) played through its own engine.

    ## Description
    ALFWorld's text games are PDDL problems over ALFRED's household scenes, played by
    TextWorld's PDDL engine (Fast Downward applies the actions, a TextWorld grammar writes the
    text). This env builds that engine as ``alfworld``'s own ``AlfredTWEnv`` does (`engine.py`)
    and plays either ALFWorld's official games (``offline=False``: found in ``$ALFWORLD_DATA``
    as ``alfworld-download`` leaves them, `games.py`) or games generated offline in ALFWorld's
    format from the floor plans, domain and grammar the package ships (``offline=True``,
    `offline.py`).

    ## Action space
    `text_space()`: one of the engine's admissible commands, such as ``go to fridge 1``,
    ``take apple 1 from countertop 2``, ``heat apple 1 with microwave 1``. Case, extra spaces and
    trailing punctuation are forgiven; a command that is not admissible now is answered
    "Nothing happens." without reaching the engine (the engine's own answer), ``valid=False``.

    ## Observation space
    `text_space(8192)`: the engine's text. After `reset` ALFWorld's intro: the room's
    receptacles and "Your task is to: ...".

    ## Rewards
    1.0 on the step that wins the game (ALFWorld's score), 0.0 otherwise.

    ## Starting state
    The game's start. ``reset(seed=n)`` plays game ``n % N`` of the split's ``N`` games, the
    same game every time; ``reset()`` draws ``n`` from the env's RNG.

    ## Episode end
    Terminated when the game is won. Truncated after ``max_steps`` steps (50, as in the papers
    that report on ALFWorld; refused commands count).

    ## Arguments
    * ``split``: ``"train"``, ``"valid_seen"`` or ``"valid_unseen"``.
    * ``offline`` (False): play generated games instead of ALFWorld's official ones.
    * ``data_dir`` (None): ALFWorld's data folder, the one holding ``json_2.1.1``; default
      ``$ALFWORLD_DATA``, else ``~/.cache/alfworld``. Official games only.
    * ``task_types`` (None: all six): the task types to play (names below).
    * ``num_games`` (None): play only the split's first ``num_games`` games.
    * ``max_steps`` (50): step budget.
    * ``cache_dir`` (None): where generated games are written (``<cache>/alfworld``; cache
      ``$CREDITGYM_CACHE`` or ``~/.cache/creditgym``).
    * ``render_mode``: None or ``"ansi"``.

    ## Task types
    ALFWorld's six: ``pick_and_place_simple``, ``look_at_obj_in_light``,
    ``pick_clean_then_place_in_recep``, ``pick_heat_then_place_in_recep``,
    ``pick_cool_then_place_in_recep``, ``pick_two_obj_and_place``.

    ## Info keys
    * ``task``: the task sentence; ``task_type``; ``admissible_actions``: the engine's
      admissible commands (sorted, as the engine gives them).
    * ``anchor``: a hex digest of the game and the engine's true state facts, sorted (every
      fact of the PDDL state but ``checked``, which records looking and which no action reads).
    * ``won``: the engine's goal check; ``valid``: the command was admissible.
    * ``events``: the goal's conjuncts that involve the task's object, receptacle or lamp, the
      first time each holds this episode (`goals.GoalTracker`): ``"took apple 1"``,
      ``"cleaned apple 1"``, ``"heated ..."``, ``"cooled ..."``, ``"placed apple 1 in fridge 1"``,
      ``"turned on desklamp 1"``, then ``"won"``.
    * ``symbolic_state``: holding, holding_target, target_ready, placed, needed, lamp_on,
      subgoals_reached, steps, num_facts, num_admissible, won.
    * ``game_file``, ``game_index``, ``expert_failed``.

    ## Splits
    Official: ALFWorld's ``train`` (3553 games), ``valid_seen`` (140) and ``valid_unseen``
    (134), the held-out sets the papers report on. Offline: the same names and sizes;
    ``train`` and ``valid_seen`` are different games in the same floor plans, ``valid_unseen``
    uses only ALFRED's four held-out floor plans.

    ## The expert
    ``env.unwrapped.expert_action()`` is the next command of ALFWorld's handcoded TextWorld
    expert (``AlfredExpert`` with ``expert_type="handcoded"``), which watches every step (the
    agent's too) and reads the engine's facts; "look" where it has nothing to say or gave up
    (``info["expert_failed"]``). Its random choices are seeded by the reset seed. It has no plan
    length, so `steps_to_go` returns None. The state cannot be cloned (`clone_state` raises
    NotImplementedError): it lives in Fast Downward's C library.

    ## Version history
    * v0: initial version.
    """

    metadata = {  # noqa: RUF012  (Gymnasium's convention)
        "render_modes": ["ansi"],
        "eval_splits": ("valid_seen", "valid_unseen"),
        "judge_legend": (
            "Observations are ALFWorld's text: where the agent arrives, what it sees on or in "
            "receptacles, and the result of its action. 'Nothing happens.' means the action "
            "had no effect."
        ),
    }
    supports_state_cloning = False  # see `clone_state`

    def __init__(
        self,
        split: str = "train",
        offline: bool = False,
        data_dir: str | os.PathLike | None = None,
        task_types: list[str] | tuple[str, ...] | None = None,
        num_games: int | None = None,
        max_steps: int = 50,
        cache_dir: str | os.PathLike | None = None,
        render_mode: str | None = None,
    ) -> None:
        require("alfworld", "alfworld")  # first: a missing extra outranks missing data
        if split not in OFFICIAL_SPLITS:
            raise ValueError(f"unknown ALFWorld split {split!r}; expected one of {OFFICIAL_SPLITS}")
        chosen = tuple(task_types) if task_types is not None else TASK_TYPES
        unknown = sorted(set(chosen) - set(TASK_TYPES))
        if unknown or not chosen:
            raise ValueError(f"unknown task type(s) {unknown}; choose from {list(TASK_TYPES)}")
        if num_games is not None and (not isinstance(num_games, int) or num_games < 1):
            raise ValueError(f"num_games must be a positive int or None, got {num_games!r}")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.split = split
        self.offline = offline
        self.task_types = chosen
        self.max_steps = max_steps
        self.render_mode = render_mode
        self._cache = cache_root(cache_dir) / "alfworld"
        if offline:
            count = OFFLINE_SPLITS[split]
            self._games: list[Any] = [
                i for i in range(count) if TASK_TYPES[i % len(TASK_TYPES)] in chosen
            ]
        else:
            self._games = official_games(split, data_dir, chosen)
        self._games = self._games[:num_games]
        self.observation_space = text_space(MAX_TEXT)
        self.action_space = text_space()
        self._engine = AlfredEngine()
        self._state: Any = None
        self._goals: GoalTracker | None = None
        self._game_file: str | None = None
        self._game_index: int | None = None
        self._task = ""
        self._task_type = ""
        self._anchor = ""
        self._steps = 0
        self._over = False
        self._observation = ""

    @property
    def game_count(self) -> int:
        """How many games this env plays (``reset(seed=n)`` plays game ``n % game_count``)."""
        return len(self._games)

    # -- Gymnasium API -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict]:
        seed, options = reset_arguments(seed, options, type(self).__name__)
        super().reset(seed=seed)
        index = seed if seed is not None else int(self.np_random.integers(2**31 - 1))
        self._game_index = index % len(self._games)
        game_file = self._game_file_of(self._game_index)
        if game_file != self._game_file:
            self._engine.load(game_file)
            self._game_file = game_file
            self._goals = GoalTracker.from_game(Path(game_file))
        self._task_type = self._goals.task_type
        self._state = self._engine.reset(expert_seed=index)
        self._goals.reset(self._state["facts"])
        self._steps = 0
        self._over = False
        self._observation = _printable(self._state.feedback or "")
        found = _TASK_LINE.search(self._observation)
        self._task = found.group(1).strip() if found else ""
        self._anchor = self._anchor_of(self._state["facts"])
        return self._observation, self._info(valid=True, events=[])

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before step() on ALFWorldEnv")
        if self._over:
            return GAME_OVER, 0.0, True, False, self._info(valid=False, events=[])
        self._steps += 1
        command = _normalize(action)
        valid = command in (self._state["admissible_commands"] or ())
        events: list[str] = []
        if valid:
            self._state = self._engine.step(command)
            self._observation = _printable(self._state.feedback or "")
            self._anchor = self._anchor_of(self._state["facts"])
            events = self._goals.update(self._state["facts"])
        else:
            self._observation = NOTHING_HAPPENS
        won = bool(self._state["won"])
        if won:
            events.append("won")
        self._over = won
        truncated = not won and self._steps >= self.max_steps
        return self._observation, float(won), won, truncated, self._info(valid, events)

    def render(self) -> str | None:
        return self._observation if self.render_mode == "ansi" else None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
            self._state = None

    # -- The expert ----------------------------------------------------------------------------
    def expert_action(self) -> str:
        """The handcoded expert's next command ("look" once over or where it has none)."""
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before expert_action()")
        plan = self._state["extra.expert_plan"] or ["look"]
        return "look" if self._over else str(plan[0])

    def steps_to_go(self) -> int | None:
        """0 once won, else None: the handcoded expert is reactive and has no plan length."""
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before steps_to_go()")
        return 0 if self._state["won"] else None

    def clone_state(self) -> object:
        """Not supported: raises NotImplementedError (see the class docstring)."""
        raise cannot_clone(self, _CLONE_REASON)

    def restore_state(self, snapshot: object) -> tuple[str, dict]:
        """Not supported, like `clone_state`."""
        raise cannot_clone(self, _CLONE_REASON)

    # -- Internals -----------------------------------------------------------------------------
    def _game_file_of(self, index: int) -> str:
        if self.offline:
            return str(offline_game(self.split, self._games[index], self._cache).game_file)
        return str(self._games[index])

    def _anchor_of(self, facts: list[Any]) -> str:
        state = sorted(f for f in map(_fact_string, facts) if not f.startswith("checked("))
        blob = "\n".join([str(self._game_file), *state])
        return hashlib.sha1(blob.encode()).hexdigest()

    def _info(self, valid: bool, events: list[str]) -> dict[str, Any]:
        won = bool(self._state["won"])
        admissible = [] if self._over else list(self._state["admissible_commands"] or [])
        symbolic = self._goals.symbolic_state(self._state["facts"])
        symbolic.update(
            steps=float(self._steps),
            num_facts=float(len(self._state["facts"])),
            num_admissible=float(len(admissible)),
            won=float(won),
        )
        return {
            keys.TASK: self._task,
            keys.TASK_TYPE: self._task_type,
            keys.ADMISSIBLE_ACTIONS: admissible,
            keys.ANCHOR: self._anchor,
            keys.WON: won,
            keys.VALID: valid,
            keys.SYMBOLIC_STATE: symbolic,
            keys.EVENTS: events,
            "game_file": self._game_file,
            "game_index": self._game_index,
            "expert_failed": self._engine.expert_failed,
        }


def _normalize(action: Any) -> str:
    """The command as the engine spells it: lower case, single spaces, no end punctuation."""
    if not isinstance(action, str) or len(action) > MAX_COMMAND_LENGTH:
        return ""
    return " ".join(action.lower().split()).strip(" .!?\"'")


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch in TEXT_CHARSET)[:MAX_TEXT].strip()


def _fact_string(fact: Any) -> str:
    """``"inreceptacle(apple 1, fridge 1)"``: a fact with ALFWorld's display names."""
    return f"{fact.name}({', '.join(arg.name.strip() for arg in fact.arguments)})"
