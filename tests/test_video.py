"""Tests for viclip.data.video: mp4 writing, decoding with both backends, frame sampling."""

from __future__ import annotations

import numpy as np
import pytest

from viclip.data.render import render_clip
from viclip.data.video import (
    MissingVideoError,
    Video,
    VideoError,
    count_frames,
    frame_window,
    read_frames,
    sample_indices,
    write_mp4,
)
from viclip.data.world import ClipSpec

BACKENDS = ["decord", "pyav"]


def _frames(n: int = 12, size: int = 32) -> np.ndarray:
    spec = ClipSpec("v", "square", "orange", "striped", "large", "gradient", ("move left",), n)
    return render_clip(spec, size, noise_std=2.0)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames = _frames()
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_mp4(path, frames, fps=8)
    return path, frames


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("backend", BACKENDS)
def test_write_then_read_round_trips(clip, backend):
    path, frames = clip
    out = read_frames(path, backend=backend)
    assert out.dtype == np.uint8
    assert out.shape == frames.shape
    err = np.abs(out.astype(np.float32) - frames.astype(np.float32)).mean()
    assert err < 12, err
    # and the content really is this clip, not just any video of that size
    assert np.abs(out.astype(np.float32) - frames[::-1].astype(np.float32)).mean() > err + 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_selected_indices(clip, backend):
    path, _ = clip
    full = read_frames(path, backend=backend)
    idx = np.array([0, 3, 3, 11])
    part = read_frames(path, idx, backend=backend)
    assert part.shape == (4, *full.shape[1:])
    assert np.abs(part.astype(int) - full[idx].astype(int)).max() <= 2


def test_backends_agree(clip):
    path, _ = clip
    a = read_frames(path, backend="decord").astype(int)
    b = read_frames(path, backend="pyav").astype(int)
    assert np.abs(a - b).mean() < 2


def test_count_frames(clip):
    path, frames = clip
    assert count_frames(path) == len(frames)


def test_unknown_backend(clip):
    with pytest.raises(ValueError, match="backend"):
        read_frames(clip[0], backend="opencv")


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_index_beyond_the_end_is_a_video_error(clip, backend):
    path, frames = clip
    with pytest.raises(VideoError, match=str(path)):
        read_frames(path, np.array([0, len(frames)]), backend=backend)


# ---------------------------------------------------------------- broken files


def _broken(tmp_path, kind: str, good: bytes):
    path = tmp_path / f"{kind}.mp4"
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "header_only":
        path.write_bytes(good[:64])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "missing":
        pass
    return path


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["truncated", "header_only", "empty", "random", "missing"])
def test_bad_files_raise_video_error_naming_the_file(clip, tmp_path, kind, backend):
    path = _broken(tmp_path, kind, clip[0].read_bytes())
    with pytest.raises(VideoError) as info:
        read_frames(path, backend=backend)
    assert str(path) in str(info.value)


def test_directory_is_not_a_video(tmp_path):
    with pytest.raises(VideoError, match=str(tmp_path)):
        read_frames(tmp_path)


def test_count_frames_on_random_bytes_raises_video_error(tmp_path):
    path = _broken(tmp_path, "random", b"")
    with pytest.raises(VideoError, match=str(path)):
        count_frames(path)


# ---------------------------------------------------------------- write_mp4


def test_write_mp4_leaves_no_temp_file(tmp_path):
    out = tmp_path / "a.mp4"
    write_mp4(out, _frames(4, 16))
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]
    # overwriting is atomic too
    write_mp4(out, _frames(6, 16))
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]
    assert count_frames(out) == 6


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 16, 16, 3), dtype=np.float32),
        np.zeros((4, 16, 16, 3), dtype=np.int64),
        np.zeros((16, 16, 3), dtype=np.uint8),
        np.zeros((4, 16, 16, 4), dtype=np.uint8),
        np.zeros((4, 16, 16), dtype=np.uint8),
    ],
)
def test_write_mp4_rejects_wrong_dtype_or_shape(tmp_path, bad):
    out = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match="bad.mp4"):
        write_mp4(out, bad)
    assert list(tmp_path.iterdir()) == []


