"""Fine-scale captions: the image captioner on frames sampled across the clip.

InternVid captions frames "at a low fps" with Tag2Text and gives no rate or
count; here `n_frames` segment-middle frames per clip (ViCLIP's own test
sampling), so every clip gets the same number of frame captions.
"""

from __future__ import annotations

import pandas as pd

from viclip.captions.base import Clip, ImageCaptioner
from viclip.captions.shards import ImageTask, Runner, caption_images
from viclip.data.video import sample_indices


def frames_task(captioner: ImageCaptioner, n_frames: int) -> ImageTask:
    return ImageTask("frames", captioner, lambda n: sample_indices(n, n_frames, "middle"), f"middle-{n_frames}")


def frames_table(clips: list[Clip], result: tuple[list, list]) -> pd.DataFrame:
    """One row per clip: the sampled frame indices and one caption per frame."""
    indices, captions = result
    return pd.DataFrame(
        {
            "clip_id": pd.Series([c.clip_id for c in clips], dtype="str"),
            "frame_indices": pd.Series([i.tolist() for i in indices], dtype=object),
            "captions": pd.Series(captions, dtype=object),
        }
    )


def frame_captions(
    clips: list[Clip], captioner: ImageCaptioner, n_frames: int, run: Runner | None = None
) -> pd.DataFrame:
    return frames_table(clips, caption_images(clips, [frames_task(captioner, n_frames)], run or Runner())["frames"])
