"""Environments in Ray actors: `rollout.workers=N` for heavy envs or many hundreds of them.

`remote_envs(env_id, count, workers=N)` returns `count` `RemoteEnv` proxies spread over N
`EnvWorker` actors. The rollout collector steps them exactly as in-process envs (same seeds,
same lockstep, so the same `Episode`s), except that it dispatches every env's step before
waiting for any (`step_async` / `step_wait`), so the workers step in parallel.

A worker that dies (killed, out of memory, its node lost) fails the episodes its envs were
running (the collector records them as ``failed``, reason ``crash``, with the error) and is
replaced by a fresh actor the next time one of its envs is reset, so the next iteration runs on
a full pool.
`connect(address)` joins an existing cluster (``"auto"`` or ``"ray://host:10001"``) for
multi-node runs; without an address a local Ray starts on first use.
"""

from __future__ import annotations

from typing import Any

from creditgym.rollout.failures import CRASH, EnvFailure

__all__ = ["EnvWorker", "RemoteEnv", "WorkerPool", "connect", "remote_envs"]


def _ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise ImportError(
            "rollout.workers > 0 needs Ray: pip install 'creditgym[ray]' (or set rollout.workers=0)"
        ) from error
    return ray


def connect(address: str = "") -> None:
    """Start or join Ray once: `address` "" starts a local instance, else joins that cluster."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init(
            address=address or None,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )


class EnvWorker:
    """A Ray actor holding environments of one id; steps them on request (plain data in and out)."""

    def __init__(self, env_id: str, count: int, kwargs: dict[str, Any]) -> None:
        from creditgym.envs.registry import make

        self.envs = [make(env_id, **kwargs) for _ in range(count)]

    def reset(self, index: int, seed: int | None) -> tuple:
        return self.envs[index].reset(seed=seed)

    def step(self, index: int, action: str | dict[str, str]) -> tuple:
        return self.envs[index].step(action)

    def possible_agents(self) -> list[str] | None:
        """The agents of a multi-agent (PettingZoo) env; None for a single-agent one."""
        agents = getattr(self.envs[0], "possible_agents", None) if self.envs else None
        return None if agents is None else list(agents)

    def expert_action(self, index: int) -> str:
        return self.envs[index].unwrapped.expert_action()

    def expert_actions(self, index: int) -> dict[str, str]:
        return self.envs[index].expert_actions()

    def close(self) -> None:
        for env in self.envs:
            env.close()


class WorkerPool:
    """N `EnvWorker` actors; a dead one is replaced on request.

    Every call to an actor goes through `call` (submission) and `get` (its result): Ray reports
    a lost actor at either point, depending on when it learns of the loss, and both turn it into
    the same `EnvFailure` (``crash``). A replacement starts with fresh envs, so an env keeps
    the actor it was reset on: its episode fails with that actor, it is never stepped on a
    replacement that does not hold its state.
    """

    def __init__(self, env_id: str, count: int, workers: int, kwargs: dict[str, Any]) -> None:
        if workers < 1:
            raise ValueError(f"workers={workers}: a pool needs at least one worker")
        self.ray = _ray()
        connect()
        self.env_id, self.kwargs = env_id, kwargs
        self.sizes = [count // workers + (w < count % workers) for w in range(workers)]
        self.remote_class = self.ray.remote(num_cpus=0)(
            EnvWorker
        )  # envs are light; do not reserve cores
        self.actors = [self._spawn(w) for w in range(workers)]
        self.dead: set[int] = set()
        exceptions = self.ray.exceptions
        # The actor or the process or node under it is gone (ActorDiedError and
        # ActorUnavailableError are RayActorErrors); an exception the env raised is not here.
        self.lost = (
            exceptions.RayActorError,
            exceptions.WorkerCrashedError,
            exceptions.NodeDiedError,
            exceptions.LocalRayletDiedError,
        )

    def _spawn(self, worker: int) -> Any:
        return self.remote_class.remote(self.env_id, self.sizes[worker], self.kwargs)

    def actor(self, worker: int) -> Any:
        """The live actor of `worker`, replacing it first if it was lost."""
        if worker in self.dead:
            try:  # an unavailable actor may come back: make sure it is gone for good
                self.ray.kill(self.actors[worker], no_restart=True)
            except Exception:  # already dead, or its node with it
                pass
            self.actors[worker] = self._spawn(worker)
            self.dead.discard(worker)
        return self.actors[worker]

    def call(self, worker: int, actor: Any, method: str, *args: Any) -> Any:
        """Submit `method(*args)` to `actor` (of `worker`); its object ref, or `EnvFailure`
        (``crash``) if the actor was lost."""
        try:
            return getattr(actor, method).remote(*args)
        except self.lost as error:
            raise self._crashed(worker, actor, error) from error

    def get(self, ref: Any, worker: int, actor: Any) -> Any:
        """`ray.get(ref)` of a call to `actor` (of `worker`); if the actor was lost, mark it for
        replacement and raise `EnvFailure` (``crash``)."""
        try:
            return self.ray.get(ref)
        except self.lost as error:
            raise self._crashed(worker, actor, error) from error

    def _crashed(self, worker: int, actor: Any, error: BaseException) -> EnvFailure:
        if self.actors[worker] is actor:  # not yet replaced (another env may have done so)
            self.dead.add(worker)
        return EnvFailure(CRASH, f"Ray env worker {worker} died: {type(error).__name__}: {error}")


class RemoteEnv:
    """One env inside a `WorkerPool` actor, with the gym calls the collector makes.

    A proxy of a multi-agent env has its `possible_agents` (None for a single-agent env) and
    takes and returns per-agent dicts, as the env does.
    """

    def __init__(
        self, pool: WorkerPool, worker: int, index: int, possible_agents: list[str] | None = None
    ) -> None:
        self.pool, self.worker, self.index = pool, worker, index
        self.possible_agents = possible_agents
        self.actor: Any = None  # the actor this env was last reset on

    @property
    def unwrapped(self) -> RemoteEnv:  # scripted policies call env.unwrapped.expert_action()
        return self

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple:
        self.actor = self.pool.actor(self.worker)
        return self._run("reset", self.index, seed)

    def step_async(self, action: str | dict[str, str]) -> Any:
        if self.actor is None:
            raise RuntimeError("step before reset: reset the env first")
        return self.pool.call(self.worker, self.actor, "step", self.index, action)

    def step_wait(self, ref: Any) -> tuple:
        return self.pool.get(ref, self.worker, self.actor)

    def step(self, action: str | dict[str, str]) -> tuple:
        return self.step_wait(self.step_async(action))

    def expert_action(self) -> str:
        return self._run("expert_action", self.index)

    def expert_actions(self) -> dict[str, str]:
        return self._run("expert_actions", self.index)

    def _run(self, method: str, *args: Any) -> Any:
        if self.actor is None:
            raise RuntimeError(f"{method} before reset: reset the env first")
        ref = self.pool.call(self.worker, self.actor, method, *args)
        return self.pool.get(ref, self.worker, self.actor)

    def close(self) -> None:
        pass  # the pool's actors own the envs; `ray.shutdown()` or actor exit frees them


def remote_envs(env_id: str, count: int, workers: int, **kwargs: Any) -> list[RemoteEnv]:
    """`count` envs of `env_id` over `workers` Ray actors (env i on worker i mod workers)."""
    pool = WorkerPool(env_id, count, workers, kwargs)
    slots = [(w, i) for w, size in enumerate(pool.sizes) for i in range(size)]
    slots.sort(
        key=lambda slot: (slot[1], slot[0])
    )  # interleave: consecutive envs on different workers
    first = pool.actor(0)
    agents = pool.get(pool.call(0, first, "possible_agents"), 0, first)
    return [RemoteEnv(pool, w, i, agents) for w, i in slots]
