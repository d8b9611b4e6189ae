"""Decoded-frame caches and batches of clips as model input.

A dataset's mp4s are decoded once (decord) into one uint8 array
[N, F, H, W, 3]; training then samples 8 frames per clip from it every
epoch, as ViCLIP samples from each video file. This trades disk for the
decoder start-up cost per clip, which dominates for tiny clips. For real
benchmarks, `decode_all(size=, num_frames=)` keeps only the evaluation
frames, already through the test transform, so clips of any size share one
cache and give the same model input as `VideoClipSource` decoding on the fly.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from viclip.data.loader import decode_eval_frames
from viclip.data.transforms import MEAN, SCALE, STD, normalize, resize, rrc_box  # noqa: F401  (MEAN, STD: public)
from viclip.data.video import VideoError, read_frames, sample_indices
from viclip.progress import progress


def decode_all(
    root: str | Path,
    manifest: pd.DataFrame,
    backend: str = "decord",
    size: int | None = None,
    num_frames: int | None = None,
    eval_resize: str = "squash",
    workers: int = 1,
    fallback: bool = False,
) -> tuple[np.ndarray, pd.DataFrame, list[dict]]:
    """Decode every clip of a manifest.

    Returns frames [N_ok, F_max, H, W, 3] (shorter clips padded with their last
    frame, as ViCLIP pads), the manifest rows that decoded (with `n_frames`
    set to the decoded count), and a ledger of failures naming each file.

    The evaluation fast path: `num_frames` keeps only the segment-middle frames
    (inside the optional `start_s`/`end_s` window columns) and `size` applies
    the test transform (`eval_resize`), so frames come out [N_ok, T, S, S, 3]
    whatever each video's size. `workers` threads decode side by side;
    `fallback` retries a file decord rejects with PyAV.
    """
    root = Path(root)
    rows = list(manifest.itertuples(index=False))

    def one(row):
        path = root / row.path
        try:
            if num_frames is None and size is None and not _has_window(row) and not fallback:
                return read_frames(path, backend=backend)
            return decode_eval_frames(
                path,
                num_frames,
                size,
                eval_resize,
                backend,
                getattr(row, "start_s", None),
                getattr(row, "end_s", None),
                fallback,
            )
        except VideoError as exc:
            return exc

    clips, ok_rows, failures = [], [], []
    with ThreadPoolExecutor(max(workers, 1)) as pool:
        for row, out in progress(zip(rows, pool.map(one, rows)), total=len(rows), desc="decode", mininterval=2.0):
            if isinstance(out, VideoError):
                failures.append({"clip_id": row.clip_id, "path": str(root / row.path), "error": str(out)})
            else:
                clips.append(out)
                ok_rows.append(row._asdict())
    if not clips:
        raise VideoError(
            f"{root}: no clip of {len(manifest)} could be decoded; first error: {failures[0]['error'] if failures else '-'}"
        )
    shapes = {c.shape[1:] for c in clips}
    if len(shapes) > 1:
        raise VideoError(f"{root}: clips have different frame sizes {sorted(shapes)}; pass size= to resize them")
    f_max = max(len(c) for c in clips)
    out = np.empty((len(clips), f_max, *clips[0].shape[1:]), dtype=np.uint8)
    lengths = []
    for i, c in enumerate(clips):
        out[i, : len(c)] = c
        out[i, len(c) :] = c[-1]
        lengths.append(len(c))
    kept = pd.DataFrame(ok_rows)
    kept["n_frames"] = lengths
    return out, kept, failures


def _has_window(row) -> bool:
    return any(v is not None and not pd.isna(v) for v in (getattr(row, "start_s", None), getattr(row, "end_s", None)))


def to_model_input(frames: np.ndarray, image_size: int) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> normalised float [B, T, 3, S, S] (full-frame bicubic resize, no crop, as ViCLIP tests)."""
    return normalize(resize(torch.from_numpy(frames).permute(0, 1, 4, 2, 3), image_size))


class ClipSampler:
    """Batches of clips from a frame cache, with ViCLIP's sampling and augmentation.

    "train": a random frame in each of `num_frames` segments, and (when
    `augment`) one random resized crop (area `crop_scale`, 0.5-1 unless set;
    aspect 3/4-4/3) shared by all frames of a clip; "eval": segment middles,
    full frame.
    """

    def __init__(
        self,
        frames: np.ndarray,
        lengths: np.ndarray,
        num_frames: int,
        image_size: int,
        augment: bool = False,
        flip: bool = False,
        crop_scale: tuple[float, float] = SCALE,
    ):
        self.frames, self.lengths = frames, np.asarray(lengths)
        self.num_frames, self.image_size = num_frames, image_size
        self.augment, self.flip, self.crop_scale = augment, flip, tuple(crop_scale)
        self.files = None  # real benchmarks: viclip.data.loader.FileViews, for views beyond the cache

    def __len__(self) -> int:
        return len(self.frames)

    def load(
        self, idx: np.ndarray, train: bool, rng: np.random.Generator | None = None
    ) -> tuple[torch.Tensor, np.ndarray]:
        """The clip-source interface shared with file-backed loaders: (batch, clips used).

        A cache holds only clips that decoded, so every requested clip is used;
        a file-backed source may substitute a clip that fails to decode.
        """
        return self.batch(idx, train, rng), np.asarray(idx)

    def batch(self, idx: np.ndarray, train: bool, rng: np.random.Generator | None = None) -> torch.Tensor:
        mode = "random" if train else "middle"
        picked = np.stack(
            [self.frames[i, sample_indices(int(self.lengths[i]), self.num_frames, mode, rng)] for i in idx]
        )
        if train and self.augment:
            picked = self._crop(picked, rng)
        x = to_model_input(picked, self.image_size)
        if train and self.flip:
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            x[flip] = x[flip].flip(-1)
        return x

    def _crop(self, clips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One RandomResizedCrop box per clip, applied to all its frames, resized back."""
        b, t, h, w = clips.shape[:4]
        out = np.empty_like(clips)
        for i in range(b):
            x0, y0, x1, y1 = (int(v) for v in rrc_box(h, w, rng, self.crop_scale))
            crop = torch.from_numpy(np.ascontiguousarray(clips[i, :, y0:y1, x0:x1])).permute(0, 3, 1, 2).float()
            resized = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)
            out[i] = resized.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        return out
