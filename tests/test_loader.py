"""Tests for viclip.data.loader (clips decoded on the fly) and viclip.data.transforms, on mp4s rendered here."""

from __future__ import annotations

import subprocess
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from viclip.data import transforms
from viclip.data.cache import decode_all
from viclip.data.frames import ClipSampler, to_model_input
from viclip.data.loader import (
    LEDGER_COLUMNS,
    CorpusError,
    FailureLedger,
    VideoClipSource,
    decode_eval_frames,
    read_ledger,
)
from viclip.data.video import VideoError, read_frames, sample_indices, view_indices, write_mp4

torch.set_num_threads(1)

T, S = 8, 16
GRAY0, GRAY_STEP = 10, 12  # frame t of a gray clip is the colour 10 + 12 t everywhere


def gray_clip(n: int, h: int = 24, w: int = 40) -> np.ndarray:
    return np.stack([np.full((h, w, 3), GRAY0 + GRAY_STEP * t, np.uint8) for t in range(n)])


def pattern_clip(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """Moving coloured ramps: every frame and every column differs, so crops and flips show."""
    base = np.random.default_rng(seed).integers(0, 256, 3)
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack(
        [(base + np.stack([xx * 5 + 7 * t, yy * 3 + 3 * t, (xx + 2 * yy) * 2], -1)) % 256 for t in range(n)]
    ).astype(np.uint8)


def frame_ids(x: torch.Tensor) -> np.ndarray:
    """Frame index per [B, T] slot of a gray-clip batch, read back from the centre pixel."""
    v = (x[:, :, 0, x.shape[-2] // 2, x.shape[-1] // 2] * 0.229 + 0.485) * 255
    return np.round((v.numpy() - GRAY0) / GRAY_STEP).astype(int)


def make_bad(path, kind: str, good: bytes) -> None:
    if kind == "corrupt":
        path.write_bytes(np.random.default_rng(len(path.name)).bytes(4096))
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "missing":
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def grays(tmp_path_factory):
    """Gray clips of 16, 20 and 9 frames (40x24) and one portrait clip (32x40) of 12 frames."""
    root = tmp_path_factory.mktemp("grays")
    paths = []
    for name, clip in [("a", gray_clip(16)), ("b", gray_clip(20)), ("c", gray_clip(9)), ("d", gray_clip(12, 40, 32))]:
        write_mp4(root / f"{name}.mp4", clip, fps=8)
        paths.append(root / f"{name}.mp4")
    return paths


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """12 non-square pattern clips of three sizes; clips 2, 5, 9 are corrupt, truncated, empty; 11 is missing."""
    root = tmp_path_factory.mktemp("corpus")
    sizes = [(24, 40), (40, 32), (32, 32)]  # decord cannot decode some tiny widths (24): see the fallback test
    paths = []
    for i in range(12):
        h, w = sizes[i % 3]
        path = root / f"{i:02d}.mp4"
        write_mp4(path, pattern_clip(12 + i % 5, h, w, i), fps=8)
        paths.append(path)
    good = paths[0].read_bytes()
    for i, kind in [(2, "corrupt"), (5, "truncated"), (9, "empty"), (11, "missing")]:
        make_bad(paths[i], kind, good)
    return paths, {2, 5, 9, 11}


# ---------------------------------------------------------------- sampling


def test_eval_takes_segment_middles(grays):
    src = VideoClipSource(grays, T, S)
    x, used = src.load(np.array([0, 1, 2, 3]), train=False)
    assert x.shape == (4, T, 3, S, S) and x.dtype == torch.float32
    assert used.tolist() == [0, 1, 2, 3]
    for row, n in zip(frame_ids(x), [16, 20, 9, 12]):
        assert row.tolist() == sample_indices(n, T, "middle").tolist()
    assert torch.equal(x, src.load(np.array([0, 1, 2, 3]), train=False)[0])


def test_train_draws_one_frame_per_segment_from_the_callers_generator(grays):
    src = VideoClipSource(grays, T, S, augment=False)
    idx = np.array([1, 0])
    a, _ = src.load(idx, True, np.random.default_rng(5))
    assert torch.equal(a, src.load(idx, True, np.random.default_rng(5))[0])
    seen = set()
    for seed in range(12):
        ids = frame_ids(src.load(idx, True, np.random.default_rng(seed))[0])
        for row, n in zip(ids, [20, 16]):
            edges = np.linspace(0, n, T + 1)
            assert ((row >= np.floor(edges[:-1])) & (row < np.ceil(edges[1:]))).all(), row
        seen.add(tuple(ids[0]))
    assert len(seen) > 1
    with pytest.raises(ValueError, match="generator"):
        src.load(idx, True)


def test_clip_windows_cut_by_seconds(grays):
    # 8 fps: [0.5 s, 1.5 s) of clip b holds frames 4..11; NaN keeps clip a whole
    src = VideoClipSource(grays[:2], T, S, start_s=[np.nan, 0.5], end_s=[np.nan, 1.5], augment=False)
    ids = frame_ids(src.load(np.array([0, 1]), train=False)[0])
    assert ids[0].tolist() == sample_indices(16, T, "middle").tolist()
    assert ids[1].tolist() == list(range(4, 12))
    for seed in range(5):
        ids = frame_ids(src.load(np.array([1]), True, np.random.default_rng(seed))[0])
        assert ids.min() >= 4 and ids.max() <= 11


def test_an_empty_window_is_a_bad_clip(grays, tmp_path):
    src = VideoClipSource(
        grays[:2], T, S, start_s=[5.0, np.nan], end_s=[6.0, np.nan], max_fail_fraction=0.5, ledger=tmp_path / "f.tsv"
    )
    _, used = src.load(np.array([0]), train=False)
    assert used.tolist() == [1]
    assert "window" in read_ledger(tmp_path / "f.tsv")["error"][0]


def test_views_temporal_clips_and_spatial_crops(grays, corpus):
    src = VideoClipSource(grays, T, S)
    v, used = src.views(np.array([1, 3]), clips=3, crops=1)
    assert v.shape == (2, 3, T, 3, S, S) and used.tolist() == [1, 3]
    for k in range(3):
        assert frame_ids(v[:, k]).tolist() == [view_indices(20, T, 3)[k].tolist(), view_indices(12, T, 3)[k].tolist()]
    # one view is the evaluation input
    one, _ = src.views(np.array([0, 2]))
    assert torch.equal(one[:, 0], src.load(np.array([0, 2]), train=False)[0])
    # three crops of non-square frames: the middle one is the centre crop
    paths, _ = corpus
    wide = VideoClipSource(paths[:2], T, S)
    v, _ = wide.views(np.array([0, 1]), clips=2, crops=3)
    assert v.shape == (2, 6, T, 3, S, S)
    centre = VideoClipSource(paths[:2], T, S, eval_resize="center_crop").views(np.array([0, 1]), clips=2)[0]
    assert torch.equal(v[:, [1, 4]], centre)
    assert not torch.equal(v[:, 0], v[:, 2])
    with pytest.raises(ValueError):
        src.views(np.array([0]), clips=0)


def test_view_indices():
    assert view_indices(16, 8, 1)[0].tolist() == sample_indices(16, 8, "middle").tolist()
    v = view_indices(32, 8, 3)  # segments of 4 frames: points 1/4, 2/4, 3/4 of each
    assert v.shape == (3, 8)
    assert v[:, 0].tolist() == [1, 2, 3] and v[:, 7].tolist() == [29, 30, 31]
    assert view_indices(3, 8, 2).max() == 2


# ---------------------------------------------------------------- transforms


def _columns(h: int = 24, w: int = 40) -> torch.Tensor:
    """[2, 3, h, w] uint8: 200 in columns < 8, 100 in 8..31, 30 from 32 on."""
    row = np.where(np.arange(w) < 8, 200, np.where(np.arange(w) < 32, 100, 30)).astype(np.uint8)
    return torch.from_numpy(np.broadcast_to(row, (2, 3, h, w)).copy())


def test_centre_crop_of_a_non_square_frame():
    x = _columns()
    out = transforms.eval_clip(x, 24, "center_crop")
    assert out.shape == (2, 3, 24, 24)
    assert (out == 100).all()  # the centre 24 columns of 40 are 8..31
    left, mid, right = transforms.short_side_crops(x, 24, 3)
    assert (left[..., :8] == 200).all() and (left[..., 8:] == 100).all()
    assert torch.equal(mid, out)
    assert (right[..., :16] == 100).all() and (right[..., 16:] == 30).all()
    # ViCLIP's own test transform keeps the whole frame, squashed
    squash = transforms.eval_clip(x, 24, "squash")
    assert squash[..., 0].float().mean() > 190 and squash[..., -1].float().mean() < 40
    portrait = transforms.eval_clip(x.transpose(-1, -2), 24, "center_crop")
    assert (portrait == 100).all()
    with pytest.raises(ValueError):
        transforms.eval_clip(x, 24, "stretch")


def test_short_side_resize_then_crop_scales_the_pattern():
    out = transforms.eval_clip(_columns(), 12, "center_crop")  # 24x40 -> 12x20, centre 12 columns: 4..15
    assert out.shape == (2, 3, 12, 12)
    assert (out[..., 1:-1] == 100).all()


def test_resize_rounds_like_torchvision_uint8():
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 24, 40), dtype=np.uint8))
    ours = transforms.resize(x, 16)
    ref = torch.nn.functional.interpolate(x.float(), size=(16, 16), mode="bicubic", align_corners=False)
    assert ours.dtype == torch.uint8
    assert torch.equal(ours, ref.clamp(0, 255).round().to(torch.uint8))
    assert transforms.resize(x, (24, 40)) is x


