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
Target: >= 20,000 household steps/s and >= 50x TextWorld. Writes
benchmarks/results/env_throughput.{md,json}, stamped with the commit, the command and the
machine's load (see provenance.py).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import markdown_table, stamp_or_exit, write_results  # noqa: E402

import creditgym  # noqa: E402
from creditgym.envs import info as keys  # noqa: E402
from creditgym.envs.household import PRESETS  # noqa: E402

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
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)

    rows, data = [], {"seconds": args.seconds, "tw_steps": args.tw_steps, "presets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for env_id in sorted(PRESETS, key=lambda e: PRESETS[e][1]["max_steps"]):
            rate, success, steps = household_rate(env_id, args.seconds)
            twin = TEXTWORLD_TWIN[env_id]
            tw_rate = tw_success = None
            if not args.no_textworld:
                game = make_textworld_game(Path(tmp), **twin)
                budget = PRESETS[env_id][1]["max_steps"]
                tw_rate, tw_success = textworld_rate(game, args.tw_steps, max_episode_steps=budget)
            ratio = rate / tw_rate if tw_rate else None
            data["presets"][env_id] = {
                "steps": steps,
                "steps_per_s": rate,
                "success": success,
                "textworld_twin": twin,
                "textworld_steps_per_s": tw_rate,
                "textworld_success": tw_success,
                "ratio": ratio,
            }
            rows.append(
                (
                    env_id,
                    f"{steps:,}",
                    f"{rate:,.0f}",
                    f"{success:.3f}",
                    f"world {twin['world_size']}, objects {twin['nb_objects']}, "
                    f"quest {twin['quest_length']}",
                    "n/a" if tw_rate is None else f"{tw_rate:,.0f}",
                    "n/a" if tw_success is None else f"{tw_success:.3f}",
                    "n/a" if ratio is None else f"{ratio:.0f}x",
                )
            )

    table = markdown_table(
        (
            "preset",
            "steps",
            "steps/s",
            "success",
            "TextWorld twin",
            "TextWorld steps/s",
            "TextWorld success",
            "ratio",
        ),
        rows,
        align="lrrrlrrr",
    )
    text = (
        "Random agent over admissible actions; steps per CPU second (one core); household on "
        "env.unwrapped (no wrappers); TextWorld episodes capped at the preset's max_steps; "
        "ratio = household / TextWorld steps/s.\n\n" + table
    )
    print(text)
    write_results("env_throughput", stamp, data, text)


if __name__ == "__main__":
    main()
