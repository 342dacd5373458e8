"""`TextWorldEnv`: any TextWorld game, or a generated challenge game per seed, as a text env."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym

from creditgym.envs import info as keys
from creditgym.envs.optional import require
from creditgym.envs.oracle import cannot_clone
from creditgym.envs.reset_args import reset_arguments
from creditgym.envs.spaces import text_space
from creditgym.envs.tw.games import challenge_settings, game_json, generate_game, quest_facts
from creditgym.envs.tw.text import clean_feedback, fact_strings, normalize_command, printable

__all__ = ["TextWorldEnv"]

MAX_TEXT = 8192
GAME_OVER = "The game is over. Call reset() to play again."
#: What the env asks TextWorld to report after every step (`textworld.EnvInfos` flags).
REQUESTED_INFOS = (
    "admissible_commands", "description", "inventory", "objective", "policy_commands", "facts",
    "won", "lost", "score", "max_score", "moves", "feedback",
)  # fmt: skip


class TextWorldEnv(gym.Env):
    """Play a TextWorld text adventure: a game file, or a generated challenge game per seed.

    ## Description
    TextWorld (Côté et al. 2018, arXiv 1806.11532) compiles generated worlds and quests to
    Inform 7 story files and tracks the true game state as logical facts. This env plays any
    TextWorld game (``game_file=path/to/game.z8`` with its ``.json`` beside it, as written by
    ``tw-make``), or, given a ``challenge``, generates the game of each seed offline with
    TextWorld's own generator and caches it (see `games.py`): coin collector, treasure hunter
    and the cooking games of the First TextWorld Problems.

    ## Action space
    `text_space()`: one command such as ``go north``, ``take coin``, ``open fridge``.
    Commands are lower-cased, trailing punctuation dropped; chains (``.``, ``then``),
    characters other than letters, digits, spaces, ``'`` and ``-``, and meta-commands
    (``quit``, ``restart``, ``save``, ...) are refused without reaching the game. The
    admissible actions are TextWorld's admissible commands for the current state.

    ## Observation space
    `text_space(8192)`: after `reset`, the objective and the room description; after a step,
    the game's response (interpreter prompt and status line removed).

    ## Rewards
    The increase of the game's score divided by its maximum score, so a won game's rewards
    sum to 1 (coin collector and treasure hunter have one point; cooking games one per recipe
    step).

    ## Starting state
    The game's start. With a ``challenge``: ``reset(seed=s)`` plays the game generated with
    seed ``s`` (``s % num_games`` when ``num_games`` is set); unseeded resets draw the game seed
    from the env's RNG (from ``range(num_games)`` when set, so a fixed pool of cached games is
    reused). A game file does not depend on the seed: TextWorld games are deterministic.

    ## Episode end
    Terminated when the game is won or lost. Truncated after ``max_steps`` steps (refused and
    unknown commands count).

    ## Arguments
    * ``game_file`` (None): a TextWorld ``.z8``/``.ulx`` game with its ``.json`` beside it.
    * ``challenge`` (None): ``"tw-coin_collector"``, ``"tw-treasure_hunter"`` or ``"tw-cooking"``;
      give exactly one of ``game_file`` and ``challenge``.
    * ``settings`` (None): the challenge's difficulty settings (`games.CHALLENGE_DEFAULTS`),
      e.g. ``{"level": 5}`` or ``{"recipe": 2, "take": 2, "go": 6, "open": True}``.
    * ``num_games`` (None): play only game seeds ``0 .. num_games-1``.
    * ``max_steps`` (100): step budget.
    * ``cache_dir`` (None): cache base folder; default ``$CREDITGYM_CACHE`` or
      ``~/.cache/creditgym``.

    ## Task types
    ``info["task_type"]``: ``coin_collector``, ``treasure_hunter``, ``cooking`` or ``custom``
    (a game file).

    ## Info keys
    * ``task``: the game's objective text. ``admissible_actions``: admissible commands.
    * ``anchor``: frozenset of the game's true facts as strings (``"at(player, kitchen)"``,
      ``"open(fridge)"``): the complete logical state TextWorld tracks.
    * ``won``; ``valid``: the command was admissible in the previous state or changed a fact
      (a refused, unknown or no-effect command is invalid, ``look`` and ``examine`` are valid).
    * ``symbolic_state``: score, max_score, moves, steps, inventory_size, num_facts,
      quest_facts_reached, num_admissible, won, lost.
    * ``events``: ``"fact: <fact>"`` when a fact of the quest's winning actions becomes true
      for the first time this episode (`games.quest_facts`), ``"score: S/M"`` when the score
      goes up, ``"won"``, ``"lost"``.
    * ``score``, ``max_score``, ``moves``, ``game_file``, ``game_seed`` (None for a game file),
      ``description``, ``inventory``.

    ## The expert
    ``env.unwrapped.expert_action()``: the first of TextWorld's ``policy_commands``, a
    shortest winning command sequence recomputed from the current state, so it recovers after
    the agent deviates; ``"look"`` once nothing is left to do. ``env.unwrapped.steps_to_go()``
    is that sequence's length (0 once won; None once lost, or where TextWorld gives no winning
    sequence): TextWorld recomputes it from the true state, so it holds off the walkthrough
    too. The state cannot be cloned (`clone_state` raises NotImplementedError): the game runs
    in an interpreter whose state this env does not copy.

    ## Version history
    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi"]}
    supports_state_cloning = False  # see `clone_state`

    def __init__(
        self,
        game_file: str | os.PathLike | None = None,
        challenge: str | None = None,
        settings: dict[str, Any] | None = None,
        num_games: int | None = None,
        max_steps: int = 100,
        cache_dir: str | os.PathLike | None = None,
        render_mode: str | None = None,
    ) -> None:
        self._textworld = require("textworld", "textworld")
        if (game_file is None) == (challenge is None):
            raise ValueError(
                "give exactly one of game_file (a TextWorld .z8/.ulx game) and challenge "
                "('tw-coin_collector', 'tw-treasure_hunter', 'tw-cooking'); got "
                f"game_file={game_file!r}, challenge={challenge!r}."
            )
        if game_file is not None:
            game_file = Path(game_file)
            if not game_file.is_file() or not game_json(game_file).is_file():
                raise FileNotFoundError(
                    f"TextWorld game {str(game_file)!r} or its {game_json(game_file).name!r} "
                    "is missing; make one with "
                    "`tw-make tw-coin_collector --level 1 --output game.z8`, which writes both."
                )
            self.settings: dict[str, Any] = {}
        else:
            self.settings = challenge_settings(challenge, settings)
        if num_games is not None and num_games < 1:
            raise ValueError(f"num_games must be a positive number of game seeds, got {num_games}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.game_file = game_file
        self.challenge = challenge
        self.num_games = num_games
        self.max_steps = max_steps
        self.cache_dir = cache_dir
        self.render_mode = render_mode
        self.task_type = challenge.removeprefix("tw-") if challenge else "custom"
        self.observation_space = text_space(MAX_TEXT)
        self.action_space = text_space()
        self._request = self._textworld.EnvInfos(**dict.fromkeys(REQUESTED_INFOS, True))
        self._game: Any = None  # the running textworld Environment
        self._game_path: Path | None = None
        self._quest_facts: frozenset[str] = frozenset()
        self._state: Any = None  # the last textworld GameState
        self._facts: frozenset[str] = frozenset()
        self._reached: set[str] = set()
        self._game_seed: int | None = None
        self._steps = 0
        self._over = False
        self._observation = ""

    # -- Gymnasium API -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict]:
        seed, options = reset_arguments(seed, options, type(self).__name__)
        super().reset(seed=seed)
        path = self._choose_game(seed)
        if path != self._game_path:
            if self._game is not None:
                self._game.close()
            with (
                warnings.catch_warnings()
            ):  # Jericho warns that it cannot track TextWorld games' score
                warnings.simplefilter("ignore")
                self._game = self._textworld.start(str(path), request_infos=self._request)
            self._game_path = path
            self._quest_facts = quest_facts(path)
        with warnings.catch_warnings():  # Jericho warns that it cannot track TextWorld games' score
            warnings.simplefilter("ignore")
            self._state = self._game.reset()
        self._facts = fact_strings(self._state["facts"])
        self._reached = set(self._facts & self._quest_facts)
        self._steps = 0
        self._over = False
        objective = self._state["objective"] or ""
        self._observation = self._text(f"{objective}\n\n{self._state['description'] or ''}")
        return self._observation, self._info(valid=True, events=[])

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before step() on TextWorldEnv")
        if self._over:
            return GAME_OVER, 0.0, True, False, self._info(valid=False, events=[])
        self._steps += 1
        command, problem = normalize_command(action)
        reward, events, valid = 0.0, [], False
        if problem is not None:
            self._observation = problem
        else:
            previous_admissible = set(self._state["admissible_commands"] or ())
            previous_facts, previous_score = self._facts, self._state["score"]
            self._state, _, done = self._game.step(command)
            self._facts = fact_strings(self._state["facts"])
            self._observation = self._text(self._state.feedback or "")
            valid = command in previous_admissible or self._facts != previous_facts
            reward = (self._state["score"] - previous_score) / max(1, self._state["max_score"])
            events = self._events(previous_score)
            self._over = bool(done)
        truncated = not self._over and self._steps >= self.max_steps
        return self._observation, float(reward), self._over, truncated, self._info(valid, events)

    def render(self) -> str | None:
        return self._observation if self.render_mode == "ansi" else None

    def close(self) -> None:
        if self._game is not None:
            self._game.close()
            self._game = None
            self._game_path = None
            self._state = None

    # -- The expert ----------------------------------------------------------------------------
    def expert_action(self) -> str:
        """The next command of a shortest winning sequence from the current state."""
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before expert_action()")
        policy = self._state["policy_commands"] or []
        return policy[0] if policy and not self._over else "look"

    def steps_to_go(self) -> int | None:
        """Length of TextWorld's shortest winning command sequence from the current state.

        0 once won; None once lost or over otherwise, or where TextWorld offers no sequence.
        """
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before steps_to_go()")
        if self._state["won"]:
            return 0
        policy = self._state["policy_commands"]
        return len(policy) if policy and not self._over else None

    def clone_state(self) -> object:
        """Not supported: raises NotImplementedError (see the class docstring)."""
        raise cannot_clone(self, "its game runs in a z-machine interpreter this env cannot copy")

    def restore_state(self, snapshot: object) -> tuple[str, dict]:
        """Not supported, like `clone_state`."""
        raise cannot_clone(self, "its game runs in a z-machine interpreter this env cannot copy")

    # -- Internals -----------------------------------------------------------------------------
    def _choose_game(self, seed: int | None) -> Path:
        if self.game_file is not None:
            return self.game_file
        if seed is not None:
            game_seed = seed % self.num_games if self.num_games else int(seed)
        else:
            game_seed = int(self.np_random.integers(self.num_games or 2**31 - 1))
        self._game_seed = game_seed
        return generate_game(self.challenge, self.settings, game_seed, self.cache_dir)

    def _text(self, text: str) -> str:
        return printable(clean_feedback(text), MAX_TEXT)

    def _events(self, previous_score: int) -> list[str]:
        new_facts = sorted((self._facts & self._quest_facts) - self._reached)
        self._reached.update(new_facts)
        events = [f"fact: {fact}" for fact in new_facts]
        if self._state["score"] > previous_score:
            events.append(f"score: {self._state['score']}/{self._state['max_score']}")
        if self._state["won"]:
            events.append("won")
        if self._state["lost"]:
            events.append("lost")
        return events

    def _info(self, valid: bool, events: list[str]) -> dict[str, Any]:
        state = self._state
        won, lost = bool(state["won"]), bool(state["lost"])
        admissible = [] if self._over else list(state["admissible_commands"] or [])
        return {
            keys.TASK: printable(state["objective"] or ""),
            keys.TASK_TYPE: self.task_type,
            keys.ADMISSIBLE_ACTIONS: admissible,
            keys.ANCHOR: self._facts,
            keys.WON: won,
            keys.VALID: valid,
            keys.SYMBOLIC_STATE: {
                "score": float(state["score"]),
                "max_score": float(state["max_score"]),
                "moves": float(state["moves"] or 0),
                "steps": float(self._steps),
                "inventory_size": float(sum(fact.endswith(", inventory)") for fact in self._facts)),
                "num_facts": float(len(self._facts)),
                "quest_facts_reached": float(len(self._reached)),
                "num_admissible": float(len(admissible)),
                "won": float(won),
                "lost": float(lost),
            },
            keys.EVENTS: events,
            "score": state["score"],
            "max_score": state["max_score"],
            "moves": state["moves"],
            "game_file": str(self._game_path),
            "game_seed": self._game_seed,
            "description": printable(state["description"] or ""),
            "inventory": printable(state["inventory"] or ""),
        }
