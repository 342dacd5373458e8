"""SearchQA env timings and the acceptance numbers: world + BM25 index build, search latency,
steps/s under a random agent, the expert's EM/F1 and BM25 recall@5 of its queries, on test.

    python benchmarks/search_env_throughput.py
    python benchmarks/search_env_throughput.py --difficulties easy standard --seconds 2

Builds every index in a fresh temporary cache (so build times are real builds) and prints a
table. Steps/s is `env.unwrapped` under a random agent choosing uniformly from
``info["admissible_actions"]`` (so resets after its early answers are timed too), per CPU
second of this process (`time.process_time`), so other jobs on a shared machine do not skew it.
Targets: expert EM >= 0.98 and recall@5 >= 0.95 on test.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import numpy as np

from creditgym.envs import info as keys
from creditgym.envs.search import EM, F1, SearchQAEnv
from creditgym.envs.search.questions import DIFFICULTIES


def expert_scores(env: SearchQAEnv) -> tuple[float, float, float, list[float]]:
    """(EM, F1, recall@5 of its queries, search latencies in ms) of the expert on every question."""
    em, f1, hits, latencies = [], [], [], []
    for seed in range(len(env.questions)):
        env.reset(seed=seed)
        while True:
            action = env.expert_action()
            if action.startswith("search["):
                start = time.perf_counter()
                top5 = env.index.search(action[len("search[") : -1], 5)
                latencies.append(1000 * (time.perf_counter() - start))
                hits.append(any(passage in env.question.gold_passages for passage in top5))
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        em.append(info[EM])
        f1.append(info[F1])
    return float(np.mean(em)), float(np.mean(f1)), float(np.mean(hits)), latencies


def random_agent(env: SearchQAEnv, seconds: float) -> tuple[float, float, int]:
    """A uniform admissible-action agent: (steps per CPU second, mean episode return, episodes)."""
    rng = random.Random(0)
    steps, returns, episode_return = 0, [], 0.0
    _, info = env.reset(seed=0)
    start = time.process_time()
    while time.process_time() - start < seconds:
        _, reward, terminated, truncated, info = env.step(rng.choice(info[keys.ADMISSIBLE_ACTIONS]))
        steps += 1
        episode_return += reward
        if terminated or truncated:
            returns.append(episode_return)
            episode_return = 0.0
            _, info = env.reset(seed=rng.randrange(1 << 30))
    return steps / (time.process_time() - start), float(np.mean(returns)), len(returns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--difficulties", nargs="+", default=list(DIFFICULTIES), choices=list(DIFFICULTIES)
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="CPU seconds of random play per difficulty"
    )
    args = parser.parse_args()

    print(
        f"{'difficulty':>10} {'passages':>8} {'build s':>7} {'test q':>6} {'expert EM':>9} "
        f"{'F1':>5} {'recall@5':>8} {'search ms med/p99':>17} {'random steps/s':>14} "
        f"{'random return':>13}"
    )
    with tempfile.TemporaryDirectory() as cache_dir:
        for difficulty in args.difficulties:
            start = time.perf_counter()
            env = SearchQAEnv(split="test", difficulty=difficulty, cache_dir=cache_dir)
            build_s = time.perf_counter() - start
            em, f1, recall, latencies = expert_scores(env)
            rate, mean_return, _ = random_agent(
                SearchQAEnv(split="train", difficulty=difficulty, cache_dir=cache_dir), args.seconds
            )
            print(
                f"{difficulty:>10} {len(env.corpus.passages):>8,} {build_s:>7.2f} "
                f"{len(env.questions):>6} {em:>9.3f} {f1:>5.3f} {recall:>8.3f} "
                f"{np.median(latencies):>8.3f}/{np.percentile(latencies, 99):>8.3f} "
                f"{rate:>14,.0f} {mean_return:>13.3f}"
            )


if __name__ == "__main__":
    main()
