"""Per-arm summary statistics and arm-vs-baseline differences.

Pure functions on plain numbers: the table and figure code decide units.
Seeds are the unit of replication, so spreads are sample standard deviations
(ddof=1). The intervals here are Student-t intervals over seeds, from
scipy.stats (`ttest_rel` when the arms share seeds, Welch's `ttest_ind`
otherwise): the report's choice with `report.intervals: t`, and its fallback
for records without per-item outcomes. By default it uses the paired
bootstrap over seeds and test items (viclip.report.bootstrap), which returns
the same `Difference`.

An ablation compares each of its arms with the baseline on every metric
column, so it makes many tests at once: `holm` adjusts their p-values
(Holm-Bonferroni, family-wise error rate) within one ablation. The intervals
stay per-comparison 95% intervals; the adjusted p-value says which of them
still count once the number of comparisons is accounted for.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

PAIRED = "paired-t"  # same seeds in both arms: t-interval of per-seed differences
WELCH = "welch-t"  # different seeds: unpaired Welch t-interval
NO_CI = "none"  # fewer than two seeds somewhere: no interval can be formed


@dataclass(frozen=True)
class Difference:
    """Mean difference arm - baseline with a two-sided confidence interval and its test's p-value."""

    delta: float
    ci_low: float
    ci_high: float
    method: str  # PAIRED, WELCH, NO_CI or a bootstrap's (viclip.report.bootstrap)
    p_value: float = math.nan  # two-sided, of "no difference"; nan without an interval


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1); the std of a single value is nan."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("mean_std needs at least one value")
    std = float(np.std(x, ddof=1)) if x.size > 1 else math.nan
    return float(np.mean(x)), std


def paired_difference(arm: Sequence[float], base: Sequence[float], level: float = 0.95) -> Difference:
    """Mean of per-seed differences arm[i] - base[i] with a Student-t interval."""
    _check_level(level)
    a, b = np.asarray(arm, dtype=float), np.asarray(base, dtype=float)
    delta = float(np.mean(a - b))
    if a.size < 2:
        return Difference(delta, math.nan, math.nan, NO_CI)
    return _from_test(delta, _quiet(stats.ttest_rel, a, b), level, PAIRED)


def welch_difference(arm: Sequence[float], base: Sequence[float], level: float = 0.95) -> Difference:
    """Difference of means with a Welch (unequal-variance) t-interval."""
    _check_level(level)
    a, b = np.asarray(arm, dtype=float), np.asarray(base, dtype=float)
    delta = float(np.mean(a) - np.mean(b))
    if a.size < 2 or b.size < 2:
        return Difference(delta, math.nan, math.nan, NO_CI)
    if np.var(a) == 0.0 and np.var(b) == 0.0:
        # Both arms constant: Welch's df is 0/0, but the interval is a point.
        return Difference(delta, delta, delta, WELCH, 1.0 if delta == 0.0 else 0.0)
    return _from_test(delta, _quiet(stats.ttest_ind, a, b, equal_var=False), level, WELCH)


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


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in input order; nan entries stay nan and are not counted."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))  # step-down: adjusted p never decreases
        out[i] = running
    return out.tolist()


def _from_test(delta: float, result, level: float, method: str) -> Difference:
    ci = result.confidence_interval(confidence_level=level)
    p = float(result.pvalue)
    # identical per-seed values: scipy's t is 0/0 (nan); the interval is the point and nothing differs
    return Difference(delta, float(ci.low), float(ci.high), method, 1.0 if math.isnan(p) else p)


def _quiet(test, *args, **kwargs):
    with warnings.catch_warnings():  # zero variance: scipy warns, then returns the limits we want
        warnings.simplefilter("ignore", RuntimeWarning)
        return test(*args, **kwargs)


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
