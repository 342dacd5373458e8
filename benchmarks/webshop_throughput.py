"""WebShop env timings: catalog + BM25 index build, search latency, env steps per second, and the
expert's and a random agent's success on test instructions.

    python benchmarks/webshop_throughput.py [--sizes 10000 100000] [--episodes 200]

Builds everything in a fresh temporary cache (so build times are real builds), prints a table
and writes it to benchmarks/results/webshop_throughput.{md,json}, stamped with the commit, the
command and the machine's load (see provenance.py).
Targets: median search < 5 ms at 10k products; catalog + index build < 60 s at 100k.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import markdown_table, stamp_or_exit, write_results  # noqa: E402

from creditgym.envs import info as keys  # noqa: E402
from creditgym.envs.webshop import WebShopEnv  # noqa: E402
from creditgym.envs.webshop.catalog import (  # noqa: E402
    CatalogParams,
    generate_catalog,
    load_catalog,
)
from creditgym.envs.webshop.goals import make_goal, suggested_query  # noqa: E402
from creditgym.envs.webshop.search import load_search_engine  # noqa: E402


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
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)

    sizes = []
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
            policies = {}
            for policy in ("expert", "random"):
                success, score, rate = run_episodes(env, policy, args.episodes)
                policies[policy] = {"success": success, "score": score, "steps_per_s": rate}
            sizes.append(
                {
                    "products": n,
                    "catalog_s": catalog_s,
                    "index_s": index_s,
                    "build_s": catalog_s + index_s,
                    "search_ms_median": float(np.median(latency_ms)),
                    "search_ms_p99": float(np.percentile(latency_ms, 99)),
                    "target_in_top10": float(np.mean(top10)),
                    **policies,
                }
            )

    start = time.perf_counter()
    generate_catalog(CatalogParams(n_products=1_000_000))
    million_s = time.perf_counter() - start

    table = markdown_table(
        (
            "products",
            "catalog s",
            "index s",
            "build s",
            "search ms median",
            "search ms p99",
            "target in top 10",
            "expert success / score",
            "random success / score",
            "steps/s expert / random",
        ),
        [
            (
                f"{row['products']:,}",
                f"{row['catalog_s']:.2f}",
                f"{row['index_s']:.2f}",
                f"{row['build_s']:.2f}",
                f"{row['search_ms_median']:.3f}",
                f"{row['search_ms_p99']:.3f}",
                f"{row['target_in_top10']:.3f}",
                f"{row['expert']['success']:.3f} / {row['expert']['score']:.1f}",
                f"{row['random']['success']:.3f} / {row['random']['score']:.1f}",
                f"{row['expert']['steps_per_s']:,.0f} / {row['random']['steps_per_s']:,.0f}",
            )
            for row in sizes
        ],
    )
    text = (
        f"{args.queries} timed searches per size (the expert's query for each test goal; "
        f"target in top 10: the goal's product among the first 10 hits); {args.episodes} test "
        f"instructions per policy.\n\n{table}\n\n"
        f"catalog arrays only, 1,000,000 products: {million_s:.2f} s"
    )
    print(text)
    data = {
        "episodes": args.episodes,
        "queries": args.queries,
        "sizes": sizes,
        "catalog_1m_s": million_s,
    }
    write_results("webshop_throughput", stamp, data, text)


if __name__ == "__main__":
    main()
