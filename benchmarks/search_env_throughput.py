"""SearchQA env timings and the acceptance numbers: world + BM25 index build, search latency,
steps/s under a random agent, the expert's EM/F1 and BM25 recall@5 of its queries, on test.

    python benchmarks/search_env_throughput.py
    python benchmarks/search_env_throughput.py --difficulties easy standard --seconds 2

Builds every index in a fresh temporary cache (so build times are real builds), prints a table
and writes it to benchmarks/results/search_env_throughput.{md,json}, stamped with the commit,
the command and the machine's load (see provenance.py). Steps/s is `env.unwrapped` under a
random agent choosing uniformly from ``info["admissible_actions"]`` (so resets after its early
answers are timed too), per CPU second of this process (`time.process_time`), so other jobs on
a shared machine do not skew it.
Targets: expert EM >= 0.98 and recall@5 >= 0.95 on test.
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
from creditgym.envs.search import EM, F1, SearchQAEnv  # noqa: E402
from creditgym.envs.search.questions import DIFFICULTIES  # noqa: E402


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
    parser.add_argument("--allow-dirty", action="store_true", help="record a dirty tree")
    args = parser.parse_args()
    stamp = stamp_or_exit(args.allow_dirty)

    columns = (
        "difficulty",
        "passages",
        "build s",
        "test questions",
        "expert EM",
        "F1",
        "recall@5",
        "search ms median",
        "search ms p99",
        "random steps/s",
        "random return",
    )
    rows, data = [], {"seconds": args.seconds, "difficulties": {}}
    with tempfile.TemporaryDirectory() as cache_dir:
        for difficulty in args.difficulties:
            start = time.perf_counter()
            env = SearchQAEnv(split="test", difficulty=difficulty, cache_dir=cache_dir)
            build_s = time.perf_counter() - start
            em, f1, recall, latencies = expert_scores(env)
            rate, mean_return, _ = random_agent(
                SearchQAEnv(split="train", difficulty=difficulty, cache_dir=cache_dir), args.seconds
            )
            result = {
                "passages": len(env.corpus.passages),
                "build_s": build_s,
                "test_questions": len(env.questions),
                "expert_em": em,
                "expert_f1": f1,
                "recall_at_5": recall,
                "search_ms_median": float(np.median(latencies)),
                "search_ms_p99": float(np.percentile(latencies, 99)),
                "random_steps_per_s": rate,
                "random_return": mean_return,
            }
            data["difficulties"][difficulty] = result
            rows.append(
                (
                    difficulty,
                    f"{result['passages']:,}",
                    f"{build_s:.2f}",
                    result["test_questions"],
                    f"{em:.3f}",
                    f"{f1:.3f}",
                    f"{recall:.3f}",
                    f"{result['search_ms_median']:.3f}",
                    f"{result['search_ms_p99']:.3f}",
                    f"{rate:,.0f}",
                    f"{mean_return:.3f}",
                )
            )
    text = (
        "The expert on every test question (EM, F1, recall@5 and latency of its searches); a "
        f"uniform random agent over admissible actions on train for {args.seconds:g} CPU s per "
        "difficulty (steps/s, mean episode return).\n\n" + markdown_table(columns, rows)
    )
    print(text)
    write_results("search_env_throughput", stamp, data, text)


if __name__ == "__main__":
    main()
