"""Tests for viclip.data.frames: decoding a manifest, and batches of clips as model input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from viclip.data.cache import decode_all
from viclip.data.frames import MEAN, STD, ClipSampler, to_model_input
from viclip.data.render import render_clip
from viclip.data.video import VideoError, read_frames, sample_indices, write_mp4
from viclip.data.world import ClipSpec

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    (root / "videos").mkdir()
    rows = []
    for cid, events, f in [("a", ("move left",), 12), ("b", ("grow", "rotate"), 5), ("c", ("appear",), 8)]:
        spec = ClipSpec(cid, "square", "blue", "plain", "large", "grey", events, f)
        write_mp4(root / f"videos/{cid}.mp4", render_clip(spec, 32, 2.0))
        rows.append({"clip_id": cid, "path": f"videos/{cid}.mp4", "n_frames": spec.n_frames, "spec": spec.to_json()})
    (root / "videos/bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    rows.insert(1, {"clip_id": "bad", "path": "videos/bad.mp4", "n_frames": 8, "spec": None})
    return root, pd.DataFrame(rows)


def test_decode_all_keeps_good_clips_and_ledgers_the_bad_one(corpus):
    root, manifest = corpus
    frames, kept, failures = decode_all(root, manifest)
    assert list(kept["clip_id"]) == ["a", "b", "c"]
    assert kept["n_frames"].tolist() == [12, 10, 8]
    assert frames.shape == (3, 12, 32, 32, 3) and frames.dtype == np.uint8
    assert len(failures) == 1
    (fail,) = failures
    assert fail["clip_id"] == "bad"
    assert fail["path"].endswith("videos/bad.mp4") and "bad.mp4" in fail["error"]
    assert "spec" in kept.columns and kept["spec"].notna().all()


def test_decode_all_pads_short_clips_with_their_last_frame(corpus):
    root, manifest = corpus
    frames, kept, _ = decode_all(root, manifest)
    for i, cid in enumerate(kept["clip_id"]):
        own = read_frames(root / f"videos/{cid}.mp4")
        n = len(own)
        assert np.array_equal(frames[i, :n], own)
        assert (frames[i, n:] == own[-1]).all()
    # the short clips really were padded
    assert (kept["n_frames"] < frames.shape[1]).sum() == 2


def test_decode_all_with_pyav(corpus):
    root, manifest = corpus
    frames, kept, failures = decode_all(root, manifest, backend="pyav")
    assert frames.shape == (3, 12, 32, 32, 3) and len(failures) == 1


def test_decode_all_fails_when_nothing_decodes(corpus, tmp_path):
    root, manifest = corpus
    bad = manifest[manifest["clip_id"] == "bad"]
    with pytest.raises(VideoError, match="bad.mp4"):
        decode_all(root, bad)


# ---------------------------------------------------------------- model input


def _ramp_frames(n_clips=3, n_frames=16, size=8) -> np.ndarray:
    """Frame t of clip i has value 10*i + t everywhere, so picks are readable from pixels."""
    v = (10 * np.arange(n_clips)[:, None] + np.arange(n_frames)[None, :]).astype(np.uint8)
    return np.broadcast_to(v[:, :, None, None, None], (n_clips, n_frames, size, size, 3)).copy()


def test_to_model_input_normalises_with_imagenet_stats():
    frames = np.zeros((1, 2, 4, 4, 3), dtype=np.uint8)
    frames[..., 0], frames[..., 1], frames[..., 2] = 255, 128, 0
    x = to_model_input(frames, 4)
    assert x.shape == (1, 2, 3, 4, 4)
    expect = torch.tensor([(1.0 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (0.0 - 0.406) / 0.225])
    assert torch.allclose(x[0, 0, :, 0, 0], expect, atol=1e-5)
    assert torch.allclose(MEAN.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    assert torch.allclose(STD.flatten(), torch.tensor([0.229, 0.224, 0.225]))


def test_to_model_input_resizes():
    frames = _ramp_frames(2, 3, 8)
    x = to_model_input(frames, 16)
    assert x.shape == (2, 3, 3, 16, 16)
    # a constant frame stays constant through the bicubic resize
    expect = (torch.tensor(11 / 255.0) - MEAN.flatten()) / STD.flatten()
    assert torch.allclose(x[1, 1, :, 5, 9], expect, atol=1e-4)


def test_eval_batches_take_segment_middles_and_are_deterministic():
    frames = _ramp_frames(3, 16)
    lengths = np.array([16, 8, 3])  # clips 1 and 2 are padded in the cache
    s = ClipSampler(frames, lengths, 8, 8)
    x = s.batch(np.array([0, 1, 2]), train=False)
    assert x.shape == (3, 8, 3, 8, 8)
    assert torch.equal(x, s.batch(np.array([0, 1, 2]), train=False))
    values = torch.round((x[:, :, 0, 0, 0] * 0.229 + 0.485) * 255).long()
    for i, n in enumerate(lengths):
        assert values[i].tolist() == (10 * i + sample_indices(int(n), 8, "middle")).tolist()


def test_train_batches_are_seeded_and_stay_in_segments():
    frames = _ramp_frames(3, 16)
    s = ClipSampler(frames, np.array([16, 16, 16]), 8, 8)
    idx = np.array([2, 0])
    a = s.batch(idx, train=True, rng=np.random.default_rng(1))
    b = s.batch(idx, train=True, rng=np.random.default_rng(1))
    assert a.shape == (2, 8, 3, 8, 8)
    assert torch.equal(a, b)
    draws = [s.batch(idx, train=True, rng=np.random.default_rng(k)) for k in range(2, 8)]
    assert any(not torch.equal(a, d) for d in draws)
    for x in [a, *draws]:
        t = torch.round((x[:, :, 0, 0, 0] * 0.229 + 0.485) * 255).long() - torch.tensor([[20], [0]])
        assert ((t // 2) == torch.arange(8)).all(), t  # frame in segment k is 2k or 2k+1
    with pytest.raises(ValueError):
        s.batch(idx, train=True)  # training needs a generator


def test_random_crop_keeps_frame_size_and_shares_the_box_across_frames():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, size=(4, 20, 24, 3), dtype=np.uint8)
    clip[1:] = clip[0]  # identical frames: one shared box gives identical crops
    clips = np.stack([clip, clip, clip])
    s = ClipSampler(clips, np.array([4, 4, 4]), 4, 20, augment=True)
    for seed in range(5):
        out = s._crop(clips, np.random.default_rng(seed))
        assert out.shape == clips.shape and out.dtype == np.uint8
        for i in range(3):
            assert all(np.array_equal(out[i, 0], out[i, k]) for k in range(1, 4))
        # each clip draws its own box
        assert not (np.array_equal(out[0], out[1]) and np.array_equal(out[1], out[2]))
    assert not np.array_equal(s._crop(clips, np.random.default_rng(0)), clips)


def test_random_crop_is_a_zoom_into_the_frame():
    # a horizontal ramp: a crop of it (resized back) is still monotone and stays within the original range
    ramp = np.broadcast_to(np.linspace(0, 250, 32).astype(np.uint8)[None, None, :, None], (1, 2, 32, 32, 3)).copy()
    s = ClipSampler(ramp, np.array([2]), 2, 32, augment=True)
    for seed in range(5):
        out = s._crop(ramp, np.random.default_rng(seed))[0, 0, 0, :, 0].astype(int)
        assert (np.diff(out) >= -1).all()
        assert out.min() >= 0 and out.max() <= 250
        assert out[-1] - out[0] >= 0.5 * 250 * 0.5  # a crop covers at least ~half the width


def test_augmented_train_batches():
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 8, 16, 16, 3), dtype=np.uint8)
    plain = ClipSampler(frames, np.array([8, 8]), 4, 16)
    aug = ClipSampler(frames, np.array([8, 8]), 4, 16, augment=True)
    x = aug.batch(np.array([0, 1]), train=True, rng=np.random.default_rng(3))
    y = plain.batch(np.array([0, 1]), train=True, rng=np.random.default_rng(3))
    assert x.shape == y.shape == (2, 4, 3, 16, 16)
    assert not torch.equal(x, y)
    assert torch.equal(x, aug.batch(np.array([0, 1]), train=True, rng=np.random.default_rng(3)))
    # evaluation never augments
    assert torch.equal(aug.batch(np.array([0, 1]), train=False), plain.batch(np.array([0, 1]), train=False))


def test_flip_mirrors_some_clips():
    frames = np.random.default_rng(0).integers(0, 256, size=(8, 4, 8, 8, 3), dtype=np.uint8)
    flip = ClipSampler(frames, np.full(8, 4), 4, 8, flip=True)
    plain = ClipSampler(frames, np.full(8, 4), 4, 8)
    idx = np.arange(8)
    x = flip.batch(idx, train=True, rng=np.random.default_rng(5))
    y = plain.batch(idx, train=True, rng=np.random.default_rng(5))
    flipped = [torch.equal(x[i], y[i].flip(-1)) for i in idx]
    same = [torch.equal(x[i], y[i]) for i in idx]
    assert all(f or s for f, s in zip(flipped, same))
    assert any(flipped) and any(same)


# ---------------------------------------------------------------- unchanged default, eval fast path


def test_to_model_input_on_frames_of_the_model_size_is_exactly_the_normalisation():
    """No resize when frames already have the model's size: the synthetic default's input, bit for bit."""
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 3, 8, 8, 3), dtype=np.uint8)
    expect = (torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float().div_(255.0) - MEAN) / STD
    assert torch.equal(to_model_input(frames, 8), expect)


def test_to_model_input_resizes_non_square_frames_to_the_full_square():
    frames = np.zeros((1, 1, 8, 16, 3), dtype=np.uint8)
    frames[..., :8, :] = 200  # left half bright
    x = torch.round((to_model_input(frames, 8)[0, 0, 0] * 0.229 + 0.485) * 255)
    assert x.shape == (8, 8)
    assert (x[:, :3] == 200).all() and (x[:, -3:] == 0).all()  # squashed, not cropped


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Clips of three frame sizes and lengths, and one missing file."""
    root = tmp_path_factory.mktemp("mixed")
    rows = []
    for cid, (f, h, w) in {"p": (12, 24, 40), "q": (9, 40, 32), "r": (16, 32, 32)}.items():
        frames = np.random.default_rng(len(cid) + f).integers(0, 256, size=(f, h, w, 3), dtype=np.uint8)
        write_mp4(root / f"{cid}.mp4", frames)
        rows.append({"clip_id": cid, "path": f"{cid}.mp4"})
    rows.append({"clip_id": "gone", "path": "gone.mp4"})
    return root, pd.DataFrame(rows)


