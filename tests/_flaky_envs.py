"""Envs and workers that break on purpose, for the isolated-worker tests.

Kept apart from the test modules (and free of torch and conftest) so a worker process imports
only this file and gymnasium to unpickle the env's entry point.

`FlakyEnv` breaks only inside a worker process: the same env made in the test's own process
(the tiny model's tokenizer corpus, evaluation) plays normally, so a test never kills itself.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import struct
import sys
import time
from pathlib import Path

import gymnasium as gym

ENV_ID = "tests/Flaky-v0"
#: What `FlakyEnv` can do instead of a step (see `FlakyEnv._break`).
FAILURES = (
    "kill",
    "segfault",
    "exit",
    "orphan",
    "hang",
    "garbage",
    "leak",
    "huge",
    "raise",
    "print",
)


def register_flaky() -> None:
    """Register `FlakyEnv` under `ENV_ID` (idempotent)."""
    import warnings

    import creditgym

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # re-registering in a second test module is fine
        creditgym.register(ENV_ID, "_flaky_envs:FlakyEnv", description="counts up; breaks")


class FlakyEnv(gym.Env):
    """Raise a counter from 0 to `length` with "up"; it breaks when told to.

    Arguments: `fail` (one of `FAILURES`) breaks step `at_step` (0-based) of the episodes whose
    reset seed is in `seeds`; or `claims_dir` and `failures` (a list of `FAILURES`): at step
    `at_step` of any episode the env claims the first failure no env has claimed yet (a file in
    `claims_dir`, created atomically), so each breaks exactly once over all workers.
    `leak_mb`: what a ``leak`` keeps allocated; `max_steps`: the step budget (truncation).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        length: int = 3,
        max_steps: int = 6,
        fail: str = "none",
        seeds: tuple[int, ...] | list[int] = (),
        at_step: int = 1,
        claims_dir: str = "",
        failures: tuple[str, ...] | list[str] = (),
        leak_mb: int = 96,
    ) -> None:
        self.observation_space = gym.spaces.Text(max_length=200)
        self.action_space = gym.spaces.Text(max_length=20)
        self.length, self.max_steps = length, max_steps
        self.fail, self.seeds, self.at_step = fail, set(seeds), at_step
        self.claims_dir, self.failures, self.leak_mb = claims_dir, list(failures), leak_mb
        self.counter = self.steps = 0
        self.seed_played: int | None = None
        self.hoard: list[bytes] = []

    def _info(self) -> dict:
        return {
            "task": f"raise the counter to {self.length}",
            "admissible_actions": ["up", "down"],
            "anchor": (self.counter, ("steps", self.steps)),
            "won": self.counter >= self.length,
            "valid": True,
            "symbolic_state": {"counter": self.counter},
        }

    def reset(self, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.counter, self.steps, self.seed_played = 0, 0, seed
        return f"the counter shows {self.counter}.", self._info()

    def step(self, action: str):
        failure = self._due_failure()
        if failure is not None:
            broken = self._break(failure)
            if broken is not None:
                return broken
        self.steps += 1
        self.counter = max(0, self.counter + (1 if action == "up" else -1))
        won = self.counter >= self.length
        truncated = not won and self.steps >= self.max_steps
        return f"the counter shows {self.counter}.", float(won), won, truncated, self._info()

    def expert_action(self) -> str:
        return "up"

    def _due_failure(self) -> str | None:
        if multiprocessing.parent_process() is None or self.steps != self.at_step:
            return None  # only ever inside a worker process
        if self.fail != "none" and self.seed_played in self.seeds:
            return self.fail
        for failure in self.failures:
            try:
                os.close(os.open(Path(self.claims_dir, failure), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            return failure
        return None

    def _break(self, failure: str):
        """Do `failure`; returns the step's result where the env still answers."""
        if failure == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if failure == "segfault":
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        if failure == "exit":
            os._exit(3)
        if failure == "orphan":  # exit, leaving a forked child that holds the worker's socket
            if os.fork() == 0:
                time.sleep(20)
                os._exit(0)
            os._exit(4)
        if failure == "hang":
            time.sleep(3600)
        if failure == "garbage":  # an observation of the wrong type
            return 12345, "lots", "maybe", False, ["not", "a", "dict"]
        if failure == "leak":
            self.hoard.append(b"\x01" * (self.leak_mb * 2**20))  # written, so resident
        if failure == "huge":  # in one go; fits the machine, not the worker's address space
            self.hoard.append(bytearray(2**30))
        if failure == "raise":
            raise RuntimeError("the flaky env broke on purpose")
        if failure == "print":  # an env that writes to its stdout, at Python and at fd level
            print('{"type": "observation"} junk', flush=True)
            sys.stdout.flush()
            os.write(1, b"\x00\xff raw junk\n")
        return None


def hostile_worker(channel, how: str) -> None:
    """A worker that says ready, then answers the first request with `how`, and lingers."""
    from creditgym.rollout.isolation.transport import read_frame, write_frame

    fd = channel.fileno()
    write_frame(fd, b'{"type": "ready", "data": {"possible_agents": null}}')
    read_frame(fd)
    if how == "not_json":
        write_frame(fd, b"\x00\xffnot json at all")
    elif how == "not_an_object":
        write_frame(fd, b"[1, 2, 3]")
    elif how == "wrong_types":
        answer = {"type": "observation", "data": {"observation": {"text": 5}, "reward": "lots"}}
        write_frame(fd, json.dumps(answer).encode())
    elif how == "another_type":
        write_frame(fd, b'{"type": "state", "data": {"episode_id": null, "step_count": 0}}')
    elif how == "unknown_tag":
        write_frame(fd, b'{"type": "observation", "data": {"$exec": "rm -rf /"}}')
    elif how == "deep":
        write_frame(fd, b"[" * 200_000 + b"]" * 200_000)
    elif how == "huge_header":
        os.write(fd, struct.pack("!I", 2**31))
    elif how == "partial":  # a header promising more than ever comes
        os.write(fd, struct.pack("!I", 100) + b"{")
    time.sleep(60)  # keeps its channel open: the rollout must not wait for an EOF
