"""What the embedded default must show to be a faithful miniature (issue 17), checked on its records.

1. Every reported metric is informative for the baseline: its mean over seeds
   is at least 3x chance (for a top-5 or AVG column where 3x chance is out of
   reach, at least halfway from chance to 100%), and its 95% interval lies
   above chance. Chance follows from each record's `n_candidates`.
2. Fine-tuning fine-tunes: every fine-tuned retrieval R@1 and fine-tuned K400
   top-1 is above its zero-shot value, the paired 95% interval above 0.
3. No run diverged (viclip.report.divergence), so the report could be written.

The intervals are the table's (`Intervals`, config `report.intervals`): the
bootstrap over seeds and test items where the records keep per-item
outcomes (viclip.report.bootstrap), a t-interval over seeds otherwise.

And the benchmarks are not trivially easy: no arm reaches 90% top-1 on a
classification slot or 60% R@1 on a retrieval slot. Each check returns
readable failures (empty when it holds), so a test and the benchmark script
can both report them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats

from viclip.eval.catalog import RETRIEVAL, columns
from viclip.report import bootstrap
from viclip.report.intervals import Intervals
from viclip.report.outcomes import check_same_items, outcomes

TOP1_CEILING, R1_CEILING = 0.90, 0.60


def chance(record: dict) -> dict[str, float]:
    """Expected value of each headline metric of a record for a model that ranks at random."""
    d = record["details"]
    c = int(d["n_candidates"])  # classes, or videos for retrieval (a query's correct videos: one)
    if record["task"] == "classification":
        top1, top5 = 1 / c, min(5, c) / c
        return {"top1": top1, "top5": top5, "avg": (top1 + top5) / 2}
    # T2V: 1 correct video of c; V2T: a video's k captions among k * c texts, any at rank 1: k / (k c)
    return {"t2v_r1": 1 / c, "v2t_r1": 1 / c}


def target(metric: str, level: float) -> float:
    """The mean an informative metric reaches: 3x chance, or halfway to 100% for top-5/AVG beyond reach."""
    if metric in ("top5", "avg"):
        return min(3 * level, (1 + level) / 2)
    return 3 * level


def _records(records: Iterable[dict], arm: str) -> dict[str, dict[int, dict]]:
    """Column key -> seed -> record of one arm, for the catalog's columns it has."""
    keys = {c.key for c in columns()}
    out: dict[str, dict[int, dict]] = defaultdict(dict)
    for r in records:
        if r["arm"] != arm:
            continue
        for metric in r["metrics"]:
            key = f"{r['benchmark']}/{r['protocol']}/{metric}"
            if key in keys:
                out[key][int(r["seed"])] = r
    return out


def _values(records: Iterable[dict], arm: str) -> dict[str, dict[int, float]]:
    """Column key -> seed -> value (fraction) of one arm, for the catalog's columns."""
    return {
        key: {seed: float(r["metrics"][key.rsplit("/", 1)[1]]) for seed, r in seeds.items()}
        for key, seeds in _records(records, arm).items()
    }


def uninformative(records: Sequence[dict], arm: str = "baseline", intervals: Intervals | None = None) -> list[str]:
    """Item 1: the catalog columns where `arm` is not clearly above chance."""
    levels = {}
    for r in records:
        if r["arm"] == arm:
            for metric, level in chance(r).items():
                levels[f"{r['benchmark']}/{r['protocol']}/{metric}"] = level
    intervals = intervals or Intervals()
    by_key = _records(records, arm)
    failures = []
    for col in columns():
        recs = [r for _, r in sorted(by_key.get(col.key, {}).items())]
        if not recs:
            failures.append(f"{col.key}: no records for arm '{arm}'")
            continue
        x = np.array([float(r["metrics"][col.metric]) for r in recs])
        level, goal = levels[col.key], target(col.metric, levels[col.key])
        low = _mean_low(recs, col.metric, col.key, intervals)
        if x.mean() < goal or not low > level:
            failures.append(
                f"{col.key}: mean {100 * x.mean():.1f}% (chance {100 * level:.1f}%, needs {100 * goal:.1f}%), "
                f"interval low end {100 * low:.1f}%"
            )
    return failures


