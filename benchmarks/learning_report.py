"""The learning benchmark's tables and plot (`benchmarks/learning.py`), read from its stored
runs: the results with paired differences to GRPO, the gain over the warm start, what the runs
logged while training, the gate's verdicts, and the training-success curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from paired_stats import mean_interval, paired_difference
from run_store import read_metrics

BASELINE = "grpo"
GATE_CORRELATION = 0.8  # at or above: the method's advantages are GRPO's up to noise


def _interval(values: list[float], fmt: str = "{:.1%}") -> str:
    mean, half = mean_interval(values)
    if np.isnan(half):
        return fmt.format(mean)
    return f"{fmt.format(mean)} +- {fmt.format(half)}"


def _signed(value: float) -> str:
    return f"{value * 100:+.1f}"


def _difference(method: list[float], baseline: list[float]) -> str:
    d = paired_difference(method, baseline)
    if d.n < 2:
        return f"{_signed(d.mean)} (n={d.n})"
    mark = " *" if d.excludes_zero else ""
    return (
        f"{_signed(d.mean)} [{_signed(d.t_low)}, {_signed(d.t_high)}] "
        f"(boot [{_signed(d.boot_low)}, {_signed(d.boot_high)}]){mark}"
    )


def _held_out(result: dict) -> float:
    """The mean of the held-out splits' success (each split weighs the same)."""
    return float(np.mean(list(result["final"].values())))