def test_decode_all_eval_fast_path_resizes_clips_of_any_size(mixed):
    root, manifest = mixed
    with pytest.raises(VideoError, match="size="):
        decode_all(root, manifest)
    frames, kept, failures = decode_all(root, manifest, size=16, num_frames=8)
    assert frames.shape == (3, 8, 16, 16, 3)
    assert kept["clip_id"].tolist() == ["p", "q", "r"] and kept["n_frames"].tolist() == [8, 8, 8]
    assert [f["clip_id"] for f in failures] == ["gone"]
    for i, (cid, n) in enumerate([("p", 12), ("q", 9), ("r", 16)]):
        mids = read_frames(root / f"{cid}.mp4", sample_indices(n, 8, "middle"))
        assert torch.equal(to_model_input(frames[i : i + 1], 16), to_model_input(mids[None], 16))
    # all frames, resized, and the same with threads
    every, kept_all, _ = decode_all(root, manifest, size=16)
    assert every.shape == (3, 16, 16, 16, 3) and kept_all["n_frames"].tolist() == [12, 9, 16]
    assert np.array_equal(decode_all(root, manifest, size=16, workers=3)[0], every)


def test_decode_all_window_columns(mixed):
    root, manifest = mixed
    windowed = manifest.iloc[[0, 0]].assign(start_s=[0.5, None], end_s=[1.0, None])
    frames, kept, _ = decode_all(root, windowed)  # 8 fps: frames 4..7 of p, then all 12
    assert kept["n_frames"].tolist() == [4, 12]
    assert np.array_equal(frames[0, :4], read_frames(root / "p.mp4", np.arange(4, 8)))
    assert np.array_equal(frames[1], read_frames(root / "p.mp4"))
