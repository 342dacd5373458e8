"""What the oracle hooks cost: `steps_to_go()` per step, and `clone_state()`/`restore_state()`.

    python benchmarks/oracle_overhead.py                 # about half a minute on one core
    python benchmarks/oracle_overhead.py --seconds 1 --envs creditgym/HouseholdEasy-v0

For each env: steps/s of a random agent over ``info["admissible_actions"]`` on
``env.unwrapped`` (as `env_throughput.py` plays it), then the same loop asking
``steps_to_go()`` after every step as a rollout that records cost-to-go does (once per step:
the rollout reuses the value as the next turn's ``cost_to_go``), and the overhead in percent;
then microseconds per clone and per restore. Rates are per CPU second of this process.
"""

from __future__ import annotations

import argparse
import random
import time

import creditgym
from creditgym.envs import info as keys

DEFAULT_ENVS = (
    "creditgym/HouseholdEasy-v0",
    "creditgym/HouseholdMedium-v0",
    "creditgym/Household-v0",
    "creditgym/WebShopEasy-v0",
    "creditgym/WebShop-v0",
    "creditgym/SearchQAEasy-v0",
    "creditgym/SearchQA-v0",
)


def step_rate(env_id: str, seconds: float, cost_to_go: bool, seed: int = 0) -> float:
    """Random-agent steps per CPU second, asking `steps_to_go()` after every step if told."""
    env = creditgym.make(env_id).unwrapped
    rng = random.Random(seed)
    _, info = env.reset(seed=seed)
    if cost_to_go:
        env.steps_to_go()
    steps = 0
    start, deadline = time.process_time(), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            _, _, terminated, truncated, info = env.step(rng.choice(info[keys.ADMISSIBLE_ACTIONS]))
            if cost_to_go:
                env.steps_to_go()
            if terminated or truncated:
                _, info = env.reset()
                if cost_to_go:
                    env.steps_to_go()
        steps += 100
    return steps / (time.process_time() - start)


def clone_cost(env_id: str, repeats: int = 500) -> tuple[float, float]:
    """Microseconds per `clone_state()` and per `restore_state()`, a few steps into a task."""
    env = creditgym.make(env_id).unwrapped
    rng = random.Random(1)
    _, info = env.reset(seed=1)
    for _ in range(2):
        _, _, terminated, truncated, info = env.step(rng.choice(info[keys.ADMISSIBLE_ACTIONS]))
    start = time.process_time()
    for _ in range(repeats):
        snapshot = env.clone_state()
    middle = time.process_time()
    for _ in range(repeats):
        env.restore_state(snapshot)
    end = time.process_time()
    return (middle - start) / repeats * 1e6, (end - middle) / repeats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--envs", nargs="*", default=list(DEFAULT_ENVS))
    args = parser.parse_args()
    print(
        f"{'env':32} {'steps/s':>9} {'+cost-to-go':>12} {'overhead':>9} "
        f"{'clone us':>9} {'restore us':>10}"
    )
    for env_id in args.envs:
        plain = step_rate(env_id, args.seconds, cost_to_go=False)
        oracle = step_rate(env_id, args.seconds, cost_to_go=True)
        clone, restore = clone_cost(env_id)
        print(
            f"{env_id:32} {plain:9.0f} {oracle:12.0f} {plain / oracle - 1:9.0%} "
            f"{clone:9.0f} {restore:10.0f}"
        )


if __name__ == "__main__":
    main()
