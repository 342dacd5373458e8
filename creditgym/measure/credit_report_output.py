"""The credit report as a rich table, JSON, a markdown table and a plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from creditgym.credit.fidelity import DEAD_END, progress_labels
from creditgym.measure.credit_report import (
    CreditReport,
    MethodResult,
    label_name,
    mc_informed_scores,
    mc_reference_scores,
)

__all__ = [
    "report_columns",
    "report_rows",
    "report_table",
    "report_json",
    "report_markdown",
    "plot_report",
]

# Spearman is "rho"; MC = agreement with the Monte-Carlo advantages of the agent itself (the
# headline: what a policy gradient follows); planner = agreement with the env's omniscient
# cost-to-go labels; zero A = share of turns with advantage exactly 0 (no learning signal).
COLUMNS = (
    "method",
    "MC rho",
    "MC sign",
    "planner within-episode rho (episodes)",
    "planner AUC",
    "zero A",
    "A std",
    "credit ms",
)
#: after the planner's, where the env has an information-state cost-to-go
INFORMED_COLUMNS = ("searcher within-episode rho (episodes)", "searcher AUC")
BY_CONSTRUCTION = "0 (constant per episode)"


def report_columns(report: CreditReport) -> tuple[str, ...]:
    """The table's columns: `COLUMNS`, with `INFORMED_COLUMNS` where the report has them."""
    if report.informed_labels is None:
        return COLUMNS
    at = COLUMNS.index("planner AUC") + 1
    return (*COLUMNS[:at], *INFORMED_COLUMNS, *COLUMNS[at:])


def _number(value: float | None, digits: int = 3) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _within(result: MethodResult, informed: bool = False) -> str:
    scores = result.scores
    if scores.constant_within_episodes:  # GRPO-like: said, not hidden
        return BY_CONSTRUCTION
    if informed:
        return f"{scores.informed_within_episode_spearman:+.3f} ({scores.informed_episodes_ranked})"
    return f"{scores.within_episode_spearman:+.3f} ({scores.episodes_ranked})"


def report_rows(report: CreditReport) -> list[list[str]]:
    """One row of strings per method (columns `report_columns`), then the Monte-Carlo
    reference."""
    informed = report.informed_labels is not None
    rows = []
    for result in report.results:
        scores = result.scores
        searcher = [_within(result, informed=True), _number(scores.informed_batch_auc)]
        rows.append(
            [
                result.method.label,
                _number(scores.mc_spearman),
                _number(scores.mc_sign_agreement),
                _within(result),
                _number(scores.batch_auc),
                *(searcher if informed else []),
                f"{scores.zero_share:.1%}",
                _number(scores.advantage_std),
                f"{scores.seconds * 1000:.1f}",
            ]
        )
    reference = mc_reference_scores(report)
    if reference is not None and report.mc is not None:
        within, ranked, auc = reference
        searcher = []
        if informed:
            s_within, s_ranked, s_auc = mc_informed_scores(report)
            searcher = [f"{s_within:+.3f} ({s_ranked})", _number(s_auc)]
        rows.append(
            [
                f"(Monte-Carlo A, K={report.mc.continuations}, {len(report.mc.turns)} turns)",
                "1.000",
                "1.000",
                f"{within:+.3f} ({ranked})",
                _number(auc),
                *searcher,
                f"{float(np.mean(report.mc.advantage == 0)):.1%}",
                _number(float(np.std(report.mc.advantage))),
                f"{report.mc.seconds * 1000:.0f}",
            ]
        )
    return rows


def _summary(report: CreditReport) -> str:
    kept = [e for e in report.episodes if not e.failed]
    turns = sum(len(e.turns) for e in kept)
    success = np.mean([e.success for e in kept]) if kept else float("nan")
    labels = ", ".join(f"{k}: {v}" for k, v in report.label_counts().items())
    text = (
        f"{report.env_id}, agent {report.agent}, seed {report.seed}: {report.groups} groups x "
        f"{report.group_size} episodes ({len(kept)} kept, success {success:.1%}), {turns} turns; "
        f"progress labels {labels}; rollout {report.rollout_seconds:.1f} s"
    )
    if report.mc is not None:
        text += (
            f"; Monte-Carlo: {len(report.mc.turns)} turns x 2 x K={report.mc.continuations} "
            f"(gamma {report.mc.gamma:g}), "
            f"mean standard error {float(np.mean(report.mc.stderr)):.3f}, "
            f"{report.mc.env_steps} env steps in {report.mc.seconds:.1f} s"
        )
    return text


