"""The pretraining corpus as model input: a clip source joined with one caption variant.

Two sources: the decoded frame cache of the synthetic corpus (`load_corpus`),
and the downloaded clip files of a real corpus, decoded on the fly
(`load_video_corpus`). Both keep only clips that have a caption.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from viclip.data.frames import ClipSampler
from viclip.model.tokenizer import tokenizer_for
from viclip.model.viclip import ViCLIPConfig


class Captions:
    """Caption token ids by clip index, tokenized when a clip is drawn.

    A 10M-clip corpus is never tokenized up front: every rank (and loader
    worker) would hold gigabytes of ids and spend minutes on start-up.
    """

    def __init__(self, texts: list[str], tokenizer):
        self.texts, self.tokenizer = list(texts), tokenizer

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.tokenizer([self.texts[i]])[0]

    def digest(self) -> str:
        h = hashlib.sha1()
        for text in self.texts:
            h.update(text.encode())
            h.update(b"\0")
        return h.hexdigest()


def load_corpus(
    frames_path: str | Path,
    index_path: str | Path,
    captions_path: str | Path,
    cfg: ViCLIPConfig,
    augment: bool,
    flip: bool,
) -> tuple[ClipSampler, Captions]:
    """Sampler over the clips that have both frames and a caption, and their captions (same order)."""
    index = pd.read_parquet(index_path)
    if "n_frames" not in index.columns:
        raise ValueError(f"{index_path}: missing column 'n_frames'")
    rows, captions = _captioned(index, index_path, captions_path)
    frames = np.load(frames_path, mmap_mode="r")
    if len(frames) != len(index):
        raise ValueError(f"{frames_path}: {len(frames)} clips, but {index_path} lists {len(index)}")
    sampler = ClipSampler(
        np.ascontiguousarray(frames[rows]),
        index["n_frames"].to_numpy()[rows],
        cfg.num_frames,
        cfg.image_size,
        augment,
        flip,
    )
    return sampler, Captions(captions["caption"].tolist(), tokenizer_for(cfg))


def _captioned(table: pd.DataFrame, table_path, captions_path) -> tuple[np.ndarray, pd.DataFrame]:
    """Rows of `table` that have a caption, and the captions in the same order."""
    captions = pd.read_parquet(captions_path)
    for column, path, t in (
        ("clip_id", table_path, table),
        ("clip_id", captions_path, captions),
        ("caption", captions_path, captions),
    ):
        if column not in t.columns:
            raise ValueError(f"{path}: missing column '{column}'")
    pos = pd.Series(np.arange(len(table)), index=table["clip_id"])
    captions = captions[captions["clip_id"].isin(pos.index)]
    if captions.empty:
        raise ValueError(f"{captions_path}: no caption matches a clip of {table_path}")
    return pos.loc[captions["clip_id"]].to_numpy(), captions


def load_video_corpus(
    manifest_path: str | Path,
    captions_path: str | Path,
    cfg: ViCLIPConfig,
    augment: bool,
    flip: bool,
    ledger: str | Path | None = None,
    seed: int = 0,
):
    """A file-backed source over a download manifest's clips (paths relative to its folder), and their captions.

    The clips are already cut to their InternVid timestamps, so the whole file
    is the clip (the manifest's start_s/end_s are times in the source video).
    """
    from viclip.data.loader import VideoClipSource

    manifest = pd.read_parquet(manifest_path)
    if "path" not in manifest.columns:
        raise ValueError(f"{manifest_path}: missing column 'path'")
    rows, captions = _captioned(manifest, manifest_path, captions_path)
    root = Path(manifest_path).parent
    source = VideoClipSource(
        [root / p for p in manifest["path"].to_numpy()[rows]],
        cfg.num_frames,
        cfg.image_size,
        augment=augment,
        flip=flip,
        ledger=ledger,
        seed=seed,
    )
    return source, Captions(captions["caption"].tolist(), tokenizer_for(cfg))
