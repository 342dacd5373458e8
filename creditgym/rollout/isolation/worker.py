"""The env worker's side: build one env, then answer the protocol's requests until closed.

`serve` is the worker process's main. It registers the env as the trainer's process has it
(so an env registered at run time, in a test or a notebook, is built here too), builds it,
says ``ready`` (or answers ``error`` and exits), then answers each request in turn. An env
that raises answers ``error`` and the worker goes on (the env's next reset starts it afresh,
as in one process). The worker exits when the rollout closes it or its channel closes.

Kept light on purpose: the fork server preloads this module, and it imports neither torch
nor the trainer.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import uuid
import warnings
from typing import Any

from creditgym.envs.oracle import cost_to_go
from creditgym.envs.registry import EnvEntry, make, register, registration
from creditgym.rollout.isolation import protocol
from creditgym.rollout.isolation.transport import read_frame, write_frame

__all__ = ["serve"]

#: Head room over the worker's address space at start, in multiples of the RSS limit: the
#: RLIMIT_AS backstop (see `_limit_address_space`).
ADDRESS_SPACE_HEADROOM = 2


def serve(channel: Any, entry: EnvEntry, kwargs: dict[str, Any], options: dict[str, Any]) -> None:
    """Run one env behind `channel` (a `multiprocessing` connection end).

    `options`: ``steps_to_go`` (send the oracle's cost-to-go with every observation) and
    ``max_rss_bytes`` (0 = no limit; sets the address-space backstop).
    """
    _die_with_parent()
    fd = channel.fileno()
    if options.get("max_rss_bytes"):
        _limit_address_space(int(options["max_rss_bytes"]))
    try:
        env = _build(entry, kwargs)
    except Exception as error:
        write_frame(fd, protocol.encode(protocol.error_answer(error, code="FACTORY_ERROR")))
        return
    agents = getattr(env, "possible_agents", None)
    session = _Session(env, multi=agents is not None, steps_to_go=bool(options.get("steps_to_go")))
    write_frame(
        fd, protocol.encode(protocol.ready_answer(None if agents is None else list(agents)))
    )
    while True:
        try:
            request = protocol.decode(read_frame(fd))
        except (EOFError, OSError):  # the rollout went away
            return
        if request["type"] == "close":
            session.close()
            return
        try:
            answer = protocol.encode(session.answer(request))
        except Exception as error:  # the env raised, or its answer cannot travel
            answer = protocol.encode(protocol.error_answer(error))
        write_frame(fd, answer)


class _Session:
    """One env and its OpenEnv-style state (episode id, step count)."""

    def __init__(self, env: Any, *, multi: bool, steps_to_go: bool) -> None:
        self.env, self.multi, self.send_steps_to_go = env, multi, steps_to_go
        self.episode_id: str | None = None
        self.step_count = 0

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        kind, data = request["type"], request.get("data") or {}
        if kind == "reset":
            result = self.env.reset(seed=data.get("seed"), options=data.get("options"))
            self.episode_id, self.step_count = uuid.uuid4().hex, 0
            return self._observation(result)
        if kind == "step":
            action = data["actions"] if self.multi else data["text"]
            result = self.env.step(action)
            self.step_count += 1
            return self._observation(result)
        if kind == "state":
            return protocol.state_answer(self.episode_id, self.step_count)
        if kind == "call" and data.get("method") in protocol.CALLABLE_METHODS:
            base = getattr(self.env, "unwrapped", self.env)
            return protocol.result_answer(getattr(base, data["method"])())
        raise ValueError(f"unknown request {kind!r}")

    def _observation(self, result: tuple) -> dict[str, Any]:
        steps = cost_to_go(self.env) if self.send_steps_to_go else None
        return protocol.observation_answer(result, multi=self.multi, steps_to_go=steps)

    def close(self) -> None:
        try:
            self.env.close()
        except Exception:  # closing is best effort; the process ends next
            pass


def _build(entry: EnvEntry, kwargs: dict[str, Any]) -> Any:
    """The env as the trainer's process would make it, its registration copied here first."""
    try:
        known = registration(entry.id)
    except Exception:  # not registered in this process (registered at run time over there)
        known = None
    if known != entry:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            register(
                entry.id,
                entry.entry_point,
                description=entry.description,
                max_episode_steps=entry.max_episode_steps,
                multi_agent=entry.multi_agent,
                requires=entry.requires,
                **entry.kwargs,
            )
    return make(entry.id, **kwargs)


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when its parent (the fork server, which exits with
    the trainer) dies, so a trainer killed with -9 leaves no hung worker behind."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _limit_address_space(max_rss_bytes: int) -> None:
    """A backstop for one huge allocation: cap the address space (RLIMIT_AS) at what the worker
    maps now plus `ADDRESS_SPACE_HEADROOM` times the RSS limit.

    The RSS limit itself is checked by the rollout after every answer (resident memory is what
    a machine runs out of); RLIMIT_AS counts mapped address space (libraries, reserved malloc
    arenas, thread stacks), far above the resident set, so it cannot stand for the RSS limit.
    It only stops a single step from allocating past the machine before the check comes: the
    allocation fails with MemoryError, which the rollout counts as ``memory``.
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return
    cap = mapped + ADDRESS_SPACE_HEADROOM * max_rss_bytes
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
