"""Read a benchmark in the standard layout, with its decoded frames."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from viclip.data.frames import ClipSampler


@dataclass
class Split:
    sampler: ClipSampler
    labels: np.ndarray | None  # classification
    texts: list[list[str]] | None  # retrieval: query texts per video


@dataclass
class Benchmark:
    name: str
    meta: dict
    splits: dict[str, Split]

    @property
    def task(self) -> str:
        return self.meta["task"]


def load_benchmark(root: str | Path, num_frames: int, image_size: int, augment: bool = False, flip: bool = False) -> Benchmark:
    root = Path(root)
    meta_path = root / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{meta_path}: cannot read benchmark meta ({exc})") from exc
    for key in ("name", "task"):
        if key not in meta:
            raise ValueError(f"{meta_path}: missing field '{key}'")
    frames = np.load(root / "frames.npy", mmap_mode="r")
    rows = pd.read_parquet(root / "frames.parquet")
    need = "label" if meta["task"] == "classification" else "texts"
    for col in ("split", "n_frames", need):
        if col not in rows.columns:
            raise ValueError(f"{root / 'frames.parquet'}: missing column '{col}'")
    splits = {}
    for split in sorted(rows["split"].unique()):
        sel = np.flatnonzero(rows["split"].to_numpy() == split)
        part = rows.iloc[sel]
        sampler = ClipSampler(np.asarray(frames[sel]), part["n_frames"].to_numpy(), num_frames, image_size, augment, flip)
        if meta["task"] == "classification":
            splits[split] = Split(sampler, np.array(part["label"], dtype=np.int64), None)  # writable copy
        else:
            splits[split] = Split(sampler, None, [list(t) for t in part["texts"]])
    return Benchmark(meta["name"], meta, splits)
