"""Choose the pretraining subset from the clean InternVid clip table.

Config (a plain dict, e.g. `corpus.subset`):

    method: first | random | div | flt
    size: N clips, or null for all the method keeps
    seed: int (random, div, flt)
    flt_top_fraction: fraction of clips kept by UMT score (flt only; the paper's 0.3)

- first:  the first N rows in file order.
- random: N rows uniformly without replacement (how InternVid-10M/50M/200M
          were drawn from the 234M, viclip_spec.md §3.1).
- div:    the InternVid-10M-DIV sampling: each clip weighs 1/(clips of its
          video), N drawn without replacement (`div_sample`).
- flt:    InternVid-10M-FLT: keep the top `flt_top_fraction` of clips by UMT
          score, then DIV-sample N of them. The paper does not say whether
          the filter or the sampling came first (§3.1); filtering first lets
          `size` be the final count.

A size larger than what the method can offer is an error (use null for "all").
The subset keeps the table's row order whatever the method, so it is
deterministic for a given seed and reads like the source. Only the columns the
method needs are loaded; rows are copied batch by batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from viclip.io import atomic_path
from viclip.progress import progress

log = logging.getLogger("viclip")

METHODS = ("first", "random", "div", "flt")
KEYS = {"method", "size", "seed", "flt_top_fraction"}


class SubsetError(ValueError):
    pass


@dataclass(frozen=True)
class SubsetStats:
    available: int
    pool: int  # rows left after the FLT filter (= available otherwise)
    selected: int
    videos_available: int
    videos_selected: int


def check_config(cfg: dict) -> dict:
    """The subset config with its types checked; raises SubsetError naming the key."""
    unknown = set(cfg) - KEYS
    if unknown:
        raise SubsetError(f"subset: unknown key(s) {sorted(unknown)}; allowed {sorted(KEYS)}")
    method = cfg.get("method")
    if method not in METHODS:
        raise SubsetError(f"subset.method: {method!r} is not one of {METHODS}")
    size = cfg.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise SubsetError(f"subset.size: {size!r} must be a positive integer or null (all)")
    seed = cfg.get("seed")
    if method != "first" and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise SubsetError(f"subset.seed: {seed!r} must be a non-negative integer for method {method!r}")
    fraction = cfg.get("flt_top_fraction")
    if method == "flt" and (
        isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1
    ):
        raise SubsetError(f"subset.flt_top_fraction: {fraction!r} must be in (0, 1] for method 'flt'")
    return {"method": method, "size": size, "seed": seed, "flt_top_fraction": fraction}


def div_sample(video: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Draw `size` row indices without replacement, each row weighted 1/(rows of its video).

    `video` holds a video code per row (0..V-1). This is the procedure of the
    official `Data/InternVid/div_sampling.py` (OpenGVLab/InternVideo): weights
    1/Counter(YouTube id), normalised, then numpy's legacy
    `random.seed(42); random.choice(n, size, replace=False, p=p)`, i.e.
    successive sampling proportional to weight. The legacy RandomState keeps
    its stream across numpy versions (NEP 19), so a seed gives the same subset
    everywhere, and the official one given the same input order. Returns the
    indices in draw order.
    """
    counts = np.bincount(video)
    weights = 1.0 / counts[video]
    return np.random.RandomState(seed).choice(len(video), size, replace=False, p=weights / weights.sum())


