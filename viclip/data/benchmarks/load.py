"""Read a benchmark in the standard layout, with its decoded frames.

Paragraph benchmarks (meta.json `paragraph: true`) keep each video's
sentences in temporal order in `texts`; `queries` picks whether a split's
texts are those sentences or one joined paragraph per video
(viclip.eval.queries). The raw sentences stay in `Split.sentences`.

Missing videos are counted per split from two sources: clips the benchmark's
reader could not find in the local copy (meta.json `counts.{split}.videos_missing`,
written by the real-data readers) and clips of the manifest that failed to
decode (manifest.parquet rows absent from frames.parquet). Evaluation scores
meta.json's `eval_split` ("test" when absent; Kinetics and ANet use "val").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from viclip.data.frames import ClipSampler
from viclip.data.loader import FileViews
from viclip.eval.queries import video_queries


@dataclass
class Split:
    sampler: ClipSampler
    labels: np.ndarray | None  # classification
    texts: list[list[str]] | None  # retrieval: query texts per video, in the loaded query mode
    sentences: list[list[str]] | None = None  # retrieval: the stored texts per video
    missing: dict[str, int] = field(default_factory=dict)  # reason -> videos of this split not used
    ids: list[str] = field(default_factory=list)  # clip ids in the cache's order (empty: the cache has none)


@dataclass
class Benchmark:
    name: str
    meta: dict
    splits: dict[str, Split]

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def paragraph(self) -> bool:
        return bool(self.meta.get("paragraph", False))

    @property
    def eval_split(self) -> str:
        return self.meta.get("eval_split", "test")

    @property
    def test(self) -> Split:
        """The split evaluation scores."""
        if self.eval_split not in self.splits:
            raise ValueError(
                f"benchmark {self.name}: evaluation split '{self.eval_split}' has no decoded videos "
                f"(splits: {sorted(self.splits)})"
            )
        return self.splits[self.eval_split]


def _read_meta(root: Path) -> dict:
    meta_path = root / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{meta_path}: cannot read benchmark meta ({exc})") from exc
    for key in ("name", "task"):
        if key not in meta:
            raise ValueError(f"{meta_path}: missing field '{key}'")
    counts = meta.get("counts", {})
    if not isinstance(counts, dict) or not all(
        isinstance(c, dict) and isinstance(c.get("videos_missing", 0), int) for c in counts.values()
    ):
        raise ValueError(
            f"{meta_path}: field 'counts' must map split names to {{'videos_missing': int, ...}}, got {counts!r}"
        )
    return meta


def _undecoded(root: Path, rows: pd.DataFrame) -> dict[str, int]:
    """Per split: manifest clips that did not make it into the frame cache."""
    manifest = root / "manifest.parquet"
    if not manifest.exists():
        return {}
    listed = pd.read_parquet(manifest, columns=["split"])["split"].value_counts()
    kept = rows["split"].value_counts()
    return {s: int(n - kept.get(s, 0)) for s, n in listed.items()}


def load_benchmark(
    root: str | Path,
    num_frames: int,
    image_size: int,
    augment: bool = False,
    flip: bool = False,
    queries: str = "paragraph",
    crop_scale: tuple[float, float] | None = None,
) -> Benchmark:
    root = Path(root)
    meta = _read_meta(root)
    frames = np.load(root / "frames.npy", mmap_mode="r")
    rows = pd.read_parquet(root / "frames.parquet")
    need = "label" if meta["task"] == "classification" else "texts"
    for col in ("split", "n_frames", need):
        if col not in rows.columns:
            raise ValueError(f"{root / 'frames.parquet'}: missing column '{col}'")
    undecoded = _undecoded(root, rows)
    splits = {}
    for split in sorted(rows["split"].unique()):
        sel = np.flatnonzero(rows["split"].to_numpy() == split)
        part = rows.iloc[sel]
        sampler = ClipSampler(
            np.asarray(frames[sel]), part["n_frames"].to_numpy(), num_frames, image_size, augment, flip
        )
        if crop_scale is not None:  # a fine-tuning recipe's RandomResizedCrop area range
            sampler.crop_scale = tuple(crop_scale)
        if not meta.get("synthetic", False):
            sampler.files = FileViews(root, part, image_size)  # views the segment-middle cache cannot give
        missing = {
            "not_in_local_copy": int(meta.get("counts", {}).get(split, {}).get("videos_missing", 0)),
            "failed_to_decode": undecoded.get(split, 0),
        }
        ids = [str(c) for c in part["clip_id"]] if "clip_id" in part.columns else []
        if meta["task"] == "classification":
            labels = np.array(part["label"], dtype=np.int64)  # a writable copy
            splits[split] = Split(sampler, labels, None, missing=missing, ids=ids)
        else:
            sentences = [[str(t) for t in ts] for ts in part["texts"]]
            texts = video_queries(sentences, bool(meta.get("paragraph", False)), queries)
            splits[split] = Split(sampler, None, texts, sentences, missing, ids)
    return Benchmark(meta["name"], meta, splits)