def test_random_resized_crop_box():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x0, y0, x1, y1 = transforms.rrc_box(24, 40, rng)
        area = (x1 - x0) * (y1 - y0) / (24 * 40)
        assert 0 <= x0 < x1 <= 40 and 0 <= y0 < y1 <= 24
        assert 0.45 <= area <= 1.0
    # impossible draws fall back to a centre crop of the allowed aspect, as torchvision does
    assert transforms.rrc_box(4, 400, np.random.default_rng(1), scale=(0.99, 1.0)) == (197, 0, 202, 4)
    assert transforms.rrc_box(400, 4, np.random.default_rng(1), scale=(0.99, 1.0)) == (0, 197, 4, 202)


def test_train_transform_shares_box_and_flip_across_frames():
    frame = pattern_clip(1, 24, 40, 3)[0]
    x = torch.from_numpy(np.stack([frame] * 4)).permute(0, 3, 1, 2)
    outs = [transforms.train_clip(x, S, np.random.default_rng(s), flip=True) for s in range(8)]
    for out in outs:
        assert out.shape == (4, 3, S, S)
        assert all(torch.equal(out[0], out[k]) for k in range(1, 4))
    assert len({o.numpy().tobytes() for o in outs}) == len(outs)
    plain = transforms.train_clip(x, S, np.random.default_rng(0), augment=False)
    assert torch.equal(plain, transforms.resize(x, S))
    # flip alone mirrors about half of the clips
    flips = [
        torch.equal(transforms.train_clip(x, S, np.random.default_rng(s), augment=False, flip=True), plain.flip(-1))
        for s in range(20)
    ]
    assert 3 <= sum(flips) <= 17


