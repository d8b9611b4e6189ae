"""Batches of clips as model input, from a decoded-frame cache (viclip.data.cache).

Training samples 8 frames per clip from the cache every epoch, as ViCLIP
samples from each video file.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from viclip.data.transforms import MEAN, SCALE, STD, normalize, resize, rrc_box  # noqa: F401  (MEAN, STD: public)
from viclip.data.video import sample_indices


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
