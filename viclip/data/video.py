"""Video files: writing mp4 (PyAV), decoding (decord, PyAV fallback), frame sampling.

Synthetic clips and real InternVid clips go through the same `Video` reader
(`read_frames` for whole clips), so the embedded default exercises the
decoder real data will use. Both backends give the same RGB frames on H.264
mp4 (tested); decord seeks, PyAV decodes from the start up to the last
frame asked for. Frames come upright, as a player shows them: decord applies
a file's rotation metadata, and so does the PyAV reader here. (decord 0.6.0
fails on 90 and 270 degree rotations, a frame-copy size mismatch, so those
files reach PyAV through the loaders' fallback.)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class VideoError(RuntimeError):
    """A video file that cannot be decoded; the message names the file."""


class MissingVideoError(VideoError):
    """The file is absent or empty: no decoder can help."""


def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 8, qp: int = 12) -> None:
    """Write [T, H, W, 3] uint8 frames as H.264 mp4, atomically (temp file + rename)."""
    import av

    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path}: frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.mp4")
    try:
        with av.open(str(tmp), mode="w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            # Constant QP on one thread: x264's CRF rate control gave different
            # bytes for the same frames from run to run (measured: ~15% of
            # clips), and the same config must give the same videos and table.
            stream.options = {"qp": str(qp), "preset": "veryfast", "threads": "1"}
            stream.thread_count = 1
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def count_frames(path: str | Path) -> int:
    return len(_decord_reader(path))


def _decord_reader(path: str | Path):
    import decord

    try:
        return decord.VideoReader(str(path), num_threads=1)
    except Exception as exc:  # decord raises DECORDError, not a RuntimeError subclass
        raise VideoError(f"{path}: cannot open video ({type(exc).__name__}: {exc})") from exc


class _DecordVideo:
    def __init__(self, path: Path):
        self.path = path
        self._vr = _decord_reader(path)
        self.n_frames = len(self._vr)
        self.fps = float(self._vr.get_avg_fps() or 0.0)

    def get(self, indices: np.ndarray) -> np.ndarray:
        try:
            return self._vr.get_batch(indices.tolist()).asnumpy()
        except Exception as exc:
            raise VideoError(f"{self.path}: decoding failed ({type(exc).__name__}: {exc})") from exc

    def close(self) -> None:
        self._vr = None


def upright(frame) -> np.ndarray:
    """A PyAV frame as RGB [H, W, 3], turned by its display matrix as a player (and decord) turns it.

    `frame.rotation` is the counter-clockwise angle of the display matrix (90, -90, 180...), which
    is what np.rot90 turns by per quarter.
    """
    rgb = frame.to_ndarray(format="rgb24")
    quarters = round((frame.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, quarters)) if quarters else rgb


class _PyAVVideo:
    """Decodes from the start up to the last frame asked for (no seeking), one thread."""

    def __init__(self, path: Path):
        import av

        self.path = path
        try:
            self._container = av.open(str(path))
        except Exception as exc:
            raise VideoError(f"{path}: cannot open video ({type(exc).__name__}: {exc})") from exc
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"{path}: no video stream")
        stream = self._container.streams.video[0]
        # One decoder thread, as decord runs here: parallelism comes from decoding clips side by side.
        stream.thread_count = 1
        self._stream = stream
        self.fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        self._all, self._started = None, False
        # The container's frame count can be absent (0); then only decoding everything tells.
        try:
            self.n_frames = stream.frames if stream.frames > 0 else len(self._decode_all())
        except VideoError:
            self.close()
            raise

    def _frames(self):
        try:
            if self._started:  # a second pass: back to the start
                self._container.seek(0)
            self._started = True
            yield from self._container.decode(self._stream)
        except Exception as exc:
            raise VideoError(f"{self.path}: decoding failed ({type(exc).__name__}: {exc})") from exc

    def _decode_all(self) -> list:
        if self._all is None:
            self._all = [upright(f) for f in self._frames()]
        return self._all

    def get(self, indices: np.ndarray) -> np.ndarray:
        if self._all is not None:
            if len(indices) and indices.max() >= len(self._all):
                raise VideoError(
                    f"{self.path}: decoded only {len(self._all)} frames, asked for index {int(indices.max())}"
                )
            return np.stack([self._all[i] for i in indices])
        wanted, last, got, seen = set(indices.tolist()), int(indices.max()), {}, 0
        for i, frame in enumerate(self._frames()):
            seen = i + 1
            if i in wanted:
                got[i] = upright(frame)
            if i >= last:
                break
        if len(got) < len(wanted):
            raise VideoError(f"{self.path}: decoded only {seen} frames, asked for index {last}")
        return np.stack([got[i] for i in indices.tolist()])

    def close(self) -> None:
        self._container.close()


class Video:
    """An open video file: `n_frames`, `fps` and `get(indices)` -> uint8 [k, H, W, 3].

    Every decoder failure is a `VideoError` naming the file. Use as a context manager.
    """

    def __init__(self, path: str | Path, backend: str = "decord"):
        path = Path(path)
        if backend not in ("decord", "pyav"):
            raise ValueError(f"unknown video backend {backend!r}")
        if not path.is_file() or path.stat().st_size == 0:
            raise MissingVideoError(f"{path}: missing or empty video file")
        self.path = path
        self._impl = _DecordVideo(path) if backend == "decord" else _PyAVVideo(path)
        self.n_frames, self.fps = self._impl.n_frames, self._impl.fps
        if self.n_frames <= 0:
            self.close()
            raise VideoError(f"{path}: no frames")

    def get(self, indices: np.ndarray | None = None) -> np.ndarray:
        idx = np.arange(self.n_frames) if indices is None else np.asarray(indices, dtype=np.int64)
        if len(idx) == 0:
            raise ValueError(f"{self.path}: no frame indices asked for")
        if idx.min() < 0 or idx.max() >= self.n_frames:
            raise VideoError(
                f"{self.path}: has {self.n_frames} frames, asked for index "
                f"{int(idx.max()) if idx.max() >= self.n_frames else int(idx.min())}"
            )
        return self._impl.get(idx)

    def close(self) -> None:
        self._impl.close()

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_frames(path: str | Path, indices: np.ndarray | None = None, backend: str = "decord") -> np.ndarray:
    """Decode frames `indices` (all when None) as [T, H, W, 3] uint8.

    Any decoder failure becomes a `VideoError` naming the file, so one broken
    clip in a corpus can be ledgered instead of crashing a job.
    """
    with Video(path, backend) as video:
        return video.get(indices)


def frame_window(
    n_frames: int, fps: float, start_s: float | None, end_s: float | None, path: str | Path = ""
) -> tuple[int, int]:
    """Frames [lo, hi) whose timestamps i/fps lie in [start_s, end_s); None or NaN means the clip's own start/end."""
    has = lambda v: v is not None and not np.isnan(v)
    if not has(start_s) and not has(end_s):
        return 0, n_frames
    if fps <= 0:
        raise VideoError(f"{path}: no frame rate, cannot cut the window {start_s}-{end_s} s")
    eps = 1e-6  # a timestamp written as 1.25 s may come back as 1.2499999
    lo = max(int(np.ceil(start_s * fps - eps)), 0) if has(start_s) else 0
    hi = min(int(np.ceil(end_s * fps - eps)), n_frames) if has(end_s) else n_frames
    if hi <= lo:
        raise VideoError(f"{path}: window {start_s}-{end_s} s holds no frame of {n_frames} at {fps:g} fps")
    return lo, hi


