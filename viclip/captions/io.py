"""Clips to caption, read from a corpus frame index."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from viclip.captions.base import Clip


def read_clips(index_path: str | Path) -> list[Clip]:
    """Clips that decoded (the frame index), with paths made absolute."""
    index_path = Path(index_path)
    df = pd.read_parquet(index_path)
    for col in ("clip_id", "path", "n_frames"):
        if col not in df.columns:
            raise ValueError(f"{index_path}: missing column '{col}'")
    spec = df["spec"] if "spec" in df.columns else [None] * len(df)
    return [Clip(c, str(index_path.parent / p), int(n), s) for c, p, n, s in zip(df["clip_id"], df["path"], df["n_frames"], spec)]