def test_eval_matches_the_cache_path_on_non_square_frames(corpus):
    """to_model_input (the frame cache) and the file loader give the same full-frame resize."""
    paths, _ = corpus
    src = VideoClipSource(paths[:2], T, S)
    x, _ = src.load(np.array([0, 1]), train=False)
    for i in range(2):
        frames = read_frames(paths[i])
        picked = frames[sample_indices(len(frames), T, "middle")]
        assert torch.equal(x[i], to_model_input(picked[None], S)[0])


def test_decode_all_fast_path_equals_decoding_on_the_fly(corpus):
    paths, bad = corpus
    root = paths[0].parent
    manifest = pd.DataFrame({"clip_id": [p.stem for p in paths], "path": [p.name for p in paths]})
    for mode in ("squash", "center_crop"):
        frames, kept, failures = decode_all(root, manifest, size=S, num_frames=T, eval_resize=mode, workers=2)
        assert frames.shape == (12 - len(bad), T, S, S, 3)
        assert {f["clip_id"] for f in failures} == {f"{i:02d}" for i in bad}
        good = np.array([int(c) for c in kept["clip_id"]])
        cached = ClipSampler(frames, kept["n_frames"].to_numpy(), T, S).batch(np.arange(len(good)), train=False)
        live, used = VideoClipSource(paths, T, S, eval_resize=mode).load(good, train=False)
        assert used.tolist() == good.tolist()
        assert torch.equal(cached, live)
    # different frame sizes without size= is still an error that says what to do
    with pytest.raises(Exception, match="size="):
        decode_all(root, manifest)


