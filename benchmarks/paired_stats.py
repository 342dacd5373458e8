"""Paired differences between two methods run on the same seeds, with 95% confidence intervals.

Seed s of every method draws the same training tasks and starts from the same weights, and
every method is evaluated on the same held-out tasks, so the per-seed difference
d_s = method_s - baseline_s removes what the seed alone decides. Two intervals for mean(d):

* Student's t: mean(d) +- t_{0.975, n-1} x sd(d) / sqrt(n) (exact for normal d);
* the percentile bootstrap: the 2.5th and 97.5th percentiles of the mean of n differences
  drawn with replacement (10,000 draws, a fixed seed), which assumes no normality but is too
  narrow for very few seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PairedDifference", "mean_interval", "paired_difference", "t_critical"]

# t_{0.975, df} for df = 1..30; beyond, the Cornish-Fisher expansion below (error < 1e-4)
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z_975 = 1.959964


def t_critical(df: int) -> float:
    """The two-sided 95% critical value of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError(f"t needs at least one degree of freedom, got {df}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = _Z_975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_interval(values: Sequence[float]) -> tuple[float, float]:
    """(mean, half-width of its 95% t interval); the half-width is nan below two values."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return (float(x.mean()) if len(x) else math.nan), math.nan
    return float(x.mean()), t_critical(len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))


@dataclass(frozen=True)
class PairedDifference:
    """mean(method - baseline) over the seeds both have, with its 95% intervals."""

    n: int
    mean: float
    t_low: float
    t_high: float
    boot_low: float
    boot_high: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the t interval lies on one side of 0 (a difference at the 5% level)."""
        return self.t_low > 0 or self.t_high < 0

    def in_points(self) -> str:
        """A difference of shares in points with its t interval, ``+4.2 [-3.9, +12.2]``, and
        `` *`` where the interval excludes 0."""
        text = f"{100 * self.mean:+.1f} [{100 * self.t_low:+.1f}, {100 * self.t_high:+.1f}]"
        return text + (" *" if self.excludes_zero else "")


def paired_difference(
    method: Sequence[float], baseline: Sequence[float], *, draws: int = 10_000, seed: int = 0
) -> PairedDifference:
    """The paired difference of two equally long per-seed series (see the module docstring)."""
    if len(method) != len(baseline):
        raise ValueError(f"paired series differ in length: {len(method)} vs {len(baseline)}")
    d = np.asarray(method, dtype=float) - np.asarray(baseline, dtype=float)
    mean, half = mean_interval(d)
    if len(d) < 2:
        return PairedDifference(len(d), mean, math.nan, math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), size=(draws, len(d)))].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return PairedDifference(len(d), mean, mean - half, mean + half, float(low), float(high))
