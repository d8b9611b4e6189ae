"""Fine-scale captions: the image captioner on frames sampled across the clip."""

from __future__ import annotations

import pandas as pd
from tqdm import tqdm

from viclip.captions.base import Clip, ImageCaptioner
from viclip.data.video import sample_indices


def frame_captions(clips: list[Clip], captioner: ImageCaptioner, n_frames: int) -> pd.DataFrame:
    """One row per clip: the sampled frame indices and one caption per frame."""
    rows = []
    for clip in tqdm(clips, desc="frames", mininterval=2.0):
        idx = sample_indices(clip.n_frames, n_frames, "middle")
        rows.append({"clip_id": clip.clip_id, "frame_indices": idx.tolist(), "captions": captioner.caption(clip, idx)})
    return pd.DataFrame(rows)
