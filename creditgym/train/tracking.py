"""Run tracking: metrics to JSONL and TensorBoard (and optionally Weights & Biases or Trackio),
and the learning-curve plot at the end.

``run.report_to`` adds trackers: ``tensorboard`` (as ``run.tensorboard``), ``wandb`` (``pip
install wandb``; ``WANDB_MODE=offline`` keeps the run on disk) and ``trackio`` (``pip install
trackio``, local-first). Each gets every numeric metric of every row, at the row's iteration.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from creditgym.train.disk import disk_full_guard

__all__ = ["MetricsWriter", "plot_learning_curve", "TRACKERS"]

TRACKERS = ("tensorboard", "wandb", "trackio")


class _ModuleTracker:
    """wandb or trackio: both are ``init(project, name, config) / log(row, step) / finish()``."""

    def __init__(self, name: str, run_name: str, config: dict[str, Any] | None) -> None:
        import importlib

        try:
            self.module = importlib.import_module(name)
        except ImportError:
            raise ImportError(
                f"run.report_to names {name}, which is not installed: pip install {name} "
                f"(or drop {name} from run.report_to)"
            ) from None
        self.module.init(project="creditgym", name=run_name, config=config or {})

    def log(self, scalars: dict[str, float], step: int) -> None:
        self.module.log(scalars, step=step)

    def close(self) -> None:
        self.module.finish()


class MetricsWriter:
    """Appends one JSON object per line to `metrics.jsonl`; mirrors scalars to TensorBoard.

    A writer built with ``enabled=False`` (every training process but rank 0) writes nothing.
    """

    def __init__(
        self,
        output_dir: Path,
        tensorboard: bool = True,
        *,
        enabled: bool = True,
        report_to: list[str] | tuple[str, ...] = (),
        config: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(output_dir) / "metrics.jsonl"
        self.enabled = enabled
        self._tb = None
        self._trackers: list[_ModuleTracker] = []
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        run_name = Path(output_dir).resolve().name
        self._trackers = [
            _ModuleTracker(name, run_name, config) for name in report_to if name != "tensorboard"
        ]
        if tensorboard or "tensorboard" in report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(Path(output_dir) / "tensorboard"))
            except ImportError:
                warnings.warn(
                    "tensorboard is not installed; metrics go to metrics.jsonl only", stacklevel=2
                )

    def write(self, row: dict[str, Any], step: int) -> None:
        if not self.enabled:
            return
        with disk_full_guard(self.path), self.path.open("a") as f:
            f.write(json.dumps(row, default=float) + "\n")
        scalars = {
            key: float(value)
            for key, value in row.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        if self._tb is not None:
            for key, value in scalars.items():
                self._tb.add_scalar(key, value, step)
            self._tb.flush()
        for tracker in self._trackers:
            tracker.log(scalars, step)

    def start_over(self) -> None:
        """Empty `metrics.jsonl` for a run that starts afresh in a directory an earlier run (one
        stopped before its first checkpoint, or one started over with ``run.resume=false``) has
        written to, so its rows are not read as this run's."""
        if self.enabled and self.path.exists():
            self.path.write_text("")

    def truncate_after(self, iteration: int) -> None:
        """Drop rows past `iteration` (a resumed run rewrites what the crashed one logged).

        A line a crash tore mid-write (not JSON) is dropped with a warning, not an error.
        """
        if not self.enabled or not self.path.exists():
            return
        rows = []
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                rows.append(row)
            else:
                warnings.warn(
                    f"{self.path} line {number} is torn (not JSON; a crash mid-write?): dropped",
                    stacklevel=2,
                )
        kept = [row for row in rows if row.get("iteration", 0) <= iteration]
        self.path.write_text("".join(json.dumps(row) + "\n" for row in kept))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        for tracker in self._trackers:
            tracker.close()


def plot_learning_curve(
    history: list[dict[str, Any]], evals: list[dict[str, Any]], path: Path, title: str = ""
) -> Path:
    """Training success per iteration and held-out success per split against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if history:
        ax.plot(
            [row["env_steps"] for row in history],
            [row["rollout/success"] for row in history],
            label="train rollouts",
            color="0.6",
        )
    splits = sorted({key.split("/")[1] for row in evals for key in row if key.startswith("eval/")})
    for split in splits:
        points = [
            (row["env_steps"], row[f"eval/{split}/success"])
            for row in evals
            if f"eval/{split}/success" in row
        ]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", label=f"held-out {split}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
