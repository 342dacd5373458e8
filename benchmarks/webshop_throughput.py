"""WebShop env timings: catalog + BM25 index build, search latency, env steps per second, and the
expert's and a random agent's success on test instructions.

    python benchmarks/webshop_throughput.py [--sizes 10000 100000] [--episodes 200]

Builds everything in a fresh temporary cache (so build times are real builds), prints a table.
Targets: median search < 5 ms at 10k products; catalog + index build < 60 s at 100k.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import numpy as np

from creditgym.envs import info as keys
from creditgym.envs.webshop import WebShopEnv
from creditgym.envs.webshop.catalog import CatalogParams, generate_catalog, load_catalog
from creditgym.envs.webshop.goals import make_goal, suggested_query
from creditgym.envs.webshop.search import load_search_engine


def run_episodes(env: WebShopEnv, policy: str, episodes: int) -> tuple[float, float, float]:
    """(success rate, mean score, env steps per second) over test goals 0..episodes-1."""
    rng = random.Random(0)
    won, scores, steps = [], [], 0
    start = time.perf_counter()
    for index in range(episodes):
        _, info = env.reset(options={"goal_index": index})
        terminated = truncated = False
        while not (terminated or truncated):
            action = (
                env.expert_action()
                if policy == "expert"
                else rng.choice(info[keys.ADMISSIBLE_ACTIONS])
            )
            _, _, terminated, truncated, info = env.step(action)
            steps += 1
        won.append(info[keys.WON])
        scores.append(info["score"])
    return float(np.mean(won)), float(np.mean(scores)), steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000], help="catalog sizes"
    )
    parser.add_argument("--episodes", type=int, default=200, help="test instructions per policy")
    parser.add_argument("--queries", type=int, default=500, help="searches timed per size")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        for n in args.sizes:
            params = CatalogParams(n_products=n)
            start = time.perf_counter()
            catalog = load_catalog(params, cache_dir)
            catalog_s = time.perf_counter() - start
            start = time.perf_counter()
            engine = load_search_engine(catalog, cache_dir)
            index_s = time.perf_counter() - start

            goals = [make_goal(catalog, "test", i) for i in range(args.queries)]
            latencies, top10 = [], []
            for goal in goals:
                query = suggested_query(goal)
                start = time.perf_counter()
                hits = engine.search(query)
                latencies.append(time.perf_counter() - start)
                top10.append(goal.product in hits[:10])
            latency_ms = 1000 * np.array(latencies)

            env = WebShopEnv(n_products=n, split="test", cache_dir=cache_dir)
            expert = run_episodes(env, "expert", args.episodes)
            rand = run_episodes(env, "random", args.episodes)
            rows.append(
                (
                    n,
                    catalog_s,
                    index_s,
                    np.median(latency_ms),
                    np.percentile(latency_ms, 99),
                    np.mean(top10),
                    expert,
                    rand,
                )
            )

    start = time.perf_counter()
    generate_catalog(CatalogParams(n_products=1_000_000))
    million_s = time.perf_counter() - start

    print(
        f"{'products':>9} {'catalog s':>9} {'index s':>8} {'build s':>8} {'search ms med':>13} "
        f"{'p99':>6} {'target@10':>9} {'expert succ/score':>17} {'random succ/score':>17} "
        f"{'steps/s exp/rand':>16}"
    )
    for n, catalog_s, index_s, median, p99, top10, expert, rand in rows:
        print(
            f"{n:>9,} {catalog_s:>9.2f} {index_s:>8.2f} {catalog_s + index_s:>8.2f} "
            f"{median:>13.3f} {p99:>6.3f} {top10:>9.3f} "
            f"{expert[0]:>8.3f}/{expert[1]:>5.1f}  {rand[0]:>8.3f}/{rand[1]:>5.1f}  "
            f"{expert[2]:>7.0f}/{rand[2]:>6.0f}"
        )
    print(f"catalog arrays only, 1,000,000 products: {million_s:.2f} s")


if __name__ == "__main__":
    main()
