"""Video files: writing mp4 (PyAV), decoding (decord, PyAV fallback), frame sampling.

Synthetic clips and real InternVid clips go through the same `read_frames`,
so the embedded default exercises the decoder real data will use.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class VideoError(RuntimeError):
    """A video file that cannot be decoded; the message names the file."""


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


def read_frames(path: str | Path, indices: np.ndarray | None = None, backend: str = "decord") -> np.ndarray:
    """Decode frames `indices` (all when None) as [T, H, W, 3] uint8.

    Any decoder failure becomes a `VideoError` naming the file, so one broken
    clip in a corpus can be ledgered instead of crashing a job.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise VideoError(f"{path}: missing or empty video file")
    if backend == "decord":
        vr = _decord_reader(path)
        idx = np.arange(len(vr)) if indices is None else np.asarray(indices)
        if len(vr) == 0 or (len(idx) and idx.max() >= len(vr)):
            raise VideoError(f"{path}: has {len(vr)} frames, asked for index {int(idx.max()) if len(idx) else 0}")
        try:
            return vr.get_batch(idx.tolist()).asnumpy()
        except Exception as exc:
            raise VideoError(f"{path}: decoding failed ({type(exc).__name__}: {exc})") from exc
    if backend == "pyav":
        return _read_pyav(path, indices)
    raise ValueError(f"unknown video backend {backend!r}")


def _read_pyav(path: Path, indices: np.ndarray | None) -> np.ndarray:
    import av

    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except Exception as exc:
        raise VideoError(f"{path}: decoding failed ({type(exc).__name__}: {exc})") from exc
    if not frames:
        raise VideoError(f"{path}: no frames")
    arr = np.stack(frames)
    if indices is None:
        return arr
    idx = np.asarray(indices)
    if len(idx) and (idx.max() >= len(arr) or idx.min() < 0):
        raise VideoError(f"{path}: has {len(arr)} frames, asked for index {int(idx.max())}")
    return arr[idx]


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
