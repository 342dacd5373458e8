"""`IsolatedEnv`: one env in its own worker process, with the gym calls the collector makes.

The proxy speaks the protocol (`creditgym.rollout.isolation.protocol`) over a `Transport`
and turns each way the worker can break into an `EnvFailure` with its reason; after one, the
worker is gone (killed and reaped) and the next `reset` starts a fresh one. Steps are split
into `step_async` (send) and `step_wait` (receive by the deadline), so the collector sends every
env's step before it waits for any: B workers step in parallel and a hung one costs the
iteration one step timeout, not one per env.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from creditgym.envs.registry import EnvEntry, is_multi_agent, registration
from creditgym.rollout.failures import ERROR, GARBAGE, MEMORY, EnvFailure
from creditgym.rollout.isolation import protocol
from creditgym.rollout.isolation.protocol import ProtocolError, WorkerError
from creditgym.rollout.isolation.transport import Transport, WorkerProcess, resident_bytes

__all__ = ["IsolatedEnv", "WorkerSettings", "isolated_envs"]


@dataclass(frozen=True)
class WorkerSettings:
    """How env workers run and when one has failed (the ``rollout.env_*`` config keys)."""

    step_timeout_s: float = 60.0  # a reset or step unanswered this long: timeout
    start_timeout_s: float = 120.0  # a worker not ready (env built) this long: timeout
    max_rss_mb: float = 0.0  # resident memory past this after an answer: memory (0 = no limit)
    steps_to_go: bool = True  # send the oracle's cost-to-go with every observation

    @property
    def max_rss_bytes(self) -> int:
        return int(self.max_rss_mb * 2**20)


class IsolatedEnv:
    """One env of `entry` in a worker process (see the module docstring).

    Args:
        entry: the env's registration (`creditgym.envs.registry.registration`).
        kwargs: keyword arguments for `make`.
        settings: timeouts and the memory limit.
        possible_agents: a multi-agent env's agents (None for a single-agent env).
        connect: starts the worker and returns its `Transport` (default: a `WorkerProcess`
            running `creditgym.rollout.isolation.worker.serve`); tests pass hostile workers.
    """

    def __init__(
        self,
        entry: EnvEntry,
        kwargs: Mapping[str, Any],
        settings: WorkerSettings,
        possible_agents: list[str] | None = None,
        *,
        connect: Callable[[], Transport] | None = None,
    ) -> None:
        self.entry, self.kwargs, self.settings = entry, dict(kwargs), settings
        self.possible_agents = possible_agents
        self.connect = connect or self._start_worker_process
        self.transport: Transport | None = None
        self.ready = False
        self.starts = 0  # workers started; each after the first replaced a failed one
        self._steps_to_go: int | None = None

    # ---- what the collector and policies call -------------------------------------------------

    @property
    def unwrapped(self) -> IsolatedEnv:  # scripted policies call env.unwrapped.expert_action()
        return self

    @property
    def pid(self) -> int | None:
        """The current worker's process id (None between a failure and the next reset)."""
        return getattr(self.transport, "pid", None)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple:
        self.start()
        self._wait_ready()
        handle = self._send(protocol.reset_request(seed, options), "reset")
        result, self._steps_to_go = self._receive(handle, self._read_reset)
        return result

    def step_async(self, action: str | Mapping[str, str]) -> tuple[str, float]:
        if self.transport is None or not self.ready:
            raise EnvFailure(ERROR, "step before reset: the env's worker is not running")
        return self._send(protocol.step_request(action), "step")

    def step_wait(self, handle: tuple[str, float]) -> tuple:
        result, self._steps_to_go = self._receive(handle, self._read_step)
        return result

    def step(self, action: str | Mapping[str, str]) -> tuple:
        return self.step_wait(self.step_async(action))

    def steps_to_go(self) -> int | None:
        """The oracle's cost-to-go the worker sent with the last observation."""
        return self._steps_to_go

    def expert_action(self) -> str:
        return self._call("expert_action", str)

    def expert_actions(self) -> dict[str, str]:
        return self._call("expert_actions", dict)

    def state(self) -> dict[str, Any]:
        """OpenEnv's session state: ``episode_id`` and ``step_count``."""
        return self._receive(self._send(protocol.state_request(), "state"), protocol.read_state)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.transport, self.ready = None, False

    # ---- the worker's life --------------------------------------------------------------------

    def start(self) -> None:
        """Start a worker if none is running (it builds the env while the caller goes on)."""
        if self.transport is None:
            self.transport, self.ready = self.connect(), False
            self.starts += 1

    def _start_worker_process(self) -> Transport:
        from creditgym.rollout.isolation.worker import serve

        options = {"steps_to_go": self.settings.steps_to_go}
        options["max_rss_bytes"] = self.settings.max_rss_bytes
        return WorkerProcess(serve, (self.entry, self.kwargs, options), name=f"env {self.entry.id}")

    def _wait_ready(self) -> list[str] | None:
        """Wait for the worker's ready message; returns the env's agents (None: single-agent)."""
        if self.ready:
            return self.possible_agents
        deadline = time.monotonic() + self.settings.start_timeout_s
        agents = self._receive(("its start", deadline), protocol.read_ready, check_memory=False)
        if self.possible_agents is not None and agents != self.possible_agents:
            self._abort()
            raise EnvFailure(GARBAGE, f"the env worker names agents {agents!r}, not the env's")
        self.ready = True
        return agents

    def _send(self, request: dict[str, Any], what: str) -> tuple[str, float]:
        transport = self._transport(what)
        try:
            transport.send(request, what)
        except EnvFailure:
            self.transport, self.ready = None, False
            raise
        return what, time.monotonic() + self.settings.step_timeout_s

    def _receive(
        self, handle: tuple[str, float], read: Callable[[dict], Any], *, check_memory: bool = True
    ) -> Any:
        what, deadline = handle
        transport = self._transport(what)
        try:
            answer = transport.receive(deadline, what)
        except EnvFailure:  # the transport has already killed what was left of the worker
            self.transport, self.ready = None, False
            raise
        try:
            value = read(answer)
        except ProtocolError as error:
            self._abort()
            raise EnvFailure(
                GARBAGE, f"the env worker answered {what} with {error}; killed"
            ) from None
        except WorkerError as error:
            if error.exception == "MemoryError":
                self._abort()
                raise EnvFailure(
                    MEMORY, f"{what} ran out of memory in the worker: {error}"
                ) from None
            if not self.ready:  # the env could not be built: this worker has exited
                self._abort()
            raise EnvFailure(ERROR, str(error)) from None
        if check_memory:
            self._check_memory(what)
        return value

    def _check_memory(self, what: str) -> None:
        limit = self.settings.max_rss_bytes
        held = self.transport.resident_bytes() if limit and self.transport is not None else None
        if held is not None and held > limit:
            pid = self.pid
            self._abort()
            raise EnvFailure(
                MEMORY,
                f"the env worker (pid {pid}) held {held / 2**20:.0f} MiB after {what}, over "
                f"rollout.env_max_rss_mb={self.settings.max_rss_mb:g}; killed",
            )

    def _transport(self, what: str) -> Transport:
        if self.transport is None:
            raise EnvFailure(ERROR, f"{what} without a running worker (reset first)")
        return self.transport

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.transport, self.ready = None, False

    def _call(self, method: str, kind: type) -> Any:
        self._wait_ready()
        handle = self._send(protocol.call_request(method), method)
        value = self._receive(handle, protocol.read_result)
        if not isinstance(value, kind):
            self._abort()
            raise EnvFailure(GARBAGE, f"the env worker's {method} is a {type(value).__name__}")
        return value

    def _read_reset(self, answer: dict) -> Any:
        return protocol.read_observation(answer, multi=self.possible_agents is not None, reset=True)

    def _read_step(self, answer: dict) -> Any:
        return protocol.read_observation(
            answer, multi=self.possible_agents is not None, reset=False
        )


