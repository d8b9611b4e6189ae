"""The pretraining corpus as model input: decoded frames joined with one caption variant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from viclip.data.frames import ClipSampler
from viclip.model.tokenizer import tokenizer_for
from viclip.model.viclip import ViCLIPConfig


def load_corpus(frames_path: str | Path, index_path: str | Path, captions_path: str | Path, cfg: ViCLIPConfig,
                augment: bool, flip: bool) -> tuple[ClipSampler, torch.Tensor]:
    """Sampler over the clips that have both frames and a caption, and their caption tokens."""
    index = pd.read_parquet(index_path)
    captions = pd.read_parquet(captions_path)
    if "caption" not in captions.columns:
        raise ValueError(f"{captions_path}: missing column 'caption'")
    pos = pd.Series(np.arange(len(index)), index=index["clip_id"])
    captions = captions[captions["clip_id"].isin(pos.index)]
    if captions.empty:
        raise ValueError(f"{captions_path}: no caption matches a clip of {index_path}")
    rows = pos.loc[captions["clip_id"]].to_numpy()
    frames = np.load(frames_path, mmap_mode="r")
    sampler = ClipSampler(np.ascontiguousarray(frames[rows]), index["n_frames"].to_numpy()[rows], cfg.num_frames,
                          cfg.image_size, augment, flip)
    tokens = tokenizer_for(cfg)(captions["caption"].tolist())
    return sampler, tokens
