"""GPU smoke test: 2 quickstart iterations with the hf engine and with the vllm engine.

    python benchmarks/gpu_smoke.py [--iterations 2] [--model tiny]

On a CUDA machine it trains `configs/quickstart.yaml` for `--iterations` iterations with
``rollout.engine=hf`` and again with ``rollout.engine=vllm`` (needs ``pip install
'creditgym[vllm]'``) and prints rollout tokens per second for each (generated response tokens
over rollout wall time, the first iteration included). On a machine without CUDA it says so
and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from creditgym.config import load_config
from creditgym.train.trainer import train


def run(engine: str, args: argparse.Namespace, out: Path) -> dict[str, float]:
    overrides = [
        f"rollout.engine={engine}",
        f"policy.model={args.model}",
        f"train.iterations={args.iterations}",
        "eval.every=0",
        "eval.episodes=16",
        "run.progress=false",
        "run.tensorboard=false",
        f"run.output_dir={out / engine}",
    ]
    train(load_config("configs/quickstart.yaml", overrides))
    rows = [json.loads(line) for line in (out / engine / "metrics.jsonl").read_text().splitlines()]
    rows = [row for row in rows if "time/rollout" in row]
    tokens = sum(row["rollout/response_tokens"] for row in rows)
    seconds = sum(row["time/rollout"] for row in rows)
    return {
        "tokens": tokens,
        "seconds": seconds,
        "update_seconds": sum(row["time/update"] for row in rows),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument(
        "--model", default="tiny", help="policy.model: tiny, smollm2 or an HF model"
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_smoke needs a CUDA GPU and none is visible: nothing to measure here (exit 0).")
        return 0
    engines = ["hf"]
    if importlib.util.find_spec("vllm") is not None:
        engines.append("vllm")
    else:
        print(
            "vLLM is not installed (pip install 'creditgym[vllm]'): measuring the hf engine only."
        )

    table = Table(
        title=f"quickstart, {args.iterations} iterations, {torch.cuda.get_device_name()}, {args.model}"
    )
    for column in ("engine", "response tokens", "rollout s", "rollout tokens/s", "update s"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="creditgym-gpu-smoke-") as tmp:
        for engine in engines:
            row = run(engine, args, Path(tmp))
            table.add_row(
                engine,
                f"{row['tokens']:.0f}",
                f"{row['seconds']:.1f}",
                f"{row['tokens'] / row['seconds']:.0f}",
                f"{row['update_seconds']:.1f}",
            )
    Console(width=120).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
