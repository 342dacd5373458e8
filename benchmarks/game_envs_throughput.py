"""Steps per second and expert success of the TextWorld and MiniHack presets.

    python benchmarks/game_envs_throughput.py [--episodes 20] [--only MiniHack]

For each preset: a random walk over admissible actions (env steps/s) and the expert on seeds
0..episodes-1 (success rate, mean episode length, steps/s including the expert's planning).
TextWorld presets generate and cache one game per seed on first use; that time is reported
separately and is not part of steps/s (run twice to see the cached numbers). The table is also
written to benchmarks/results/game_envs_throughput.{md,json}, stamped with the commit, the
command and the machine's load (see provenance.py).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import markdown_table, stamp_or_exit, write_results  # noqa: E402

import creditgym  # noqa: E402
from creditgym.envs import info as keys  # noqa: E402

PRESETS = [
    "creditgym/MiniHackRoom-v0",
    "creditgym/MiniHackKeyRoom-v0",
    "creditgym/MiniHackMazeWalk-v0",
    "creditgym/MiniHackRiver-v0",
    "creditgym/TextWorldCoin-v0",
    "creditgym/TextWorldTreasure-v0",
    "creditgym/TextWorldCooking-v0",
]


def run(env, seed: int, policy) -> tuple[bool, int, float]:
    """(won, steps, seconds spent stepping and choosing actions) of one episode."""
    _, info = env.reset(seed=seed)
    start, steps = time.perf_counter(), 0
    while True:
        _, _, terminated, truncated, info = env.step(policy(info))
        steps += 1
        if terminated or truncated:
            return bool(info[keys.WON]), steps, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--episodes", type=int, default=20, help="expert episodes (seeds 0..N-1) per preset"
    )
    parser.add_argument("--only", default="", help="run only presets whose id contains this")
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)
    rng = random.Random(0)
    rows, data = [], {"episodes": args.episodes, "presets": {}}
    for env_id in [p for p in PRESETS if args.only in p]:
        env = creditgym.make(env_id)
        setup = time.perf_counter()
        for seed in range(args.episodes):  # generate (TextWorld) or warm up before timing
            env.reset(seed=seed)
        setup = time.perf_counter() - setup
        random_steps = random_time = 0
        for seed in range(min(5, args.episodes)):
            _, steps, seconds = run(
                env, seed, lambda info: rng.choice(info[keys.ADMISSIBLE_ACTIONS] or ["look"])
            )
            random_steps, random_time = random_steps + steps, random_time + seconds
        wins = expert_steps = 0
        expert_time = 0.0
        for seed in range(args.episodes):
            won, steps, seconds = run(
                env, seed, lambda info, env=env: env.unwrapped.expert_action()
            )
            wins, expert_steps, expert_time = (
                wins + won,
                expert_steps + steps,
                expert_time + seconds,
            )
        result = {
            "setup_s": setup,
            "random_steps_per_s": random_steps / random_time,
            "expert_wins": wins,
            "expert_success": wins / args.episodes,
            "expert_mean_length": expert_steps / args.episodes,
            "expert_steps_per_s": expert_steps / expert_time,
        }
        data["presets"][env_id] = result
        rows.append(
            (
                env_id,
                f"{setup:.1f}",
                f"{result['random_steps_per_s']:,.0f}",
                f"{wins}/{args.episodes}",
                f"{result['expert_mean_length']:.1f}",
                f"{result['expert_steps_per_s']:,.0f}",
            )
        )
        print(f"{env_id} done", file=sys.stderr)
    columns = (
        "preset",
        "setup s",
        "random steps/s",
        "expert success",
        "expert length",
        "expert steps/s",
    )
    text = (
        f"setup: resetting seeds 0..{args.episodes - 1} before timing (TextWorld generates and "
        f"caches a game per seed on first use), not part of steps/s; random walk over "
        f"admissible actions on the first {min(5, args.episodes)} seeds; the expert on all "
        f"{args.episodes} (length: mean steps per episode; steps/s includes its planning)."
        f"\n\n{markdown_table(columns, rows)}"
    )
    print(text)
    write_results("game_envs_throughput", stamp, data, text)


if __name__ == "__main__":
    main()
