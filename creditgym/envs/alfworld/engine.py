"""ALFWorld's TextWorld-PDDL engine, built the way ``alfworld`` builds it, and driven safely.

``AlfredTWEnv.init_env`` registers the games with ``textworld.gym`` behind ALFWorld's wrappers;
this module stacks the same ones on one `textworld.envs.PddlEnv`: ``AlfredDemangler`` (entity
names such as ``apple 1``), ``AlfredInfos`` (the game file) and ``AlfredExpert`` with the
handcoded TextWorld expert (``extra.expert_plan``), asking for admissible commands, facts and
the win flag. Three of the engine's habits are guarded here:

* ``fast_downward.pddl2sas`` overwrites ``sys.argv`` on every load and reset; it is put back.
  It also translates the PDDL problem anew at every load and reset (twice: once for playing,
  once for replanning), seconds for an ALFWorld kitchen; the translation is a pure function of
  the domain and problem, so each engine keeps those of its last few games and reuses them.
* the handcoded expert draws from Python's global `random` and raises when it gives up or
  times out (which would end ``step`` with an exception); it runs on a random state of its own,
  and a failure leaves the plan at ALFWorld's fallback ``["look"]`` with ``expert_failed`` set.
* each engine loads its own copy of Fast Downward's shared library, and unloading one
  (``fast_downward.close_lib``: its ``cleanup`` and ``dlclose``) crashes the interpreter later
  (a segmentation fault at exit after 40 envs made and closed in one process); `close` drops the
  engine and leaves the copy loaded until the process exits, as ``alfworld``'s own envs do.
"""

from __future__ import annotations

import hashlib
import random
import sys
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from creditgym.envs.optional import require

__all__ = ["AlfredEngine"]

#: Games whose PDDL translations an engine keeps (a few MB each for a big kitchen).
REMEMBERED_GAMES = 4


class _RememberingDownward:
    """Fast Downward's module as the engine sees it, with `pddl2sas` remembered per problem."""

    def __init__(self, fast_downward: ModuleType, translations: OrderedDict) -> None:
        self._fast_downward = fast_downward
        self._translations = translations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fast_downward, name)

    def pddl2sas(self, domain: str, problem: str, verbose: bool = False, optimize: bool = False):
        key = (hashlib.sha1(f"{domain}\0{problem}".encode()).hexdigest(), bool(optimize))
        if key in self._translations:
            self._translations.move_to_end(key)
        else:
            self._translations[key] = self._fast_downward.pddl2sas(
                domain, problem, verbose=verbose, optimize=optimize
            )
            while len(self._translations) > 2 * REMEMBERED_GAMES:
                self._translations.popitem(last=False)
        return self._translations[key]


class AlfredEngine:
    """One ALFWorld game at a time: ``load(game_file)``, ``reset()``, ``step(command)``.

    The states returned are TextWorld `GameState`s with ``feedback``, ``admissible_commands``,
    ``facts``, ``won`` and ``extra.expert_plan``.
    """

    def __init__(self) -> None:
        textworld = require("textworld", "alfworld")
        require("fast_downward", "alfworld")  # textworld[pddl]: PddlEnv's planner
        from textworld.envs import PddlEnv

        alfred_tw_env = require("alfworld.agents.environment.alfred_tw_env", "alfworld")

        class GuardedAlfredExpert(alfred_tw_env.AlfredExpert):
            """ALFWorld's expert wrapper, whose expert may fail without failing the step."""

            expert_failed = False

            def _gather_infos(self) -> None:
                # ALFWorld 0.4 renamed "put X in/on Y" to "move X to Y" but its handcoded
                # expert still tracks "put": told the new spelling, it believes it still holds
                # what it put down (alfworld PR #114). It is told the spelling it reads.
                if self.prev_command.startswith("move "):
                    self.prev_command = "put " + self.prev_command[5:].replace(" to ", " in/on ", 1)
                try:
                    super()._gather_infos()
                except Exception:  # HandCodedAgentTimeout/Failed, or a slip of its own (#128)
                    self.expert_failed = True
                    self.state["extra.expert_plan"] = ["look"]

            def reset(self) -> Any:
                self.expert_failed = False
                return super().reset()

        request = textworld.EnvInfos(
            won=True, admissible_commands=True, facts=True, extras=["gamefile", "expert_plan"]
        )
        engine = PddlEnv(request)
        engine = alfred_tw_env.AlfredDemangler(engine, shuffle=False)
        engine = alfred_tw_env.AlfredInfos(engine)
        self._env = GuardedAlfredExpert(engine, expert_type="handcoded")
        self._expert_random = random.Random(0).getstate()
        self._pddl_logic = require("textworld.envs.pddl.logic", "alfworld")
        # (hash of domain and problem, optimize) -> translation, least recently used first
        self._translations: OrderedDict = OrderedDict()
        self.game_file: str | None = None

    # -- Playing -------------------------------------------------------------------------------
    def load(self, game_file: str) -> None:
        with self._engine_calls():
            self._env.load(game_file)
        self.game_file = game_file

    def reset(self, expert_seed: int) -> Any:
        """The game's start; `expert_seed` seeds the expert's random choices this episode."""
        self._expert_random = random.Random(expert_seed).getstate()
        with self._engine_calls(), self._expert_randomness():
            return self._env.reset()

    def step(self, command: str) -> Any:
        with self._expert_randomness():
            state, _, _ = self._env.step(command)
        return state

    @property
    def expert_failed(self) -> bool:
        """Whether the handcoded expert gave up (or timed out) this episode."""
        return bool(self._env.expert_failed)

    def close(self) -> None:
        """Drop the game; the library copy stays loaded (see the module docstring)."""
        self._env.close()
        self._translations.clear()

    @contextmanager
    def _engine_calls(self) -> Iterator[None]:
        """Translations remembered, and ``sys.argv`` put back, around a load or reset."""
        argv, fast_downward = sys.argv, self._pddl_logic.fast_downward
        self._pddl_logic.fast_downward = _RememberingDownward(fast_downward, self._translations)
        try:
            yield
        finally:
            self._pddl_logic.fast_downward = fast_downward
            sys.argv = argv

    @contextmanager
    def _expert_randomness(self) -> Iterator[None]:
        """Python's global `random` holds the expert's own state for the block."""
        saved = random.getstate()
        random.setstate(self._expert_random)
        try:
            yield
        finally:
            self._expert_random = random.getstate()
            random.setstate(saved)
