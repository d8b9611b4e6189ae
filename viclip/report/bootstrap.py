"""A two-level paired bootstrap of arm - baseline, over training seeds and test items.

Each resample draws the seeds with replacement and the test items with
replacement, and takes the difference of the two arms' means over their drawn seeds of the
metric on the drawn items. The seed draw is shared when both arms ran the same
seeds (what a seed fixes, init and data order, is then common to both and
cancels, as in a paired t-test) and independent otherwise. The item draw is
always shared, by both arms and all their seeds: every run scored the same
test items, so the test set is one sample common to all of them. The
interval is the percentile interval of the resampled differences; the
p-value, for Holm's adjustment (viclip.report.stats.holm), is two-sided,
2 min(share <= 0, share >= 0), floored at 1 / resamples.

With 3 seeds the seed level resamples 3 values, which understates seed
variance: docs/ARCHITECTURE.md says why the default still uses it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from viclip.report.outcomes import Outcomes
from viclip.report.stats import NO_CI, Difference

CHUNK = 1 << 21  # item counts held at once (16 MiB of float64)
SEED_PAIRED = "paired-bootstrap"  # same seeds: one seed draw and one item draw for both arms
ITEM_PAIRED = "item-paired-bootstrap"  # different seeds: independent seed draws, one item draw


def item_resamples(outcomes: Sequence[Outcomes], rng: np.random.Generator, resamples: int) -> list[np.ndarray]:
    """Per Outcomes, [resamples, seeds]: each seed's metric on each resample of the test items.

    One item draw serves them all (all runs scored the same items), in chunks of at most CHUNK
    counts, so a 20,000-clip benchmark needs no resamples x items matrix.
    """
    n = outcomes[0].hits.shape[1]
    if any(o.hits.shape[1] != n for o in outcomes):
        raise ValueError(f"outcomes over {sorted({o.hits.shape[1] for o in outcomes})} items: not the same test items")
    stacked = np.column_stack([o.hits.T for o in outcomes] + [o.queries for o in outcomes])
    sums = np.empty((resamples, stacked.shape[1]))
    step = max(1, CHUNK // n)
    for start in range(0, resamples, step):
        stop = min(start + step, resamples)
        sums[start:stop] = _item_counts(rng, stop - start, n) @ stacked
    seeds = [len(o.hits) for o in outcomes]
    hits, queries = np.split(sums[:, : sum(seeds)], np.cumsum(seeds)[:-1], axis=1), sums[:, sum(seeds) :]
    return [h / queries[:, [i]] for i, h in enumerate(hits)]


def compare(
    arm: np.ndarray, base: np.ndarray, delta: float, paired: bool, rng: np.random.Generator, level: float = 0.95
) -> Difference:
    """Arm minus baseline from their item_resamples; the seeds are drawn here, once for both when `paired`
    (both ran the same seeds, in the same column order)."""
    if arm.shape[1] < 2 or base.shape[1] < 2:  # one seed says nothing of seed variance: no interval
        return Difference(delta, math.nan, math.nan, NO_CI)
    resamples = len(arm)
    seeds_arm = _seed_draws(rng, resamples, arm.shape[1])
    seeds_base = seeds_arm if paired else _seed_draws(rng, resamples, base.shape[1])
    diffs = _seed_mean(arm, seeds_arm) - _seed_mean(base, seeds_base)
    low, high = _percentiles(diffs, level)
    p = 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))
    return Difference(delta, low, high, SEED_PAIRED if paired else ITEM_PAIRED, float(min(1.0, max(p, 1 / resamples))))


def difference(
    arm: Outcomes, base: Outcomes, paired: bool, rng: np.random.Generator, resamples: int, level: float = 0.95
) -> Difference:
    """Arm minus baseline: item_resamples of both, then compare."""
    a, b = item_resamples([arm, base], rng, resamples)
    return compare(a, b, float(arm.per_seed.mean() - base.per_seed.mean()), paired, rng, level)


def interval(x: Outcomes, rng: np.random.Generator, resamples: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of one arm's mean over seeds, by the same two-level resampling."""
    (per_seed,) = item_resamples([x], rng, resamples)
    return _percentiles(_seed_mean(per_seed, _seed_draws(rng, resamples, per_seed.shape[1])), level)


def _item_counts(rng: np.random.Generator, resamples: int, n: int) -> np.ndarray:
    """[resamples, n]: how often each of n items is drawn, n draws with replacement per resample."""
    draws = rng.integers(0, n, size=(resamples, n)) + n * np.arange(resamples)[:, None]
    return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)


def _seed_draws(rng: np.random.Generator, resamples: int, n: int) -> np.ndarray:
    return rng.integers(0, n, size=(resamples, n))


def _seed_mean(per_seed: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """[resamples, seeds] values -> per resample the mean over its drawn seeds."""
    return np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
