"""Isolated env workers (``rollout.isolation=process``): each training env in its own process.

An env that segfaults, hangs, prints junk or leaks memory should cost the episode it was
playing, not the run. With ``rollout.isolation=process`` the trainer's envs are `IsolatedEnv`
proxies, each backed by a worker process that holds one env; the collector steps them as it
steps in-process envs (same seeds, same lockstep, hence the same episodes), sending every
env's step before waiting for any.

**Failures.** A worker that breaks fails its episode with a reason (`creditgym.rollout.failures`):

- ``crash``: the worker died (kill -9, a segfault, an exit) before answering;
- ``timeout``: no answer to a reset or step within ``rollout.env_step_timeout_s`` (to its
  start, building the env, within ``rollout.env_start_timeout_s``): the worker is killed;
- ``garbage``: the answer is not a protocol message (not JSON, over 16 MiB, another message
  type, a field of the wrong type): the worker is killed, as nothing it says can be trusted;
- ``memory``: after a reset or step its resident memory (``/proc/<pid>/statm``) is over
  ``rollout.env_max_rss_mb``, or an allocation failed inside it: the worker is killed;
- ``error``: the env raised; the worker answers with the error and lives on (as in one process).

The failed episode is marked ``failed`` (left out of the advantages, as for an env that raises
in-process), its reason and message kept in ``metadata["failure"]`` and ``["error"]``, counted
in ``rollout/failed/<reason>`` and shown in the viewer. The dead worker is reaped at once and a
fresh one starts at the env's next reset, so the rollout goes on with every slot.

**One env per worker.** A worker holds one env, so a failure never takes a neighbour's episode
with it, and the worker's memory is the env's own (the RSS limit is per env). Workers fork from
a server that preloaded the worker module (``forkserver``; ``spawn`` where there is none), so a
worker costs a fork plus the env's construction and about the memory of the env itself over a
shared interpreter; `benchmarks/isolation_cost.py` measures what isolation costs an iteration.

**The protocol.** Messages are OpenEnv's: ``reset`` / ``step`` / ``state`` / ``close``
requests, answered by ``observation`` (``observation``, ``reward``, ``done``), ``state`` or
``error`` messages, as JSON; creditgym's ``info`` (admissible actions, anchor, events, won,
task) travels inside the observation dict (`creditgym.rollout.isolation.protocol`). The pipe is
one implementation of a small `Transport` interface (send, receive by a deadline, resident
memory, abort, close; `creditgym.rollout.isolation.transport`), so a later change can put an
OpenEnv WebSocket client in its place and run the same proxies against ``creditgym serve-env``
or any OpenEnv server, with the same failure reasons (a remote worker's memory is then the
server's to limit: ``resident_bytes`` returns None).

**Limits.** POSIX only (Linux, macOS). The env's registration and kwargs are pickled to the
worker, so its entry point must be importable there (``"module:Class"`` or a module-level
callable, not a lambda), and, as with any ``forkserver``/``spawn`` program, a script that
trains must guard its entry with ``if __name__ == "__main__":``. Evaluation, branch
continuations (``rollout.branch``) and supervised warm starts still run their envs in the
trainer's process.
"""

from creditgym.rollout.isolation.env import IsolatedEnv, WorkerSettings, isolated_envs
from creditgym.rollout.isolation.transport import Transport, WorkerProcess

__all__ = ["IsolatedEnv", "Transport", "WorkerProcess", "WorkerSettings", "isolated_envs"]
