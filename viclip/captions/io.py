"""Clips to caption (from a corpus frame index) and the caption variant files.

Every variant is one parquet file with the same columns whatever the
backend, so switching `captions.backend` changes nothing downstream:

    coarse, summary, fused:  clip_id (str), caption (str)
    frames:                  clip_id (str), frame_indices (list[int]), captions (list[str])
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from viclip.captions.base import Clip
from viclip.io import atomic_path

VARIANTS = ("coarse", "frames", "summary", "fused")
VARIANT_COLUMNS = {
    "coarse": ("clip_id", "caption"),
    "frames": ("clip_id", "frame_indices", "captions"),
    "summary": ("clip_id", "caption"),
    "fused": ("clip_id", "caption"),
}
_TEXT = pa.field("caption", pa.string())
# Written with a fixed Arrow schema, so the files match column types too,
# even for an empty shard (whose lists pandas alone could not type).
VARIANT_SCHEMAS = {
    "coarse": pa.schema([pa.field("clip_id", pa.string()), _TEXT]),
    "frames": pa.schema(
        [
            pa.field("clip_id", pa.string()),
            pa.field("frame_indices", pa.list_(pa.int64())),
            pa.field("captions", pa.list_(pa.string())),
        ]
    ),
    "summary": pa.schema([pa.field("clip_id", pa.string()), _TEXT]),
    "fused": pa.schema([pa.field("clip_id", pa.string()), _TEXT]),
}


def caption_table(clip_ids, captions) -> pd.DataFrame:
    """A one-caption-per-clip table (coarse, summary, fused) with string columns even when empty."""
    return pd.DataFrame(
        {"clip_id": pd.Series(list(clip_ids), dtype="str"), "caption": pd.Series(list(captions), dtype="str")}
    )


def read_clips(index_path: str | Path, windows: bool = False) -> list[Clip]:
    """The clips of a clip table (a synthetic frame index or a download manifest), with paths made absolute.

    A download manifest's `start_s`/`end_s` are times in the source video of
    a clip already cut to them, so they are ignored unless `windows` says the
    table's files are longer videos to cut those windows from.
    """
    index_path = Path(index_path)
    df = pd.read_parquet(index_path)
    for col in ("clip_id", "path", "n_frames"):
        if col not in df.columns:
            raise ValueError(f"{index_path}: missing column '{col}'")
    if df["clip_id"].duplicated().any():
        raise ValueError(f"{index_path}: clip_id {df['clip_id'][df['clip_id'].duplicated()].iloc[0]!r} appears twice")
    none = [None] * len(df)

    def opt(col):
        return [None if pd.isna(v) else v for v in df[col]] if col in df.columns else none

    if not windows:
        df = df.drop(columns=[c for c in ("start_s", "end_s") if c in df.columns])

    return [
        Clip(str(c), str(index_path.parent / p), int(n), s, a, b)
        for c, p, n, s, a, b in zip(
            df["clip_id"], df["path"], df["n_frames"], opt("spec"), opt("start_s"), opt("end_s")
        )
    ]


def check_variant(df: pd.DataFrame, variant: str, source: str | Path) -> pd.DataFrame:
    """`df` if it has exactly the variant's columns and one row per clip; otherwise an error naming `source`."""
    want = VARIANT_COLUMNS[variant]
    if tuple(df.columns) != want:
        raise ValueError(f"{source}: {variant} captions need columns {list(want)}, found {list(df.columns)}")
    dup = df["clip_id"].duplicated()
    if dup.any():
        raise ValueError(f"{source}: clip {df['clip_id'][dup].iloc[0]!r} has two {variant} rows")
    text = df["captions"].map(len) if variant == "frames" else df["caption"]
    if text.isna().any():
        raise ValueError(f"{source}: clip {df['clip_id'][text.isna()].iloc[0]!r} has no {variant} caption")
    return df


def write_variant(df: pd.DataFrame, variant: str, path: str | Path) -> None:
    df = check_variant(df.reset_index(drop=True), variant, path)
    table = pa.Table.from_pandas(df, schema=VARIANT_SCHEMAS[variant], preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def gather_variant(
    shard_paths: list[str | Path], variant: str, out: str | Path, log_path: str | Path | None = None
) -> pd.DataFrame:
    """The shards' files of one variant, in shard order, as one file."""
    parts = [check_variant(pd.read_parquet(p), variant, p) for p in shard_paths]
    df = check_variant(pd.concat(parts, ignore_index=True), variant, f"{out} (gathered from {len(parts)} shards)")
    write_variant(df, variant, out)
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        Path(log_path).write_text(f"gathered {len(df)} {variant} captions from {len(parts)} shards into {out}\n")
    logging.getLogger("viclip").info("gathered %d %s captions from %d shards", len(df), variant, len(parts))
    return df