def test_failed_encode_leaves_nothing_behind(tmp_path):
    # yuv420p needs even sides: the encoder fails, and neither output nor temp file may remain
    out = tmp_path / "odd.mp4"
    with pytest.raises(Exception):  # noqa: B017 -- whatever the encoder raises; the point is what is left behind
        write_mp4(out, np.zeros((3, 15, 15, 3), dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- sample_indices


def test_middle_sampling_16_frames_8_samples():
    assert sample_indices(16, 8, "middle").tolist() == [1, 3, 5, 7, 9, 11, 13, 15]


def test_middle_sampling_is_segment_centres():
    assert sample_indices(8, 8, "middle").tolist() == list(range(8))
    assert sample_indices(24, 8, "middle").tolist() == [1, 4, 7, 10, 13, 16, 19, 22]
    assert sample_indices(32, 4, "middle").tolist() == [4, 12, 20, 28]


@pytest.mark.parametrize("n_frames", [8, 10, 16, 17, 31, 48])
def test_random_sampling_stays_within_segments(n_frames):
    edges = np.linspace(0, n_frames, 9)
    rng = np.random.default_rng(0)
    hits = set()
    for _ in range(200):
        idx = sample_indices(n_frames, 8, "random", rng)
        assert idx.shape == (8,)
        assert (idx >= np.floor(edges[:-1])).all() and (idx < np.ceil(edges[1:])).all(), idx
        assert (np.diff(idx) >= 0).all()
        hits.update(idx.tolist())
    assert hits == set(range(n_frames))  # every frame is reachable


def test_random_sampling_is_seeded():
    a = [sample_indices(48, 8, "random", np.random.default_rng(3)).tolist() for _ in range(2)]
    assert a[0] == a[1]
    others = {tuple(sample_indices(48, 8, "random", np.random.default_rng(s))) for s in range(10)}
    assert len(others) > 1


def test_random_sampling_needs_a_generator():
    with pytest.raises(ValueError):
        sample_indices(16, 8, "random")


def test_unknown_mode():
    with pytest.raises(ValueError):
        sample_indices(16, 8, "uniform")


@pytest.mark.parametrize("n_frames", [1, 2, 3, 5, 7])
def test_short_clips_repeat_frames(n_frames):
    mid = sample_indices(n_frames, 8, "middle")
    assert mid.shape == (8,)
    assert mid.min() >= 0 and mid.max() < n_frames
    assert (np.diff(mid) >= 0).all()
    assert set(mid.tolist()) == set(range(n_frames))
    rng = np.random.default_rng(1)
    for _ in range(50):
        r = sample_indices(n_frames, 8, "random", rng)
        assert r.shape == (8,) and r.min() >= 0 and r.max() < n_frames


def test_short_clip_middle_example():
    assert sample_indices(3, 8, "middle").tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert sample_indices(1, 8, "middle").tolist() == [0] * 8


def test_encoding_is_bit_reproducible(tmp_path):
    """The same frames give the same mp4 bytes every time (the table's reproducibility rests on it)."""
    from viclip.data.render import render_clip
    from viclip.data.synthetic import pair_pool, sample_specs

    specs = sample_specs(12, 3, "c", pair_pool({"heldout_fraction": 0.25, "seed": 7}, False), 1, 16)
    for rep in range(3):
        for s in specs:
            write_mp4(tmp_path / f"{s.clip_id}-{rep}.mp4", render_clip(s, 32))
    for s in specs:
        first = (tmp_path / f"{s.clip_id}-0.mp4").read_bytes()
        for rep in (1, 2):
            assert (tmp_path / f"{s.clip_id}-{rep}.mp4").read_bytes() == first, s.clip_id


# ---------------------------------------------------------------- Video, windows


@pytest.mark.parametrize("backend", BACKENDS)
def test_video_reports_frames_and_fps_and_decodes_any_order(clip, backend):
    path, frames = clip
    with Video(path, backend) as video:
        assert video.n_frames == len(frames) and video.fps == 8.0
        full = video.get()
        part = video.get(np.array([5, 0, 5, 11]))
    assert np.array_equal(part, full[[5, 0, 5, 11]])
    with Video(path, backend) as video:
        with pytest.raises(VideoError, match=str(path)):
            video.get(np.array([-1, 2]))


def test_pyav_counts_frames_when_the_container_does_not(clip, tmp_path):
    """Matroska stores no frame count: PyAV decodes to count, and both backends agree."""
    import subprocess

    import av
    import imageio_ffmpeg

    path, frames = clip
    mkv = tmp_path / "clip.mkv"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(path), "-c", "copy", str(mkv)],
        check=True,
    )
    with av.open(str(mkv)) as c:
        assert c.streams.video[0].frames == 0
    with Video(mkv, "pyav") as video:
        assert video.n_frames == len(frames)
        assert np.array_equal(video.get(np.array([2, 7])), read_frames(path, np.array([2, 7]), "pyav"))


def test_missing_and_empty_files_are_missing_video_errors(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    for name in ("empty.mp4", "absent.mp4"):
        for backend in BACKENDS:
            with pytest.raises(MissingVideoError, match=name):
                Video(tmp_path / name, backend)


def test_frame_window():
    assert frame_window(80, 8.0, None, None) == (0, 80)
    assert frame_window(80, 8.0, float("nan"), float("nan")) == (0, 80)
    assert frame_window(80, 8.0, 0.5, 1.5) == (4, 12)  # timestamps 0.5 .. 1.375 s
    assert frame_window(80, 8.0, 1.25, None) == (10, 80)
    assert frame_window(80, 8.0, None, 100.0) == (0, 80)
    assert frame_window(30, 29.97, 0.1001, 0.2002) == (3, 6)
    with pytest.raises(VideoError, match="no frame"):
        frame_window(80, 8.0, 20.0, 21.0, "v.mp4")
    with pytest.raises(VideoError, match="frame rate"):
        frame_window(80, 0.0, 1.0, 2.0, "v.mp4")


# ---------------------------------------------------------------- rotation metadata


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_rotated_files_decode_upright(tmp_path, degrees):
    """A display matrix (a phone's portrait video) turns the frames as a player turns them, in both backends.

    ffmpeg's -display_rotation is counter-clockwise, as np.rot90. decord 0.6.0 turns 180 degrees but
    fails on 90 and 270 (a frame-copy size mismatch): a VideoError, which the loaders retry with PyAV.
    """
    import subprocess

    from viclip.data.cutting import ffmpeg_exe

    y, x = np.mgrid[0:48, 0:64]
    frame = np.stack([x * 4, y * 5, np.zeros_like(x)], axis=-1).astype(np.uint8)  # no symmetry to hide a turn
    write_mp4(tmp_path / "plain.mp4", np.stack([frame] * 4), fps=8)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-v", "error", "-display_rotation", str(degrees), "-i", str(tmp_path / "plain.mp4")]
        + ["-c", "copy", str(rotated)],
        check=True,
    )
    upright = np.rot90(frame, degrees // 90).astype(int)
    pyav = read_frames(rotated, backend="pyav")
    assert pyav.shape == (4, *upright.shape) and np.abs(pyav - upright).mean() < 2
    if degrees == 180:
        assert np.abs(read_frames(rotated, backend="decord").astype(int) - pyav).max() <= 1
    else:
        with pytest.raises(VideoError, match="rotated.mp4"):
            read_frames(rotated, backend="decord")