def not_finetuned(records: Sequence[dict], arm: str = "baseline", intervals: Intervals | None = None) -> list[str]:
    """Item 2: fine-tuned columns that are not above their zero-shot counterparts."""
    intervals = intervals or Intervals()
    by_key = _records(records, arm)
    pairs = [(f"{b}/finetuned/{m}", f"{b}/zeroshot/{m}") for b in RETRIEVAL for m in ("t2v_r1", "v2t_r1")]
    pairs.append(("k400/finetuned/top1", "k400/zeroshot/top1"))
    failures = []
    for ft, zs in pairs:
        seeds = sorted(set(by_key.get(ft, {})) & set(by_key.get(zs, {})))
        if not seeds:
            failures.append(f"{ft}: no paired records")
            continue
        metric = ft.rsplit("/", 1)[1]
        ft_recs, zs_recs = [by_key[ft][s] for s in seeds], [by_key[zs][s] for s in seeds]
        d = np.array([float(a["metrics"][metric]) - float(b["metrics"][metric]) for a, b in zip(ft_recs, zs_recs)])
        low = _difference_low(ft_recs, zs_recs, metric, ft, intervals)
        low = _low(d, intervals.level) if math.isnan(low) else low
        if not low > 0:
            failures.append(f"{ft}: {100 * d.mean():+.1f} points over zero-shot, interval low end {100 * low:+.1f}")
    return failures


def too_easy(records: Sequence[dict]) -> list[str]:
    """Slots where some arm's mean reaches the ceiling (90% top-1, 60% R@1): a benchmark that no longer ranks."""
    arms = sorted({r["arm"] for r in records})
    failures = []
    for arm in arms:
        for key, seeds in _values(records, arm).items():
            metric = key.rsplit("/", 1)[1]
            ceiling = TOP1_CEILING if metric == "top1" else R1_CEILING if metric.endswith("_r1") else None
            mean = float(np.mean(list(seeds.values())))
            if ceiling is not None and mean >= ceiling:
                failures.append(f"{arm} {key}: mean {100 * mean:.1f}% >= {100 * ceiling:.0f}%")
    return failures


def _mean_low(recs: list[dict], metric: str, key: str, intervals: Intervals) -> float:
    """Low end of the interval of the mean over seeds: bootstrap where the records keep items, t otherwise."""
    check_same_items(recs)
    x = outcomes(recs, metric) if intervals.method == "bootstrap" else None
    if x is None:
        return _low(np.array([float(r["metrics"][metric]) for r in recs]), intervals.level)
    return bootstrap.interval(x, intervals.generator("acceptance", key), intervals.resamples, intervals.level)[0]


def _difference_low(ft: list[dict], zs: list[dict], metric: str, key: str, intervals: Intervals) -> float:
    """Low end of the paired bootstrap interval of fine-tuned - zero-shot; nan without per-item outcomes or
    with one seed."""
    check_same_items(ft + zs, queries=False)  # one test split; a paragraph set may be queried two ways
    a = outcomes(ft, metric) if intervals.method == "bootstrap" else None
    b = outcomes(zs, metric) if a is not None else None
    if b is None:
        return math.nan
    rng = intervals.generator("acceptance", key)
    return bootstrap.difference(a, b, True, rng, intervals.resamples, intervals.level).ci_low


def _low(x: np.ndarray, level: float = 0.95) -> float:
    """Low end of the t-interval of the mean of x (the value itself for one seed)."""
    if x.size < 2:
        return float(x.mean())
    if np.ptp(x) == 0:
        return float(x[0])
    return float(stats.ttest_1samp(x, 0.0).confidence_interval(level).low)
