"""A small env with the oracle hooks (cost-to-go, clone/restore), for credit-fidelity tests.

`DetourCorridor`: squares 0..length, start at 0, the door at `length`. Actions: ``go east``
(one square closer), ``go west`` (one back, never below 0) and ``look`` (stay). Reward 1 on
reaching the door (the episode ends there); the episode is cut after `max_steps` steps. Random
play wanders back and forth, so detours revisit squares: the anchor (the square) recurs within
and across episodes, which is what GiGPO's step groups use. The expert's cost-to-go is
``length - square``; its action is always ``go east``.
"""

from __future__ import annotations

import gymnasium as gym

import creditgym
from creditgym.envs import info as keys
from creditgym.envs.registry import list_envs
from creditgym.envs.spaces import text_space

ACTIONS = ["go east", "go west", "look"]
ENV_ID = "tests/DetourCorridor-v0"


class DetourCorridor(gym.Env):
    """Walk east to the door; detours revisit squares (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, length: int = 4, max_steps: int = 12) -> None:
        self.length, self.max_steps = length, max_steps
        self.observation_space = text_space()
        self.action_space = text_space()
        self.square, self.steps = 0, 0

    def _observation(self) -> str:
        return f"You are at square {self.square}."

    def _info(self, valid: bool = True) -> dict:
        return {
            keys.TASK: "reach the door",
            keys.ADMISSIBLE_ACTIONS: list(ACTIONS),
            keys.ANCHOR: self.square,
            keys.WON: self.square == self.length,
            keys.VALID: valid,
            keys.SYMBOLIC_STATE: {"square": float(self.square)},
            keys.EVENTS: [],
        }

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.square, self.steps = 0, 0
        return self._observation(), self._info()

    def step(self, action):
        self.steps += 1
        valid = action in ACTIONS
        if action == "go east":
            self.square += 1
        elif action == "go west":
            self.square = max(0, self.square - 1)
        won = self.square == self.length
        truncated = not won and self.steps >= self.max_steps
        return self._observation(), float(won), won, truncated, self._info(valid)

    def expert_action(self) -> str:
        return "go east"

    def steps_to_go(self) -> int:
        return self.length - self.square

    def clone_state(self) -> tuple[int, int]:
        return (self.square, self.steps)

    def restore_state(self, snapshot: tuple[int, int]):
        self.square, self.steps = snapshot
        return self._observation(), self._info()


def register() -> str:
    """Register the corridor (idempotent) and return its id."""
    if ENV_ID not in list_envs():
        creditgym.register(ENV_ID, DetourCorridor, description="corridor with detours (tests)")
    return ENV_ID
