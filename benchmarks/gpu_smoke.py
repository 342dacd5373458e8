"""GPU smoke test: two iterations of the GPU recipe with the hf engine and with the vllm engine.

    python benchmarks/gpu_smoke.py --model /path/to/Qwen2.5-1.5B-Instruct
    python benchmarks/gpu_smoke.py --config configs/quickstart_rl.yaml --model tiny

On a CUDA machine it trains `--config` (default `configs/gigpo_household_1.5b.yaml`, the GiGPO
paper's ALFWorld settings) for `--iterations` iterations with ``rollout.engine=hf`` and again
with ``rollout.engine=vllm`` (if ``pip install 'creditgym[vllm]'`` is there), and prints for each:
rollout tokens per second (generated response tokens over rollout wall time), update seconds,
peak GPU memory, and the share of the model's weights the updates moved (the saved fp32 master
weights against the initial ones: at lr 1e-6 pure bf16 weights would barely move). `--set`
passes more overrides (e.g. ``rollout.groups=4`` for a quicker check). On a machine without
CUDA it says so and exits 0.
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

RECIPE = "configs/gigpo_household_1.5b.yaml"


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    weights: dict[str, torch.Tensor] = {}
    for file in sorted(Path(directory).glob("*.safetensors")):
        weights.update(load_file(file))
    return weights


def moved_fraction(initial_dir: Path | None, trained_dir: Path) -> float | None:
    """Share of the initial weights' elements whose trained value differs (None: not comparable)."""
    if initial_dir is None or not list(Path(initial_dir).glob("*.safetensors")):
        return None
    initial, trained = _weights(initial_dir), _weights(trained_dir)
    changed = total = 0
    for name, before in initial.items():
        after = trained.get(name)
        if after is None or after.shape != before.shape:
            continue
        changed += int((after.float() != before.float()).sum())
        total += before.numel()
    return changed / total if total else None


def run(engine: str, args: argparse.Namespace, out: Path) -> dict[str, float | None]:
    overrides = [
        f"rollout.engine={engine}",
        f"train.iterations={args.iterations}",
        "eval.every=0",
        "eval.episodes=8",
        "run.progress=false",
        "run.tensorboard=false",
        f"run.output_dir={out / engine}",
        *([f"policy.model={args.model}"] if args.model else []),
        *args.set,
    ]
    config = load_config(args.config, overrides)
    torch.cuda.reset_peak_memory_stats()
    result = train(config)
    peak = torch.cuda.max_memory_allocated() / 2**30
    rows = [json.loads(line) for line in (out / engine / "metrics.jsonl").read_text().splitlines()]
    rows = [row for row in rows if "time/rollout" in row]
    model_dir = Path(config.policy.model).expanduser()
    return {
        "tokens": sum(row["rollout/response_tokens"] for row in rows),
        "seconds": sum(row["time/rollout"] for row in rows),
        "update_seconds": sum(row["time/update"] for row in rows),
        "peak_gib": peak,
        "moved": moved_fraction(
            model_dir if model_dir.is_dir() else None, result.checkpoint / "model"
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=RECIPE)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--model", help="policy.model: a local Hugging Face directory (or tiny)")
    parser.add_argument("--set", nargs="*", default=[], help="more key=value overrides")
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
        title=f"{args.config}, {args.iterations} iterations, {torch.cuda.get_device_name()}"
    )
    columns = ("engine", "response tokens", "rollout s", "tokens/s", "update s", "peak GiB")
    for column in (*columns, "weights moved"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="creditgym-gpu-smoke-") as tmp:
        for engine in engines:
            row = run(engine, args, Path(tmp))
            moved = (
                "n/a (no safetensors to compare)" if row["moved"] is None else f"{row['moved']:.1%}"
            )
            table.add_row(
                engine,
                f"{row['tokens']:.0f}",
                f"{row['seconds']:.1f}",
                f"{row['tokens'] / max(row['seconds'], 1e-9):.0f}",
                f"{row['update_seconds']:.1f}",
                f"{row['peak_gib']:.1f}",
                moved,
            )
    Console(width=140).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
