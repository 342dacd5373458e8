"""A registered creditgym env as an OpenEnv `Environment`: one instance per session.

`ServedEnv` is what OpenEnv's `HTTPEnvServer` builds for every WebSocket session (and for each
stateless HTTP ``/reset`` or ``/step`` call). It plays the Gymnasium env and writes what it
returns into the wire format of `creditgym.envs.openenv.wire`; the clone and oracle methods
back the ``/creditgym/*`` extension endpoints of `creditgym.envs.openenv.app`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import EnvironmentMetadata

from creditgym.envs import oracle
from creditgym.envs.openenv.sessions import SessionDirectory
from creditgym.envs.openenv.wire import encode_value, models
from creditgym.envs.registry import describe, make
from creditgym.version import __version__

__all__ = ["ServedEnv", "EpisodeNotStarted", "SessionClosed"]


class EpisodeNotStarted(RuntimeError):
    """A step, clone or oracle call before the session's first reset."""


class SessionClosed(RuntimeError):
    """A call on a session the server closed (idle timeout or shutdown)."""


class ServedEnv(Environment):
    """One session's creditgym env behind OpenEnv's `Environment` interface.

    Args:
        env_id: the registered creditgym env id (single-agent).
        env_kwargs: keyword arguments for `creditgym.make`, fixed by the server.
        directory: where the session registers its token and keeps snapshots.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True  # every session builds its own env

    def __init__(
        self, env_id: str, env_kwargs: dict[str, Any], directory: SessionDirectory
    ) -> None:
        super().__init__()
        self.env_id = env_id
        self._env_kwargs = dict(env_kwargs)
        self._env = make(env_id, **self._env_kwargs)
        self._directory = directory
        self._lock = threading.Lock()  # WebSocket steps and extension calls come on two threads
        self._started = False
        self._closed = False
        self._state = models()[2](
            env_id=env_id,
            session=directory.add(self),
            supports_cloning=oracle.supports_cloning(self._env),
        )

    def reset(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        options: dict[str, Any] | None = None,
        split: str | None = None,
    ) -> Any:
        """Gymnasium's ``reset(seed=, options=)``; `split` rebuilds the env on that split."""
        if options is not None and not isinstance(options, dict):
            raise TypeError(f"reset options must be a JSON object, got {type(options).__name__}")
        with self._live():
            if split is not None:
                self._use_split(split)
            text, info = self._env.reset(seed=seed, options=options)
            self._started = True
            self._state.episode_id = episode_id or str(uuid.uuid4())
            self._state.step_count = 0
            return self._observation(text, info)

    def step(self, action: Any, timeout_s: float | None = None, **kwargs: Any) -> Any:
        """Gymnasium's ``step(action.text)``."""
        with self._live(started=True):
            text, reward, terminated, truncated, info = self._env.step(action.text)
            self._state.step_count += 1
            return self._observation(text, info, float(reward), terminated, truncated)

    @property
    def state(self) -> Any:
        return self._state

    def get_metadata(self) -> EnvironmentMetadata:
        return EnvironmentMetadata(
            name=self.env_id,
            description=describe(self.env_id) or f"creditgym env {self.env_id}",
            version=__version__,
        )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._directory.remove(self._state.session)
            self._env.close()

    # -- the /creditgym/* extension -------------------------------------------------------

    def clone(self) -> str:
        """Snapshot the env (`clone_state`); returns the snapshot's id on this server."""
        with self._live(started=True):
            return self._directory.keep(oracle.clone_state(self._env))

    def restore(self, snapshot_id: str) -> Any:
        """Restore a snapshot of this server (`restore_state`); the observation of that moment."""
        snapshot = self._directory.snapshot(snapshot_id)
        with self._live():
            text, info = oracle.restore_state(self._env, snapshot)
            self._started = True
            return self._observation(text, info)

    def expert_action(self) -> str:
        with self._live(started=True):
            expert = getattr(self._env.unwrapped, "expert_action", None)
            if expert is None:
                raise NotImplementedError(f"{self.env_id} has no expert")
            return str(expert())

    def steps_to_go(self) -> int | None:
        with self._live(started=True):
            return oracle.cost_to_go(self._env)

    # -- helpers ---------------------------------------------------------------------------

    def _observation(
        self,
        text: str,
        info: dict[str, Any],
        reward: float | None = None,
        terminated: bool = False,
        truncated: bool = False,
    ) -> Any:
        return models()[1](
            text=text,
            info=encode_value(info),
            terminated=bool(terminated),
            truncated=bool(truncated),
            done=bool(terminated or truncated),
            reward=reward,
        )

    def _use_split(self, split: str) -> None:
        if split == self._env_kwargs.get("split", None):
            return
        try:
            env = make(self.env_id, **{**self._env_kwargs, "split": split})
        except TypeError as error:
            if "split" not in str(error):
                raise
            if split == "all":  # evaluation of an env without splits plays its seeds as they are
                return
            raise ValueError(f"{self.env_id} has no splits; reset without 'split'") from None
        self._env.close()
        self._env = env
        self._env_kwargs["split"] = split

    @contextmanager
    def _live(self, started: bool = False) -> Iterator[None]:
        """Hold the session's lock; refuse a closed session (and, if `started`, a session with
        no episode) with a line that says what to do."""
        with self._lock:
            if self._closed:
                raise SessionClosed(
                    "this session was closed by the server (idle longer than its session "
                    "timeout, or shutting down); open a new WebSocket session and reset"
                )
            if started and not self._started:
                raise EpisodeNotStarted(
                    "no episode: reset first. OpenEnv's HTTP /reset and /step are stateless (a "
                    "fresh env per call); play episodes over the WebSocket /ws"
                )
            yield
