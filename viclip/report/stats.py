"""Per-arm summary statistics and arm-vs-baseline differences.

Pure functions on plain numbers: the table and figure code decide units.
Seeds are the unit of replication, so spreads are sample standard deviations
(ddof=1) and intervals are Student-t intervals over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

PAIRED = "paired-t"  # same seeds in both arms: t-interval of per-seed differences
WELCH = "welch-t"  # different seeds: unpaired Welch t-interval
NO_CI = "none"  # fewer than two seeds somewhere: no interval can be formed


@dataclass(frozen=True)
class Difference:
    """Mean difference arm - baseline with a two-sided confidence interval."""

    delta: float
    ci_low: float
    ci_high: float
    method: str  # PAIRED, WELCH or NO_CI


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1); the std of a single value is nan."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("mean_std needs at least one value")
    std = float(np.std(x, ddof=1)) if x.size > 1 else math.nan
    return float(np.mean(x)), std


def paired_difference(arm: Sequence[float], base: Sequence[float], level: float = 0.95) -> Difference:
    """Mean of per-seed differences arm[i] - base[i] with a Student-t interval."""
    d = np.asarray(arm, dtype=float) - np.asarray(base, dtype=float)
    delta = float(np.mean(d))
    if d.size < 2:
        return Difference(delta, math.nan, math.nan, NO_CI)
    half = _t_quantile(level, d.size - 1) * float(np.std(d, ddof=1)) / math.sqrt(d.size)
    return Difference(delta, delta - half, delta + half, PAIRED)


def welch_difference(arm: Sequence[float], base: Sequence[float], level: float = 0.95) -> Difference:
    """Difference of means with a Welch (unequal-variance) t-interval."""
    a = np.asarray(arm, dtype=float)
    b = np.asarray(base, dtype=float)
    delta = float(np.mean(a) - np.mean(b))
    if a.size < 2 or b.size < 2:
        return Difference(delta, math.nan, math.nan, NO_CI)
    va, vb = np.var(a, ddof=1) / a.size, np.var(b, ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        # Both arms constant: Welch's df is 0/0, but the interval is a point.
        return Difference(delta, delta, delta, WELCH)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = _t_quantile(level, df) * se
    return Difference(delta, delta - half, delta + half, WELCH)


def difference(arm: Mapping[int, float], base: Mapping[int, float], level: float = 0.95) -> Difference:
    """Arm minus baseline, given seed -> value maps.

    Paired by seed when both arms ran exactly the same seeds (seed-level noise
    such as init and data order is then shared and cancels); Welch otherwise.
    """
    if not arm or not base:
        raise ValueError("difference needs at least one seed in each arm")
    if set(arm) == set(base):
        seeds = sorted(arm)
        return paired_difference([arm[s] for s in seeds], [base[s] for s in seeds], level)
    return welch_difference(list(arm.values()), list(base.values()), level)


def _t_quantile(level: float, df: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    return float(stats.t.ppf(0.5 + level / 2.0, df))
