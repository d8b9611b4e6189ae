"""Coarse captions: the image captioner on each clip's middle frame only (InternVid's BLIP-2 scale)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from viclip.captions.base import Clip, ImageCaptioner
from viclip.captions.io import caption_table
from viclip.captions.shards import ImageTask, Runner, caption_images


def middle_frame(n_frames: int) -> np.ndarray:
    return np.array([n_frames // 2])


def coarse_task(captioner: ImageCaptioner) -> ImageTask:
    return ImageTask("coarse", captioner, middle_frame, "middle")


def coarse_table(clips: list[Clip], result: tuple[list, list]) -> pd.DataFrame:
    _, captions = result
    return caption_table([c.clip_id for c in clips], [texts[0] for texts in captions])


def coarse_captions(clips: list[Clip], captioner: ImageCaptioner, run: Runner | None = None) -> pd.DataFrame:
    return coarse_table(clips, caption_images(clips, [coarse_task(captioner)], run or Runner())["coarse"])