def results_table(results: dict[str, dict[int, dict]], methods: list[str]) -> str:
    """Per method: held-out success per split and their mean, training AUC (mean +- 95% t
    half-width over seeds), and the paired differences to GRPO in points."""
    splits = sorted({s for runs in results.values() for r in runs.values() for s in r["final"]})
    header = ["method", "seeds", *splits, "start", "train AUC"]
    header += [f"vs {BASELINE}: held-out (pts, 95% t / bootstrap)", f"vs {BASELINE}: train AUC"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    baseline = results.get(BASELINE, {})
    for method in methods:
        runs = results.get(method, {})
        if not runs:
            lines.append(f"| {method} | 0 |" + " - |" * (len(header) - 2))
            continue
        ok = list(runs.values())
        row = [method, str(len(ok))]
        row += [_interval([r["final"][s] for r in ok]) for s in splits]
        start = [float(np.mean(list(r["initial"].values()))) for r in ok if r.get("initial")]
        row.append(_interval(start) if start else "-")
        row.append(_interval([r["train_auc"] for r in ok], "{:.3f}"))
        paired = sorted(set(runs) & set(baseline))
        if method == BASELINE or not paired:
            row += ["-", "-"]
        else:
            row.append(
                _difference(
                    [_held_out(runs[s]) for s in paired], [_held_out(baseline[s]) for s in paired]
                )
            )
            row.append(
                _difference(
                    [runs[s]["train_auc"] for s in paired],
                    [baseline[s]["train_auc"] for s in paired],
                )
            )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def gain_table(results: dict[str, dict[int, dict]], methods: list[str]) -> str:
    """Per method and held-out split: the warm start's success and what RL added to it, in
    points, paired by seed (each run's final success minus its own start), with 95% t and
    bootstrap intervals."""
    splits = sorted({s for runs in results.values() for r in runs.values() for s in r["final"]})
    header = ["method", "seeds"]
    for split in splits:
        header += [f"{split}: start", f"{split}: RL adds (pts, 95% t / bootstrap)"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for method in methods:
        runs = [r for r in results.get(method, {}).values() if r.get("initial")]
        if not runs:
            continue
        row = [method, str(len(runs))]
        for split in splits:
            start = [r["initial"][split] for r in runs]
            row += [_interval(start), _difference([r["final"][split] for r in runs], start)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


#: per iteration metrics the diagnostics table averages (over a run's iterations, then seeds)
DIAGNOSTICS = {
    "corr with GRPO": "credit/grpo_corr",
    "Spearman with MC": "credit/mc_spearman",
    "GRPO's Spearman with MC": "credit/mc_grpo_spearman",
    "MC stderr": "credit/mc_stderr",
    "KL after update": "update/kl_after",
    "log-prob change vs A (corr)": "update/logprob_change_corr",
    "update steps": "update/steps",
}


def diagnostics_table(
    results: dict[str, dict[int, dict]], methods: list[str], runs_dir: Path
) -> str:
    """Per method, what its runs logged while training (`DIAGNOSTICS`): each run's mean over
    the iterations that logged the metric (the Monte-Carlo check runs every ``credit.mc_every``),
    then the mean over seeds; read from the runs' own metrics files."""
    header = ["method", "seeds", *DIAGNOSTICS]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for method in methods:
        runs = results.get(method, {})
        per_run: dict[str, list[float]] = {name: [] for name in DIAGNOSTICS}
        for seed, result in runs.items():
            metrics = runs_dir / f"{method}-seed{seed}-{result['code']}-{result['config_hash']}"
            if not (metrics / "metrics.jsonl").is_file():
                continue
            rows = read_metrics(metrics)
            for name, key in DIAGNOSTICS.items():
                values = [r[key] for r in rows if r.get(key) is not None]
                if values:
                    per_run[name].append(float(np.mean(values)))
        cells = [f"{np.mean(v):.3f}" if v else "-" for v in per_run.values()]
        lines.append("| " + " | ".join([method, str(len(runs)), *cells]) + " |")
    return "\n".join(lines)


def gate_table(results: dict[str, dict[int, dict]], methods: list[str]) -> str:
    """Per method, its first batch's agreement with GRPO, mean over seeds, and the verdict."""
    header = ["method", "seeds", "start", "corr with GRPO", "sign agreement", "beyond-scale share"]
    header += ["Spearman with MC", "GRPO's Spearman with MC"]
    lines = ["| " + " | ".join([*header, "verdict"]) + " |", "|---" * (len(header) + 1) + "|"]
    for method in methods:
        runs = list(results.get(method, {}).values())
        batches = [r["first_batch"] for r in runs]
        corr = [b["grpo_corr"] for b in batches if b.get("grpo_corr") is not None]
        signs = [
            b["grpo_sign_agreement"] for b in batches if b.get("grpo_sign_agreement") is not None
        ]
        beyond = [
            b["grpo_beyond_scale_share"]
            for b in batches
            if b.get("grpo_beyond_scale_share") is not None
        ]
        if method == BASELINE:
            verdict = "the baseline"
        elif not corr:
            verdict = "undefined (constant advantages: no outcome differs in a group)"
        elif np.mean(corr) >= GATE_CORRELATION:
            verdict = f"GRPO's up to noise (>= {GATE_CORRELATION}): cannot differ here"
        else:
            verdict = f"differs from GRPO (< {GATE_CORRELATION}): worth comparing"

        def mean(values: list[float]) -> str:
            return f"{np.mean(values):.3f}" if values else "-"

        start = [float(np.mean(list(r["initial"].values()))) for r in runs if r.get("initial")]
        mc = [b["mc_spearman"] for b in batches if b.get("mc_spearman") is not None]
        mc_grpo = [b["mc_grpo_spearman"] for b in batches if b.get("mc_grpo_spearman") is not None]
        row = [method, str(len(runs)), _interval(start) if start else "-"]
        row += [mean(corr), mean(signs), mean(beyond), mean(mc), mean(mc_grpo), verdict]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot_curves(results: dict[str, dict[int, dict]], methods: list[str], path: Path) -> None:
    """Training success per iteration: each method's mean over seeds with a 95% t band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for method in methods:
        curves = [r["curve"]["rollout_success"] for r in results.get(method, {}).values()]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        values = np.array([c[:length] for c in curves])
        iterations = np.arange(1, length + 1)
        mean = values.mean(axis=0)
        axis.plot(iterations, mean, label=f"{method} ({len(curves)} seeds)")
        if len(curves) > 1:
            half = np.array([mean_interval(values[:, i])[1] for i in range(length)])
            axis.fill_between(iterations, mean - half, mean + half, alpha=0.2)
    axis.set_xlabel("iteration")
    axis.set_ylabel("training success")
    axis.set_ylim(0, 1)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
