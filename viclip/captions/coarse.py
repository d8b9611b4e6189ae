"""Coarse captions: the image captioner on each clip's middle frame only."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from viclip.captions.base import Clip, ImageCaptioner


def coarse_captions(clips: list[Clip], captioner: ImageCaptioner) -> pd.DataFrame:
    rows = []
    for clip in tqdm(clips, desc="coarse", mininterval=2.0):
        (text,) = captioner.caption(clip, np.array([clip.n_frames // 2]))
        rows.append({"clip_id": clip.clip_id, "caption": text})
    return pd.DataFrame(rows)
