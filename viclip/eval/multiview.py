"""Multi-view testing: several temporal clips x spatial crops per video.

Temporal clip k of n takes, in each of the `num_frames` equal segments, the
frame at (k + 1) / (n + 1) of the segment (UMT's sparse test sampling,
OpenGVLab/unmasked_teacher single_modality datasets, `_get_seq_frames`);
one clip is the segment middles, ViCLIP's test sampling
(`viclip.data.video.view_indices`).

Spatial crops: one crop is ViCLIP's test transform (the whole frame resized
to the model's size, no crop); n > 1 crops resize the short side and take n
squares evenly spaced along the long side (UMT/VideoMAE `test_num_crop`); on
square frames they coincide, as in UMT (`viclip.data.transforms.view_crops`,
the same geometry `VideoClipSource.views` uses on files).

Pooling follows the peers: a dual encoder averages the L2-normalised view
embeddings and re-normalises (as CLIP baselines average frame embeddings,
viclip_spec.md §5.1); a classifier head averages the per-view softmax
(UMT `merge`).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from viclip.data.frames import ClipSampler
from viclip.data.transforms import normalize, view_crops
from viclip.data.video import view_indices
from viclip.eval.views import Views  # noqa: F401  (re-exported: callers build views here)

log = logging.getLogger("viclip")


def view_batch(sampler: ClipSampler, idx: np.ndarray, views: Views, num_frames: int) -> torch.Tensor:
    """Normalised [B, clips * crops, T, 3, S, S] (clip-major) from a decoded-frame cache.

    A cache of a real benchmark keeps only what 1 x 1 testing reads; other
    views come from its files (`sampler.files`, viclip.data.loader.FileViews).
    """
    files = getattr(sampler, "files", None)
    if files is not None and (views.n > 1 or num_frames != sampler.frames.shape[1]):
        return files.views(idx, views.clips, views.crops, num_frames)
    out = []
    for i in idx:
        n = int(sampler.lengths[i])
        clips = torch.from_numpy(np.ascontiguousarray(sampler.frames[i, view_indices(n, num_frames, views.clips)]))
        clips = clips.permute(0, 1, 4, 2, 3)  # [clips, T, 3, H, W]
        out.append(torch.cat([view_crops(c, sampler.image_size, views.crops) for c in clips]))
    return normalize(torch.stack(out))


def iter_views(sampler: ClipSampler, views: Views, num_frames: int | None = None, batch_size: int = 64):
    """Yield (video ids, [B, V, T, 3, S, S] views) batch by batch."""
    num_frames = num_frames or sampler.num_frames
    if views.clips > 1 and int(np.max(sampler.lengths)) <= num_frames and getattr(sampler, "files", None) is None:
        log.warning(
            "every cached clip holds at most %d frames: its %d temporal views repeat the same frames "
            "(multi-clip testing needs whole videos in the cache)",
            num_frames,
            views.clips,
        )
    for start in range(0, len(sampler), batch_size):
        idx = np.arange(start, min(start + batch_size, len(sampler)))
        yield idx, view_batch(sampler, idx, views, num_frames)


@torch.no_grad()
def embed_video_views(
    model, sampler: ClipSampler, views: Views | None = None, num_frames: int | None = None, batch_size: int = 64
) -> torch.Tensor:
    """[N, D] fp32: each video's normalised view embeddings averaged and re-normalised (one view: as is)."""
    views = views or Views()
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for _, x in iter_views(sampler, views, num_frames, max(1, batch_size // views.n)):
        b, v = x.shape[:2]
        emb = model.encode_video(x.flatten(0, 1).to(dev)).float().cpu().view(b, v, -1)
        out.append(emb[:, 0] if v == 1 else F.normalize(emb.mean(1), dim=-1))
    return torch.cat(out)


@torch.no_grad()
def classify_views(
    classifier, sampler: ClipSampler, views: Views | None = None, num_frames: int | None = None, batch_size: int = 64
) -> torch.Tensor:
    """[N, classes] fp32: the logits for one view, the mean per-view softmax for several (UMT merge)."""
    views = views or Views()
    dev = next(classifier.parameters()).device
    out = []
    for _, x in iter_views(sampler, views, num_frames, max(1, batch_size // views.n)):
        b, v = x.shape[:2]
        logits = classifier(x.flatten(0, 1).to(dev)).float().cpu().view(b, v, -1)
        out.append(logits[:, 0] if v == 1 else logits.softmax(-1).mean(1))
    return torch.cat(out)
