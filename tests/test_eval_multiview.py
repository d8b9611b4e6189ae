"""Multi-view testing: which frames and crops each view holds, and how views are pooled."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_eval_zeroshot import TINY
from torch import nn

from viclip.data.frames import MEAN, STD, ClipSampler
from viclip.eval.embed import embed_videos
from viclip.eval.multiview import Views, classify_views, embed_video_views, view_batch
from viclip.model.factory import initial_model


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """Undo the normalisation of channel-0 values: back to 0..255."""
    return ((x * STD.flatten()[0] + MEAN.flatten()[0]) * 255).round()


def _frame_numbered(n_clips: int, n_frames: int, h: int, w: int) -> np.ndarray:
    """Frame f of every clip has the value 10 f everywhere."""
    f = (np.arange(n_frames, dtype=np.uint8) * 10)[None, :, None, None, None]
    return np.broadcast_to(f, (n_clips, n_frames, h, w, 3)).copy()


def test_temporal_clips_sit_at_k_plus_one_over_n_plus_one_of_each_segment():
    s = ClipSampler(_frame_numbered(1, 16, 16, 16), np.array([16]), 4, 16)
    one = view_batch(s, np.array([0]), Views(1, 1), 4)
    three = view_batch(s, np.array([0]), Views(3, 1), 4)
    assert one.shape == (1, 1, 4, 3, 16, 16) and three.shape == (1, 3, 4, 3, 16, 16)
    frame = lambda x, v: (_pixels(x[0, v, :, 0, 0, 0]) / 10).int().tolist()
    assert frame(one, 0) == [2, 6, 10, 14]  # segment middles, as ViCLIP tests
    assert [frame(three, k) for k in range(3)] == [[1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15]]
    # one view is exactly the evaluation batch of the sampler
    assert torch.equal(one[:, 0], s.batch(np.array([0]), train=False))


def test_three_crops_run_along_the_long_side():
    cols = np.broadcast_to((np.arange(32, dtype=np.uint8) * 4)[None, None, None, :, None], (1, 4, 16, 32, 3)).copy()
    s = ClipSampler(cols, np.array([4]), 4, 16)
    x = view_batch(s, np.array([0]), Views(1, 3), 4)
    assert x.shape == (1, 3, 4, 3, 16, 16)
    first_col = [_pixels(x[0, v, 0, 0, 0, 0]).item() / 4 for v in range(3)]
    assert first_col == [0, 8, 16]  # left, centre, right squares of the 16 x 32 frame
    square = ClipSampler(_frame_numbered(1, 4, 16, 16), np.array([4]), 4, 16)
    crops = view_batch(square, np.array([0]), Views(1, 3), 4)[0]
    assert torch.equal(crops[0], crops[1]) and torch.equal(crops[1], crops[2])  # they coincide on square frames


def test_embedding_views_one_view_equals_the_plain_path_and_several_are_averaged():
    rng = np.random.default_rng(0)
    s = ClipSampler(rng.integers(0, 256, (5, 12, 16, 16, 3), dtype=np.uint8), np.full(5, 12), 4, 16)
    model = initial_model(TINY, 0)
    assert torch.equal(embed_video_views(model, s, Views()), embed_videos(model, s))
    pooled = embed_video_views(model, s, Views(2, 1), batch_size=3)
    views = view_batch(s, np.arange(5), Views(2, 1), 4)
    with torch.no_grad():
        each = torch.stack([model.encode_video(views[:, v]) for v in range(2)], 1)
    assert torch.allclose(pooled, F.normalize(each.mean(1), dim=-1), atol=1e-6)
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(5), atol=1e-6)


def test_classifier_views_average_the_softmax():
    rng = np.random.default_rng(1)
    s = ClipSampler(rng.integers(0, 256, (6, 12, 16, 16, 3), dtype=np.uint8), np.full(6, 12), 4, 16)
    torch.manual_seed(0)
    head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 3 * 16 * 16, 5))
    one = classify_views(head, s, Views())
    with torch.no_grad():
        assert torch.allclose(one, head(s.batch(np.arange(6), train=False)), atol=1e-6)  # one view: the logits
        views = view_batch(s, np.arange(6), Views(2, 3), 4)
        probs = torch.stack([head(views[:, v]).softmax(-1) for v in range(6)], 1).mean(1)
    assert torch.allclose(classify_views(head, s, Views(2, 3), batch_size=12), probs, atol=1e-6)


def test_views_must_be_positive():
    with pytest.raises(ValueError, match="at least one clip"):
        Views(0, 1)