def test_decode_eval_frames_keeps_square_frames_bit_identical(corpus):
    """For frames already S x S the fast path is exactly the decoded frames."""
    paths, _ = corpus
    square = paths[8]  # 32 x 32
    full = read_frames(square)
    out = decode_eval_frames(square, None, 32)
    assert np.array_equal(out, full)
    mid = decode_eval_frames(square, T, 32)
    assert np.array_equal(mid, full[sample_indices(len(full), T, "middle")])


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_batches_do_not_depend_on_worker_count(corpus, tmp_path, backend):
    paths, bad = corpus
    order = np.random.default_rng(0).permutation(len(paths))
    runs = []
    for workers in (1, 3):
        src = VideoClipSource(
            paths,
            T,
            S,
            flip=True,
            backend=backend,
            workers=workers,
            max_fail_fraction=0.5,
            ledger=tmp_path / f"w{workers}.tsv",
            seed=4,
        )
        rng = np.random.default_rng(11)
        batches = [src.load(order[i : i + 4], True, rng) for i in range(0, 12, 4)]
        batches.append(src.load(order[:6], False))
        runs.append((batches, rng.random(), sorted(read_ledger(tmp_path / f"w{workers}.tsv")["index"])))
        src.close()
    (b1, r1, l1), (b3, r3, l3) = runs
    assert r1 == r3  # the caller's generator advanced alike
    assert l1 == l3 == sorted(bad)
    for (x1, u1), (x3, u3) in zip(b1, b3):
        assert torch.equal(x1, x3) and u1.tolist() == u3.tolist()


def test_prefetch_equals_load(corpus):
    paths, _ = corpus
    idx = np.array([0, 1, 3, 4])
    with VideoClipSource(paths, T, S, workers=2, max_fail_fraction=0.5) as src:
        rng_a, rng_b = np.random.default_rng(2), np.random.default_rng(2)
        fut = [src.prefetch(idx, True, rng_a), src.prefetch(idx[::-1], True, rng_a)]
        direct = [src.load(idx, True, rng_b), src.load(idx[::-1], True, rng_b)]
        for f, (x, u) in zip(fut, direct):
            fx, fu = f.result()
            assert torch.equal(fx, x) and fu.tolist() == u.tolist()


def test_decord_and_pyav_give_the_same_batches(corpus):
    paths, _ = corpus
    good = np.array([0, 1, 3, 4, 6, 7, 8, 10])
    a = VideoClipSource(paths, T, S, backend="decord")
    b = VideoClipSource(paths, T, S, backend="pyav")
    assert torch.equal(a.load(good, False)[0], b.load(good, False)[0])
    assert torch.equal(a.load(good, True, np.random.default_rng(1))[0], b.load(good, True, np.random.default_rng(1))[0])


# ---------------------------------------------------------------- bad files


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_bad_files_are_ledgered_and_replaced(corpus, tmp_path, backend):
    paths, bad = corpus
    ledger = tmp_path / "failures.tsv"
    src = VideoClipSource(paths, T, S, backend=backend, workers=2, ledger=ledger, max_fail_fraction=0.5)
    idx = np.array([2, 0, 5, 9, 11, 1])
    x, used = src.load(idx, True, np.random.default_rng(0))
    assert x.shape == (6, T, 3, S, S) and torch.isfinite(x).all()
    assert used[[1, 5]].tolist() == [0, 1]
    assert not set(used.tolist()) & bad
    assert len(set(used.tolist())) == 6  # replacements avoid clips already in the batch
    df = read_ledger(ledger)
    assert list(df.columns) == list(LEDGER_COLUMNS)
    assert sorted(df["index"]) == sorted(bad)
    for _, row in df.iterrows():
        assert row["path"] == str(paths[row["index"]]) and str(paths[row["index"]]) in row["error"]
    assert src.n_failed == 4
    # replacements are deterministic: a fresh source picks the same ones
    again = VideoClipSource(paths, T, S, backend=backend, max_fail_fraction=0.5)
    x2, used2 = again.load(idx, True, np.random.default_rng(0))
    assert used2.tolist() == used.tolist() and torch.equal(x2, x)
    # and evaluation substitutes too (callers see it in `used`)
    _, used_eval = src.load(np.array([5, 0]), False)
    assert used_eval[0] not in bad | {0}


