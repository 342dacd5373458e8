"""The cost of the wire: N household sessions stepped in lockstep over loopback vs in-process.

    python benchmarks/remote_env.py                       # sessions 1, 8, 32; 100k-step memory run
    python benchmarks/remote_env.py --sessions 1,4 --seconds 2 --memory-steps 2000 --no-save

Starts ``creditgym serve-env creditgym/Household-v0`` in a child process and measures, for each
N in ``--sessions``:

- steps/s of N envs stepped in lockstep (one step of each env per round, as the rollout does),
  in-process (``creditgym.make``) and remote (``creditgym.make("openenv:<url>")``, one
  WebSocket session each), under the same random agent over ``info["admissible_actions"]``;
- the p50 / p99 latency of one remote ``step`` call;

then steps ``--memory-steps`` remote steps (episodes reset as they end) and reads the server
process's resident memory (RSS, from /proc) before, at every tenth and at the end: its growth
says whether sessions leak. Rates are wall-clock: run it on an idle machine. Writes
benchmarks/results/remote_env.{md,json}, stamped (see provenance.py).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import ROOT, stamp_or_exit, write_results  # noqa: E402

import creditgym  # noqa: E402

ENV_ID = "creditgym/Household-v0"


def start_server(max_sessions: int) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "creditgym", "serve-env", ENV_ID, "--port", "0"]
    command += ["--max-sessions", str(max_sessions), "--max-snapshots", "16"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    if " at http://" not in line:
        server.kill()
        raise RuntimeError(f"serve-env did not start: {line!r}")
    return server, line.rsplit(" at ", 1)[1].strip()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc (Linux only)")


class Lockstep:
    """N envs played by a seeded random agent, one step of each per round."""

    def __init__(self, envs: list, seed: int = 0) -> None:
        self.envs = envs
        self.rng = random.Random(seed)
        self.infos = [env.reset(seed=seed + i)[1] for i, env in enumerate(envs)]
        self.episodes = len(envs)

    def round(self, latencies: list[float] | None = None) -> int:
        for i, env in enumerate(self.envs):
            action = self.rng.choice(self.infos[i]["admissible_actions"])
            started = time.perf_counter()
            _, _, terminated, truncated, info = env.step(action)
            if latencies is not None:
                latencies.append(time.perf_counter() - started)
            if terminated or truncated:
                self.episodes += 1
                info = env.reset(seed=self.episodes)[1]
            self.infos[i] = info
        return len(self.envs)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def rate(lockstep: Lockstep, seconds: float, latencies: list[float] | None = None) -> float:
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        steps += lockstep.round(latencies)
    return steps / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,8,32", help="comma-separated N")
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--memory-steps", type=int, default=100_000)
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    parser.add_argument("--no-save", action="store_true", help="print only (tests)")
    args = parser.parse_args()
    sessions = [int(n) for n in args.sessions.split(",")]
    stamp = stamp_or_exit(args.allow_dirty or args.no_save)
    server, url = start_server(max(sessions) + 1)
    rows, memory = [], {}
    try:
        for n in sessions:
            local = Lockstep([creditgym.make(ENV_ID) for _ in range(n)])
            local_rate = rate(local, args.seconds)
            local.close()
            latencies: list[float] = []
            remote = Lockstep([creditgym.make(f"openenv:{url}") for _ in range(n)])
            remote_rate = rate(remote, args.seconds, latencies)
            remote.close()
            p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
            rows.append(
                {
                    "sessions": n,
                    "in_process_steps_per_s": round(local_rate),
                    "remote_steps_per_s": round(remote_rate),
                    "slowdown": round(local_rate / remote_rate, 1),
                    "p50_ms": round(float(p50), 3),
                    "p99_ms": round(float(p99), 3),
                }
            )
        n = max(sessions)
        remote = Lockstep([creditgym.make(f"openenv:{url}") for _ in range(n)])
        samples = [(0, rss_mib(server.pid))]
        steps, every = 0, max(args.memory_steps // 10, 1)
        while steps < args.memory_steps:
            steps += remote.round()
            if steps // every > (steps - n) // every:
                samples.append((steps, rss_mib(server.pid)))
        remote.close()
        samples.append((steps, rss_mib(server.pid)))
        # after the first tenth (warm-up: imports, caches, first sessions), growth means a leak
        warm = samples[min(1, len(samples) - 1)][1]
        memory = {
            "steps": steps,
            "sessions": n,
            "rss_mib": [[s, round(m, 1)] for s, m in samples],
            "growth_after_warmup_mib": round(samples[-1][1] - warm, 1),
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
    header = "| sessions | in-process steps/s | remote steps/s | slowdown | p50 ms | p99 ms |"
    lines = [header, "|---:|---:|---:|---:|---:|---:|"]
    lines += [
        f"| {r['sessions']} | {r['in_process_steps_per_s']} | {r['remote_steps_per_s']} | "
        f"{r['slowdown']}x | {r['p50_ms']} | {r['p99_ms']} |"
        for r in rows
    ]
    lines.append(
        f"\nserver RSS over {memory['steps']} steps of {memory['sessions']} sessions: "
        f"{memory['rss_mib'][0][1]} MiB at start, {memory['rss_mib'][1][1]} MiB after the first "
        f"tenth, {memory['rss_mib'][-1][1]} MiB at the end "
        f"({memory['growth_after_warmup_mib']:+} MiB after warm-up)"
    )
    table = "\n".join(lines)
    print(table)
    if not args.no_save:
        write_results("remote_env", stamp, {"rows": rows, "memory": memory}, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
