"""Steps per second and expert success of the TextWorld and MiniHack presets.

    python benchmarks/game_envs_throughput.py [--episodes 20] [--only MiniHack]

For each preset: a random walk over admissible actions (env steps/s) and the expert on seeds
0..episodes-1 (success rate, mean episode length, steps/s including the expert's planning).
TextWorld presets generate and cache one game per seed on first use; that time is reported
separately and is not part of steps/s (run twice to see the cached numbers).
"""

from __future__ import annotations

import argparse
import random
import time

import creditgym
from creditgym.envs import info as keys

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
    args = parser.parse_args()
    rng = random.Random(0)
    print(
        f"{'preset':34s} {'setup s':>8s} {'random steps/s':>15s} {'expert success':>15s} "
        f"{'expert len':>10s} {'expert steps/s':>15s}"
    )
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
        print(
            f"{env_id:34s} {setup:8.1f} {random_steps / random_time:15.0f} "
            f"{f'{wins}/{args.episodes}':>15s} {expert_steps / args.episodes:10.1f} "
            f"{expert_steps / expert_time:15.0f}"
        )


if __name__ == "__main__":
    main()