def top_fraction(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the round(fraction * n) highest scores; equal scores keep table order."""
    keep = int(np.floor(fraction * len(scores) + 0.5))
    if keep < 1:
        raise SubsetError(f"subset.flt_top_fraction: {fraction} of {len(scores)} clips keeps none")
    return np.argsort(-scores, kind="stable")[:keep]


def candidate_pool(cfg: dict, n_rows: int, umt: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices the method samples from: all rows, or the FLT filter's survivors."""
    if cfg["method"] != "flt":
        return np.arange(n_rows)
    if umt is None or len(umt) != n_rows:
        raise SubsetError("method 'flt' needs a UMT score per clip")
    return np.sort(top_fraction(umt, cfg["flt_top_fraction"]))


def select_indices(
    cfg: dict, n_rows: int, video: np.ndarray | None = None, umt: np.ndarray | None = None
) -> np.ndarray:
    """Sorted row indices chosen by `cfg` from a table of `n_rows` rows.

    `video` (a code per row) is needed by div and flt, `umt` by flt.
    """
    cfg = check_config(cfg)
    method, size, seed = cfg["method"], cfg["size"], cfg["seed"]
    pool = candidate_pool(cfg, n_rows, umt)
    if size is not None and size > len(pool):
        where = (
            f"the top {cfg['flt_top_fraction']} by UMT score ({len(pool)} of {n_rows} clips)"
            if method == "flt"
            else f"the table ({n_rows} clips)"
        )
        raise SubsetError(f"subset.size: {size} is more than {where}; set size: null to take all")
    if size is None or size == len(pool):
        return pool
    if method == "first":
        return pool[:size]
    if method == "random":
        # legacy RandomState: a stream numpy promises not to change (NEP 19)
        return np.sort(np.random.RandomState(seed).permutation(n_rows)[:size])
    if video is None or len(video) != n_rows:
        raise SubsetError(f"method {method!r} needs a video code per clip")
    # DIV counts a video's clips within the pool it samples from, as the official script does
    codes = video if len(pool) == n_rows else np.unique(video[pool], return_inverse=True)[1]
    return np.sort(pool[div_sample(codes, size, seed)])


def video_codes(column: pa.ChunkedArray) -> np.ndarray:
    """An int code per row, equal for rows of the same video (hash-based, no Python strings)."""
    encoded = column.combine_chunks().dictionary_encode()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def select_subset(clips: str | Path, out: str | Path, cfg: dict, batch_size: int = 100_000) -> SubsetStats:
    """Write the rows of the clean table `clips` chosen by `cfg` to the parquet `out` (atomically)."""
    clips = Path(clips)
    cfg = check_config(cfg)
    source = pq.ParquetFile(clips)
    n_rows = source.metadata.num_rows
    columns = ["youtube_id"] + (["umt_score"] if cfg["method"] == "flt" else [])
    missing = [c for c in columns if c not in source.schema_arrow.names]
    if missing:
        raise SubsetError(f"{clips}: no column {missing[0]!r} (expected a clean InternVid clip table)")
    table = source.read(columns=columns)
    video = video_codes(table["youtube_id"])
    umt = _umt(clips, table) if cfg["method"] == "flt" else None
    try:
        chosen = select_indices(cfg, n_rows, video, umt)
        pool = len(candidate_pool(cfg, n_rows, umt))
    except SubsetError as exc:
        raise SubsetError(f"{clips}: {exc}") from None
    mask = np.zeros(n_rows, dtype=bool)
    mask[chosen] = True
    _copy_rows(source, out, mask, batch_size)
    stats = SubsetStats(
        n_rows, pool, len(chosen), int(video.max(initial=-1)) + 1, int(np.count_nonzero(np.bincount(video[chosen])))
    )
    log.info(
        "subset %s: %d of %d clips (pool %d), %d of %d videos, %.2f clips per video (was %.2f)",
        cfg,
        stats.selected,
        stats.available,
        stats.pool,
        stats.videos_selected,
        stats.videos_available,
        stats.selected / max(stats.videos_selected, 1),
        stats.available / max(stats.videos_available, 1),
    )
    return stats


def _umt(clips: Path, table: pa.Table) -> np.ndarray:
    column = table["umt_score"]
    if column.null_count:
        raise SubsetError(
            f"{clips}: umt_score is missing in {column.null_count} of {len(column)} rows; "
            "method 'flt' needs a UMT score for every clip"
        )
    umt = column.to_numpy()
    if not np.isfinite(umt).all():
        raise SubsetError(f"{clips}: umt_score has non-finite values; method 'flt' cannot rank them")
    return umt


def _copy_rows(source: pq.ParquetFile, out: str | Path, mask: np.ndarray, batch_size: int) -> None:
    offset = 0
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, source.schema_arrow) as writer:
        for batch in progress(
            source.iter_batches(batch_size=batch_size),
            desc="subset",
            unit=" batches",
            total=-(-source.metadata.num_rows // batch_size),
            mininterval=5.0,
        ):
            keep = mask[offset : offset + batch.num_rows]
            offset += batch.num_rows
            if keep.any():
                writer.write_table(pa.Table.from_batches([batch]).filter(pa.array(keep)))