class CountingSource(VideoClipSource):
    """Counts decode attempts per clip."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.tries: dict[int, int] = {}

    def _decode(self, i, seed, mode):
        self.tries[i] = self.tries.get(i, 0) + 1
        return super()._decode(i, seed, mode)


def test_a_failed_clip_is_not_retried(corpus, tmp_path):
    paths, bad = corpus
    src = CountingSource(paths, T, S, workers=2, max_fail_fraction=0.5, ledger=tmp_path / "f.tsv")
    rng = np.random.default_rng(0)
    for _ in range(3):
        for b in np.array_split(rng.permutation(len(paths)), 3):
            x, used = src.load(b, True, rng)
            assert len(x) == len(b)
    assert all(src.tries[i] == 1 for i in bad)
    assert len(read_ledger(tmp_path / "f.tsv")) == len(bad)


def test_failures_that_depend_on_the_frames_asked_for(tmp_path):
    """A cut faststart mp4 opens (PyAV) and decodes its first frames, then fails: ledgered once, not retried."""
    import imageio_ffmpeg

    plain, fast = tmp_path / "plain.mp4", tmp_path / "fast.mp4"
    write_mp4(plain, np.random.default_rng(0).integers(0, 256, (40, 24, 40, 3), dtype=np.uint8))
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-i",
            str(plain),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(fast),
        ],
        check=True,
    )
    data = fast.read_bytes()
    fast.write_bytes(data[: len(data) // 2])
    good = tmp_path / "good.mp4"
    write_mp4(good, gray_clip(16))
    src = CountingSource([fast, good], T, S, backend="pyav", max_fail_fraction=0.5, ledger=tmp_path / "f.tsv")
    _, used = src.load(np.array([0]), False)
    assert used.tolist() == [1]
    for seed in range(3):
        assert src.load(np.array([0]), True, np.random.default_rng(seed))[1].tolist() == [1]
    assert src.tries[0] == 1
    assert "decoding failed" in read_ledger(tmp_path / "f.tsv")["error"][0]


def test_pyav_fallback_decodes_what_decord_rejects(tmp_path):
    """decord fails its frame copy on some tiny widths (24 px here); the source retries with PyAV."""
    narrow = tmp_path / "narrow.mp4"
    write_mp4(narrow, gray_clip(16, 32, 24))
    with pytest.raises(VideoError, match="narrow.mp4"):
        read_frames(narrow, backend="decord")
    strict = VideoClipSource([narrow, narrow], T, S, fallback=False, max_fail_fraction=1.0)
    with pytest.raises(CorpusError):
        strict.load(np.array([0]), False)
    x, used = VideoClipSource([narrow], T, S).load(np.array([0]), False)
    assert used.tolist() == [0]
    assert torch.equal(x, VideoClipSource([narrow], T, S, backend="pyav").load(np.array([0]), False)[0])
    assert np.array_equal(
        decode_eval_frames(narrow, T, None), read_frames(narrow, sample_indices(16, T, "middle"), "pyav")
    )
    # MPEG-TS: whatever decord makes of it, the source's frames are PyAV's
    import imageio_ffmpeg

    ts = tmp_path / "clip.ts"
    write_mp4(tmp_path / "wide.mp4", gray_clip(16))
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-i",
            str(tmp_path / "wide.mp4"),
            "-c",
            "copy",
            str(ts),
        ],
        check=True,
    )
    a, used = VideoClipSource([ts], T, S).load(np.array([0]), False)
    assert used.tolist() == [0]
    assert torch.equal(a, VideoClipSource([ts], T, S, backend="pyav").load(np.array([0]), False)[0])


def test_too_many_failures_raise_a_clear_error(corpus, tmp_path):
    paths, bad = corpus
    # 3 bad of 12 is exactly the 25% allowed: a whole epoch runs
    three = [paths[0] if i == 11 else p for i, p in enumerate(paths)]
    ok = VideoClipSource(three, T, S, max_fail_fraction=0.25)
    for b in np.array_split(np.arange(12), 3):
        ok.load(b, True, np.random.default_rng(0))
    assert ok.n_failed == 3
    # the fourth bad clip is one too many, wherever the epoch meets it
    src = VideoClipSource(paths, T, S, max_fail_fraction=0.25, ledger=tmp_path / "f.tsv")
    with pytest.raises(CorpusError, match=r"4 of 12 clips failed.*max_fail_fraction=0.25") as info:
        for b in np.array_split(np.arange(12), 3):
            src.load(b, False)
    assert str(tmp_path / "f.tsv") in str(info.value)
    assert len(read_ledger(tmp_path / "f.tsv")) == 4
    nothing = VideoClipSource([paths[i] for i in sorted(bad)], T, S, max_fail_fraction=1.0)
    with pytest.raises(CorpusError, match="no clip of 4 decodes"):
        nothing.load(np.array([0]), False)


def test_bad_arguments(corpus):
    paths, _ = corpus
    with pytest.raises(ValueError, match="backend"):
        VideoClipSource(paths, T, S, backend="opencv")
    with pytest.raises(ValueError, match="eval_resize"):
        VideoClipSource(paths, T, S, eval_resize="pad")
    with pytest.raises(ValueError, match="start_s"):
        VideoClipSource(paths, T, S, start_s=[0.0])
    with pytest.raises(ValueError, match="no video paths"):
        VideoClipSource([], T, S)
    src = VideoClipSource(paths, T, S)
    with pytest.raises(IndexError):
        src.load(np.array([0, 12]), False)


def test_from_manifest_reads_windows(grays):
    root = grays[0].parent
    manifest = pd.DataFrame({"path": [p.name for p in grays[:2]], "start_s": [None, 0.5], "end_s": [None, 1.5]})
    src = VideoClipSource.from_manifest(root, manifest, T, S, augment=False)
    assert len(src) == 2
    assert frame_ids(src.load(np.array([1]), False)[0])[0].tolist() == list(range(4, 12))
    with pytest.raises(ValueError, match="'path'"):
        VideoClipSource.from_manifest(root, manifest.drop(columns="path"), T, S)


# ---------------------------------------------------------------- ledger file


def test_ledger_lines_stay_whole_under_threads(tmp_path):
    path = tmp_path / "f.tsv"
    ledger = FailureLedger(path)
    threads = [
        threading.Thread(
            target=lambda k=k: [ledger.add(k * 100 + j, f"/v/{k}\t{j}.mp4", f"bad\nfile {j}") for j in range(50)]
        )
        for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    df = read_ledger(path)
    assert len(df) == 200 and sorted(df["index"]) == sorted(k * 100 + j for k in range(4) for j in range(50))
    assert df["error"].str.startswith("bad file").all()
    # a torn tail from a killed writer is closed off, not glued to the next line
    with open(path, "ab") as f:
        f.write(b"999\t/v/torn")
    FailureLedger(path).add(7, "/v/seven.mp4", "oops")
    lines = path.read_text().splitlines()
    assert lines[-2] == "999\t/v/torn" and lines[-1] == "7\t/v/seven.mp4\toops"
    assert FailureLedger(tmp_path / "new" / "x.tsv").path.read_text() == "index\tpath\terror\n"


# ---------------------------------------------------------------- acceptance


def test_a_corpus_with_ten_percent_bad_files_trains_through(tmp_path):
    """200 rendered clips, 20 of them corrupt, truncated or empty: one training epoch, all bad ledgered, no crash."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(200):
        path = tmp_path / f"{i:03d}.mp4"
        write_mp4(path, pattern_clip(16, 24, 32, i), fps=8)
        paths.append(path)
    bad = sorted(rng.choice(200, 20, replace=False).tolist())
    good_bytes = paths[0].read_bytes() if 0 not in bad else paths[1].read_bytes()
    for k, i in enumerate(bad):
        make_bad(paths[i], ("corrupt", "truncated", "empty")[k % 3], good_bytes)
    ledger = tmp_path / "failures.tsv"
    src = VideoClipSource(paths, T, S, workers=2, ledger=ledger, max_fail_fraction=0.15, seed=1)
    order = rng.permutation(200)
    seen = set()
    for b in range(0, 200, 16):
        x, used = src.load(order[b : b + 16], True, rng)
        assert x.shape == (len(order[b : b + 16]), T, 3, S, S) and torch.isfinite(x).all()
        assert not set(used.tolist()) & set(bad)
        seen.update(used.tolist())
    assert sorted(read_ledger(ledger)["index"]) == bad
    assert src.n_failed == 20
    assert len(seen) >= 170
