"""The console display of a training run: a progress bar with training and held-out success.

Kept apart from the loop so the loop reads as phases and a run without a terminal (tests,
`run.progress=false`) shows nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ProgressDisplay"]


class ProgressDisplay:
    """``iter 3/40 ━━━━━  train success 25%  held-out: valid_seen 12%  valid_unseen 9%``.

    Args:
        console: a `rich.console.Console`.
        total: the run's iterations.
        completed: iterations already done (a resumed run starts there).
        splits: the held-out splits whose latest success the status shows.
        enabled: False shows nothing.
    """

    def __init__(
        self, console: Any, total: int, completed: int, splits: list[str], *, enabled: bool = True
    ) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.splits = list(splits)
        self.progress = Progress(
            TextColumn("[bold]iter {task.completed}/{task.total}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
        )
        self.bar = self.progress.add_task("train", total=total, completed=completed, status="")

    def __enter__(self) -> ProgressDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.progress.__exit__(*exc_info)

    def update(self, iteration: int, row: dict[str, Any], evals: list[dict[str, Any]]) -> None:
        """Show iteration `iteration`'s metrics `row` and the latest held-out results."""
        held_out = evals[-1] if evals else {}
        held_out_text = "  ".join(
            f"{split} {held_out.get(f'eval/{split}/success', 0):.0%}" for split in self.splits
        )
        self.progress.update(
            self.bar,
            completed=iteration,
            status=f"train success {row['rollout/success']:.0%}  held-out: {held_out_text}",
        )
