"""Frames for the captioners: each clip decoded once, the next chunk while the models work on this one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from viclip.captions.base import Clip
from viclip.data.loader import with_fallback
from viclip.data.video import Video, VideoError, frame_window


def clip_frames(clip: Clip, indices: np.ndarray, backend: str = "decord") -> np.ndarray:
    """uint8 [k, H, W, 3]: frames `indices` of the clip, counted from its window's first frame, each decoded once."""
    indices = np.asarray(indices, dtype=np.int64)

    def read(b: str) -> np.ndarray:
        with Video(clip.path, b) as video:
            lo, hi = frame_window(video.n_frames, video.fps, clip.start_s, clip.end_s, clip.path)
            if indices.max() >= hi - lo:
                raise VideoError(
                    f"{clip.path}: clip {clip.clip_id} has {hi - lo} frames, asked for index {int(indices.max())}"
                )
            uniq, inverse = np.unique(lo + indices, return_inverse=True)
            return video.get(uniq)[inverse]

    return with_fallback(backend, True, read)


def prefetch(
    chunks: Iterable[tuple[list[Clip], list[np.ndarray]]], workers: int, backend: str = "decord"
) -> Iterator[tuple[list[Clip], list[np.ndarray]]]:
    """Yield (clips, frames) per chunk, decoding the following chunk in `workers` threads meanwhile."""
    with ThreadPoolExecutor(max(workers, 1)) as pool:

        def submit(chunk):
            clips, indices = chunk
            return clips, [pool.submit(clip_frames, c, i, backend) for c, i in zip(clips, indices)]

        pending = None
        for chunk in chunks:
            nxt = submit(chunk)
            if pending is not None:
                yield pending[0], [f.result() for f in pending[1]]
            pending = nxt
        if pending is not None:
            yield pending[0], [f.result() for f in pending[1]]
