"""Per-item outcomes of a metric column, read from evaluation records' `items` blocks (viclip.eval.items).

A column's value is a ratio of sums over test items: hits / queries. Each
item is a test clip; it counts once (`queries` 1) except a retrieval
video in T2V, whose captions are all queries: it brings the hits among
them over their number. So the bootstrap resamples videos, keeping a
video's captions together (they are not independent draws), and the
ratio over all items is the record's metric exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_TOP_K = re.compile(r"top(\d+)")
_RECALL = re.compile(r"(t2v|v2t)_r(\d+)")


@dataclass(frozen=True)
class Outcomes:
    """One arm's outcomes on one column: hits [seeds, items] over queries [items]."""

    hits: np.ndarray
    queries: np.ndarray

    @property
    def per_seed(self) -> np.ndarray:
        return self.hits.sum(axis=1) / self.queries.sum()


def item_hits(record: dict, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(hits, queries) per item of `metric` in one record; None without items or for a metric not a rate of ranks."""
    items = record.get("items")
    if not items:
        return None
    rank = items["rank"]
    if "class" in rank:
        r = np.asarray(rank["class"])
        ones = np.ones(r.size)
        if metric == "avg":  # ViCLIP's AVG: the mean of top-1 and top-5, so per clip the mean of both hits
            return ((r < 1).astype(float) + (r < 5)) / 2, ones
        m = _TOP_K.fullmatch(metric)
        return ((r < int(m[1])).astype(float), ones) if m else None
    m = _RECALL.fullmatch(metric)
    if m is None:
        return None
    r, k = np.asarray(rank[m[1]]), int(m[2])
    if m[1] == "v2t":
        return (r < k).astype(float), np.ones(r.size)
    queries = np.asarray(items["queries"])
    owner = np.repeat(np.arange(queries.size), queries)  # T2V ranks are video-major
    return np.bincount(owner, weights=(r < k), minlength=queries.size), queries.astype(float)


def outcomes(records: Sequence[dict], metric: str, scale: float = 1.0) -> Outcomes | None:
    """Outcomes of one arm's records (one per seed, same items), `scale` x hits; None if any record has none.

    Refuses, naming the file, items that do not give the record's own value of the metric.
    """
    pairs = [item_hits(r, metric) for r in records]
    if not pairs or any(p is None for p in pairs):
        return None
    for rec, (hits, queries) in zip(records, pairs, strict=True):
        value = hits.sum() / queries.sum()
        if metric in rec["metrics"] and not math.isclose(value, float(rec["metrics"][metric]), abs_tol=1e-9):
            raise ValueError(
                f"{rec.get('_source', rec.get('run', '?'))}: its items give {metric} = {value:.6f}, "
                f"its metrics {float(rec['metrics'][metric]):.6f}"
            )
    return Outcomes(scale * np.stack([h for h, _ in pairs]), pairs[0][1])


def check_same_items(records: Sequence[dict], queries: bool = True) -> None:
    """Refuse, naming both files, records that did not score the same items in the same order.

    `queries`: a retrieval video's text queries must match too (the same protocol); zero-shot and
    fine-tuned records of one benchmark may query a paragraph set by sentence in one, by paragraph in the other.
    """
    with_items = [r for r in records if r.get("items")]
    if not with_items:
        return
    ref = with_items[0]
    for rec in with_items[1:]:
        problem = _difference(ref["items"], rec["items"], queries)
        if problem:
            raise ValueError(
                f"{ref.get('_source', ref.get('run', '?'))} and {rec.get('_source', rec.get('run', '?'))} "
                f"({rec['benchmark']}-{rec['protocol']}) did not score the same test items: {problem}; "
                "a paired comparison needs both runs evaluated on the same benchmark build"
            )


def _difference(a: dict, b: dict, queries: bool) -> str:
    ids_a, ids_b = a["ids"], b["ids"]
    if len(ids_a) != len(ids_b):
        return f"{len(ids_a)} items against {len(ids_b)}"
    for i, (x, y) in enumerate(zip(ids_a, ids_b, strict=True)):
        if x != y:
            return f"item {i} is {x!r} in the first and {y!r} in the second"
    if queries and a.get("queries") != b.get("queries"):
        return "the same videos with other text queries per video"
    return ""