def sample_indices(n_frames: int, n_samples: int, mode: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """ViCLIP's frame sampling: split the clip into `n_samples` equal segments.

    mode "middle" takes each segment's centre frame (evaluation); "random"
    takes a uniformly random frame inside each segment (training). Short clips
    repeat frames rather than fail.
    """
    edges = np.linspace(0, n_frames, n_samples + 1)
    lo = np.floor(edges[:-1]).astype(int)
    hi = np.maximum(np.ceil(edges[1:]).astype(int) - 1, lo)
    if mode == "middle":
        idx = (edges[:-1] + edges[1:]) / 2
        return np.minimum(np.floor(idx).astype(int), n_frames - 1)
    if mode == "random":
        if rng is None:
            raise ValueError("random sampling needs a seeded generator")
        return np.minimum(rng.integers(lo, hi + 1), n_frames - 1)
    raise ValueError(f"unknown sampling mode {mode!r}")


def view_indices(n_frames: int, n_samples: int, n_views: int) -> np.ndarray:
    """[n_views, n_samples] frame indices for multi-view testing.

    View k takes the point (k+1)/(n_views+1) of the way through each of the
    `n_samples` segments, as the sparse-sampling Kinetics loaders of
    UMT/VideoMAE-v2 place test clips; one view is the segment middles.
    """
    if n_views == 1:
        return sample_indices(n_frames, n_samples, "middle")[None]
    edges = np.linspace(0, n_frames, n_samples + 1)
    frac = np.arange(1, n_views + 1)[:, None] / (n_views + 1)
    idx = np.floor(edges[None, :-1] + frac * (edges[1:] - edges[:-1])[None]).astype(int)
    return np.minimum(idx, n_frames - 1)