def isolated_envs(
    env_id: str, count: int, settings: WorkerSettings, **kwargs: Any
) -> list[IsolatedEnv]:
    """`count` envs of `env_id`, each in its own worker process, all starting now.

    Raises ValueError with the fix where workers cannot run: not a POSIX system, an entry point
    or kwargs that cannot be sent to another process, a memory limit with no way to read
    memory.
    """
    if os.name != "posix":
        raise ValueError("rollout.isolation=process needs a POSIX system (Linux, macOS)")
    if settings.max_rss_mb and resident_bytes(os.getpid()) is None:
        raise ValueError(
            "rollout.env_max_rss_mb needs /proc (Linux) or psutil to read a worker's memory: "
            "pip install psutil, or set rollout.env_max_rss_mb=0"
        )
    entry = registration(env_id)
    try:
        pickle.dumps((entry, kwargs))
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise ValueError(
            f"env {env_id!r} cannot be sent to a worker process ({error}); register it with a "
            "'module:Class' entry point or a module-level callable, and plain kwargs"
        ) from None
    envs = [IsolatedEnv(entry, kwargs, settings) for _ in range(count)]
    for env in envs:
        env.start()
    if is_multi_agent(env_id) and envs:
        agents = envs[0]._wait_ready()
        for env in envs:
            env.possible_agents = agents
    return envs
