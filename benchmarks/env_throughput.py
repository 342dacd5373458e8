"""Household env throughput vs. TextWorld, under a random agent over admissible actions.

    python benchmarks/env_throughput.py            # about a minute on one core
    python benchmarks/env_throughput.py --seconds 2 --tw-steps 300

For every household preset: steps/s of a random agent choosing from
``info["admissible_actions"]`` (the env computes admissible actions, the anchor, the symbolic
state and events every step), run on ``env.unwrapped`` so Gymnasium's wrappers are not timed,
and the random agent's success rate. Side by side, in the same run, a TextWorld game of similar
size generated offline with ``tw-make custom`` and played the same way through
``textworld.start(..., EnvInfos(admissible_commands=True))``; the ratio is household/TextWorld.
Rates are steps per CPU second of this process (`time.process_time`; TextWorld's z-machine,
jericho, runs in-process too), so other jobs on a shared machine do not skew the comparison.
Target: >= 20,000 household steps/s and >= 50x TextWorld.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
import time
from pathlib import Path

import creditgym
from creditgym.envs import info as keys
from creditgym.envs.household import PRESETS

#: household preset -> TextWorld game of similar size (rooms ~ receptacles, objects, quest length)
TEXTWORLD_TWIN = {
    "creditgym/HouseholdEasy-v0": {"world_size": 4, "nb_objects": 6, "quest_length": 2},
    "creditgym/HouseholdMedium-v0": {"world_size": 8, "nb_objects": 12, "quest_length": 4},
    "creditgym/Household-v0": {"world_size": 20, "nb_objects": 30, "quest_length": 6},
}


def household_rate(env_id: str, seconds: float, seed: int = 0) -> tuple[float, float, int]:
    """(steps per second, success rate over finished episodes, steps) of a random agent."""
    env = creditgym.make(env_id).unwrapped
    rng = random.Random(seed)
    _, info = env.reset(seed=seed)
    steps = episodes = wins = 0
    start, deadline = time.process_time(), time.perf_counter() + seconds
    while True:
        for _ in range(1000):  # check the clock every 1000 steps, not every step
            _, _, terminated, truncated, info = env.step(rng.choice(info[keys.ADMISSIBLE_ACTIONS]))
            if terminated or truncated:
                episodes += 1
                wins += terminated
                _, info = env.reset()
        steps += 1000
        if time.perf_counter() >= deadline:
            break
    return steps / (time.process_time() - start), wins / max(episodes, 1), steps


def make_textworld_game(
    directory: Path, world_size: int, nb_objects: int, quest_length: int, seed: int = 1
) -> Path:
    path = directory / f"tw_{world_size}_{nb_objects}_{quest_length}.z8"
    subprocess.run(
        [
            "tw-make",
            "custom",
            "--world-size",
            str(world_size),
            "--nb-objects",
            str(nb_objects),
            "--quest-length",
            str(quest_length),
            "--seed",
            str(seed),
            "--output",
            str(path),
            "--silent",
            "-f",
        ],
        check=True,
    )
    return path


def textworld_rate(
    game: Path, steps: int, seed: int = 0, max_episode_steps: int = 50
) -> tuple[float, float]:
    """(steps per second, success rate) of a random agent over TextWorld's admissible commands."""
    import textworld

    env = textworld.start(
        str(game), request_infos=textworld.EnvInfos(admissible_commands=True, won=True)
    )
    rng = random.Random(seed)
    state = env.reset()
    episodes = wins = in_episode = 0
    start = time.process_time()
    for _ in range(steps):
        state, _, done = env.step(rng.choice(state["admissible_commands"]))
        in_episode += 1
        if done or in_episode >= max_episode_steps:
            episodes += 1
            wins += bool(state["won"])
            state, in_episode = env.reset(), 0
    rate = steps / (time.process_time() - start)
    env.close()
    return rate, wins / max(episodes, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="seconds of household stepping per preset"
    )
    parser.add_argument("--tw-steps", type=int, default=1000, help="TextWorld steps per game")
    parser.add_argument("--no-textworld", action="store_true", help="skip the TextWorld comparison")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for env_id in sorted(PRESETS, key=lambda e: PRESETS[e][1]["max_steps"]):
            rate, success, steps = household_rate(env_id, args.seconds)
            tw_rate = tw_success = float("nan")
            if not args.no_textworld:
                game = make_textworld_game(Path(tmp), **TEXTWORLD_TWIN[env_id])
                budget = PRESETS[env_id][1]["max_steps"]
                tw_rate, tw_success = textworld_rate(game, args.tw_steps, max_episode_steps=budget)
            rows.append((env_id, steps, rate, success, TEXTWORLD_TWIN[env_id], tw_rate, tw_success))

    print(
        "random agent over admissible actions; steps per CPU second (one core); household on "
        "env.unwrapped (no wrappers); TextWorld episodes capped at the preset's max_steps"
    )
    header = (
        f"{'preset':30} {'steps':>9} {'steps/s':>9} {'success':>8} | "
        f"{'TextWorld twin':34} {'steps/s':>8} {'success':>8} {'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    for env_id, steps, rate, success, twin, tw_rate, tw_success in rows:
        twin_name = (
            f"world {twin['world_size']}, objects {twin['nb_objects']}, "
            f"quest {twin['quest_length']}"
        )
        print(
            f"{env_id:30} {steps:9d} {rate:9.0f} {success:8.3f} | "
            f"{twin_name:34} {tw_rate:8.0f} {tw_success:8.3f} {rate / tw_rate:6.0f}x"
        )


if __name__ == "__main__":
    main()
