"""Steps per second of creditgym's Household-v0 beside TextWorldExpress and ScienceWorld.

    python benchmarks/engine_throughput.py                       # about 5 minutes
    python benchmarks/engine_throughput.py --seconds 2 --repeats 1 --no-save   # a smoke test

One process, one engine at a time, a random agent choosing uniformly among the valid actions,
episodes reset when they end (resets are part of the time), wall-clock steps per second
(`time.perf_counter`: the Java engines run in their own JVM process, whose CPU time this
process's clock would miss). Each row runs ``--seconds`` per repetition, ``--repeats`` times,
rows interleaved so a burst of load elsewhere hits all of them; the table gives the mean and
the spread over repetitions. Rows:

* ``Household-v0 (creditgym)``: `creditgym.make("creditgym/Household-v0")`, its admissible list;
* ``<game> (engine API)``: the engine's own Python API as its authors time it:
  `textworld_express.TextWorldExpressEnv.step` (valid actions in its info) and
  `scienceworld.ScienceWorldEnv.step` (valid actions in ``info["valid"]``), ScienceWorld
  on ``boil``;
* ``<game> (creditgym)``: the same games through creditgym's envs, with the info contract
  (anchor of the whole state, admissible list, events) computed every step.

Run it on an idle machine: a figure measured while other jobs ran is not a measurement (the
stamp records the load average). Writes ``results/engine_throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from provenance import stamp_or_exit, write_results  # noqa: E402

import creditgym  # noqa: E402
from creditgym.envs import info as keys  # noqa: E402

TWX_GAMES = {"twc": "creditgym/TWX-TWC-v0", "cookingworld": "creditgym/TWX-CookingWorld-v0"}
TWX_GAMES["coin"] = "creditgym/TWX-Coin-v0"
SCIENCEWORLD_TASK = "boil"


class Walker:
    """A random agent over one env: `step()` plays one action and resets when needed."""

    def __init__(self, reset: Callable[[int], list[str]], step: Callable[[str], tuple]) -> None:
        self._reset, self._step = reset, step
        self.rng = random.Random(0)
        self.episode = 0
        self.actions = self._reset(self.episode)

    def step(self) -> None:
        done, self.actions = self._step(self.rng.choice(self.actions))
        if done or not self.actions:
            self.episode += 1
            self.actions = self._reset(self.episode)


def creditgym_walker(env_id: str, **kwargs) -> Walker:
    env = creditgym.make(env_id, **kwargs).unwrapped

    def reset(seed: int) -> list[str]:
        return list(env.reset(seed=seed)[1][keys.ADMISSIBLE_ACTIONS])

    def step(action: str) -> tuple:
        _, _, terminated, truncated, info = env.step(action)
        return terminated or truncated, list(info[keys.ADMISSIBLE_ACTIONS])

    return Walker(reset, step)


def twx_engine_walker(game: str) -> Walker:
    from textworld_express import TextWorldExpressEnv

    engine = TextWorldExpressEnv(envStepLimit=100)

    def reset(seed: int) -> list[str]:
        _, info = engine.reset(seed=seed, gameFold="train", gameName=game, gameParams="")
        return list(info["validActions"])

    def step(action: str) -> tuple:
        _, _, done, info = engine.step(action)
        return done, list(info["validActions"])

    return Walker(reset, step)


def scienceworld_engine_walker(task: str) -> Walker:
    from scienceworld import ScienceWorldEnv

    engine = ScienceWorldEnv("", envStepLimit=100)

    def reset(seed: int) -> list[str]:
        engine.load(task, seed % 10, "")
        _, info = engine.reset()
        return list(info["valid"])

    def step(action: str) -> tuple:
        _, _, done, info = engine.step(action)
        return done, list(info["valid"])

    return Walker(reset, step)


def rows(skip_scienceworld: bool) -> dict[str, Callable[[], Walker]]:
    """Row name -> how to build its walker (built once, before any timing)."""
    table: dict[str, Callable[[], Walker]] = {
        "Household-v0 (creditgym)": lambda: creditgym_walker("creditgym/Household-v0")
    }
    for game, env_id in TWX_GAMES.items():
        table[f"TWX {game} (engine API)"] = lambda game=game: twx_engine_walker(game)
        table[f"TWX {game} (creditgym)"] = lambda env_id=env_id: creditgym_walker(env_id)
    if not skip_scienceworld:
        table[f"ScienceWorld {SCIENCEWORLD_TASK} (engine API)"] = lambda: (
            scienceworld_engine_walker(SCIENCEWORLD_TASK)
        )
        table[f"ScienceWorld {SCIENCEWORLD_TASK} (creditgym)"] = lambda: creditgym_walker(
            "creditgym/ScienceWorld-v0", task=SCIENCEWORLD_TASK
        )
    return table


def steps_per_second(walker: Walker, seconds: float) -> float:
    """Wall-clock steps per second of `walker` over about `seconds`."""
    steps, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        walker.step()
        steps += 1
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per row and repetition")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of every row")
    parser.add_argument("--skip-scienceworld", action="store_true")
    parser.add_argument("--no-save", action="store_true", help="print only (smoke tests)")
    parser.add_argument("--allow-dirty", action="store_true", help="see provenance.py")
    args = parser.parse_args()
    stamp = None if args.no_save else stamp_or_exit(args.allow_dirty)

    walkers = {name: build() for name, build in rows(args.skip_scienceworld).items()}
    rates: dict[str, list[float]] = {name: [] for name in walkers}
    for _ in range(args.repeats):
        for name, walker in walkers.items():
            rates[name].append(steps_per_second(walker, args.seconds))
    household = statistics.mean(rates["Household-v0 (creditgym)"])
    lines = [
        "| engine | steps/s (mean) | min - max | Household-v0 / this |",
        "|---|---:|---:|---:|",
    ]
    for name, values in rates.items():
        mean = statistics.mean(values)
        lines.append(
            f"| {name} | {mean:,.0f} | {min(values):,.0f} - {max(values):,.0f} | "
            f"{household / mean:,.1f}x |"
        )
    report = "\n".join(lines)
    print(report)
    if stamp is not None:
        data = {"seconds": args.seconds, "repeats": args.repeats, "steps_per_second": rates}
        write_results("engine_throughput", stamp, data, report)


if __name__ == "__main__":
    main()