def report_table(report: CreditReport) -> Any:
    """A rich `Table` of the report, its caption the batch it was measured on."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=f"credit fidelity on {escape(report.env_id)}", caption=escape(_summary(report))
    )
    for column in report_columns(report):
        table.add_column(column, justify="left" if column == "method" else "right", no_wrap=True)
    for row in report_rows(report):
        table.add_row(*(escape(cell) for cell in row))
    return table


def report_markdown(report: CreditReport, command: str = "") -> str:
    """The table as markdown, with the batch summary and the command that produced it."""
    lines = []
    if command:
        lines += [f"`{command}`", ""]
    lines += [_summary(report), ""]
    columns = report_columns(report)
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in report_rows(report)]
    return "\n".join(lines) + "\n"


def _mean_by_label(episodes: list, advantages: list[np.ndarray]) -> dict[str, float]:
    labels = np.concatenate([progress_labels(e) for e in episodes if not e.failed] or [[]])
    values = np.concatenate(
        [np.asarray(a) for e, a in zip(episodes, advantages) if not e.failed] or [[]]
    )
    return {
        label_name(label): float(values[labels == label].mean())
        for label in np.unique(labels[~np.isnan(labels)])
    }


def report_json(report: CreditReport, command: str = "") -> str:
    """Everything the table shows, plus each method's mean advantage per progress label."""
    kept = [e for e in report.episodes if not e.failed]
    data: dict[str, Any] = {
        "command": command,
        "env": report.env_id,
        "agent": report.agent,
        "seed": report.seed,
        "split": report.split,
        "groups": report.groups,
        "group_size": report.group_size,
        "episodes": len(kept),
        "failed_episodes": len(report.episodes) - len(kept),
        "success": float(np.mean([e.success for e in kept])) if kept else None,
        "turns": sum(len(e.turns) for e in kept),
        "progress_labels": report.label_counts(),
        "rollout_seconds": report.rollout_seconds,
        "methods": {
            result.method.label: {
                "shapers": result.method.shapers,
                "estimator": result.method.estimator,
                **result.scores.as_dict(),
                "mean_advantage_by_label": _mean_by_label(report.episodes, result.advantages),
            }
            for result in report.results
        },
    }
    if report.mc is not None:
        within, ranked, auc = mc_reference_scores(report)
        data["monte_carlo"] = {
            "continuations": report.mc.continuations,
            "gamma": report.mc.gamma,
            "turns": len(report.mc.turns),
            "mean_stderr": float(np.mean(report.mc.stderr)),
            "env_steps": report.mc.env_steps,
            "seconds": report.mc.seconds,
            "within_episode_spearman": within,
            "episodes_ranked": ranked,
            "batch_auc": None if math.isnan(auc) else auc,
            "advantage_std": float(np.std(report.mc.advantage)),
        }
        informed = mc_informed_scores(report)
        if informed is not None:
            data["monte_carlo"]["informed_within_episode_spearman"] = informed[0]
            data["monte_carlo"]["informed_episodes_ranked"] = informed[1]
            data["monte_carlo"]["informed_batch_auc"] = (
                None if math.isnan(informed[2]) else informed[2]
            )
    return json.dumps(data, indent=1)


def plot_report(report: CreditReport, path: str | Path) -> Path:
    """Advantage vs progress label, one panel per method: every turn as a jittered dot and the
    mean per label as a line (what a method that credits progress looks like: rising)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(report.results)
    columns = min(panels, 4)
    rows = math.ceil(panels / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.6 * columns, 3.2 * rows), squeeze=False, sharex=True
    )
    rng = np.random.default_rng(0)
    kept = [i for i, e in enumerate(report.episodes) if not e.failed]
    labels = np.concatenate([progress_labels(report.episodes[i]) for i in kept] or [[]])
    finite = labels[np.isfinite(labels)]
    dead_end_x = (finite.min() if len(finite) else 0.0) - 1.0  # dead ends drawn left of the rest
    labels = np.where(labels == DEAD_END, dead_end_x, labels)
    for axis, result in zip(axes.flat, report.results):
        values = np.concatenate([np.asarray(result.advantages[i]) for i in kept] or [[]])
        known = ~np.isnan(labels)
        shown = np.flatnonzero(known)
        if len(shown) > 3000:  # keep the file small; the means below use every turn
            shown = rng.choice(shown, 3000, replace=False)
        axis.scatter(
            labels[shown] + rng.uniform(-0.25, 0.25, len(shown)), values[shown], s=4, alpha=0.25
        )
        levels = np.unique(labels[known])
        axis.plot(levels, [values[labels == level].mean() for level in levels], "o-", color="black")
        axis.set_title(result.method.label, fontsize=9)
        axis.axhline(0.0, color="grey", linewidth=0.5)
        axis.set_xlabel("progress label d(s) - d(s')")
        if (labels == dead_end_x).any():
            axis.set_xticks(levels, ["dead end" if v == dead_end_x else f"{v:g}" for v in levels])
    for axis in axes.flat[panels:]:
        axis.set_visible(False)
    axes[0][0].set_ylabel("advantage")
    figure.suptitle(f"{report.env_id}, agent {report.agent}: advantage vs progress", fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
