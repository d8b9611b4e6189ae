"""Clips decoded from video files on the fly: the clip source for real-scale training and evaluation.

`VideoClipSource` offers the interface the training loop reads from any clip
source (`ClipSampler` is the in-memory one): `len(source)` and
`source.load(idx, train, rng) -> (x [B, T, 3, S, S], used clip indices)`.

- Sampling: ViCLIP's `num_frames` equal segments of the clip (or of its
  `start_s`-`end_s` window), a random frame per segment in training, the
  centre in evaluation; `views()` adds multi-view testing.
- Transforms: viclip.data.transforms (RandomResizedCrop 0.5-1 + optional flip
  in training, full-frame resize in evaluation, ImageNet mean/std).
- Determinism: each slot of a batch gets a seed drawn from the caller's
  generator in slot order, and all of that clip's draws come from it, so a
  batch is the same whatever the worker count or thread timing.
- Bad files: a clip that raises `VideoError` is ledgered (TSV: index, path,
  error), never retried in the run, and replaced by the next clip of a seeded
  order that decodes and is not already in the batch (the official loaders
  retry with another index), so batches keep their size and training goes
  on; more than `max_fail_fraction` of the corpus failing is a `CorpusError`.

Why threads, not a torch DataLoader: decord and PyAV decode with the GIL
released (two threads decode 1.8x as many clips/s as one on 2 cores), the
loop asks for batches by index through this interface, and the set of bad
clips and the ledger are shared state that DataLoader worker processes
could not share. `prefetch()` overlaps decoding the next batch with training
on this one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from viclip.data.transforms import EVAL_RESIZE, RATIO, SCALE, eval_clip, normalize, train_clip, view_crops
from viclip.data.video import MissingVideoError, Video, VideoError, frame_window, sample_indices, view_indices

log = logging.getLogger("viclip")

LEDGER_COLUMNS = ("index", "path", "error")


class CorpusError(RuntimeError):
    """Too much of a corpus fails to decode: a wrong path or a broken download, not a stray bad file."""


class FailureLedger:
    """Append-only TSV of clips that failed to decode.

    Each line is one `os.write` on an O_APPEND descriptor, so lines from
    threads (or processes) never interleave and a killed job leaves whole
    lines; a torn tail from an earlier crash is closed off with a newline.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                os.write(fd, ("\t".join(LEDGER_COLUMNS) + "\n").encode())
            elif os.pread(fd, 1, size - 1) != b"\n":
                os.write(fd, b"\n")
        finally:
            os.close(fd)

    def add(self, index: int, path: str, error: str) -> None:
        line = "\t".join([str(index), _one_line(path), _one_line(error)[:2000]]) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def _one_line(text: str) -> str:
    return " ".join(str(text).replace("\t", " ").split())


def read_ledger(path: str | Path) -> pd.DataFrame:
    """The failures a `FailureLedger` wrote."""
    df = pd.read_csv(path, sep="\t", quoting=3, dtype={"path": str, "error": str})  # 3: QUOTE_NONE, errors hold quotes
    if list(df.columns) != list(LEDGER_COLUMNS):
        raise ValueError(f"{path}: not a failure ledger (columns {list(df.columns)}, expected {list(LEDGER_COLUMNS)})")
    return df


def with_fallback(backend: str, fallback: bool, read):
    """`read(backend)`, then `read("pyav")` if decord fails on a file that exists.

    decord 0.6.0 rejects some files PyAV decodes (measured here: frames 8, 16,
    24, 48 or 72 pixels wide fail its frame copy; MPEG-TS fails to seek).
    """
    try:
        return read(backend)
    except VideoError as first:
        if backend != "decord" or not fallback or isinstance(first, MissingVideoError):
            raise
        try:
            out = read("pyav")
        except VideoError as second:
            raise VideoError(f"{first}; PyAV fallback: {second}") from second
        log.info("decord failed, PyAV decoded it: %s", first)
        return out


def decode_eval_frames(
    path: str | Path,
    num_frames: int | None,
    size: int | None,
    eval_resize: str = "squash",
    backend: str = "decord",
    start_s: float | None = None,
    end_s: float | None = None,
    fallback: bool = True,
) -> np.ndarray:
    """uint8 [T, S, S, 3]: a clip's evaluation frames (segment middles, or all when `num_frames` is None) through the test transform."""

    def read(b: str) -> np.ndarray:
        with Video(path, b) as video:
            lo, hi = frame_window(video.n_frames, video.fps, start_s, end_s, path)
            idx = np.arange(lo, hi) if num_frames is None else lo + sample_indices(hi - lo, num_frames, "middle")
            return _get(video, idx)

    frames = with_fallback(backend, fallback, read)
    if size is None:
        return frames
    return eval_clip(torch.from_numpy(frames).permute(0, 3, 1, 2), size, eval_resize).permute(0, 2, 3, 1).numpy()


def _get(video: Video, idx: np.ndarray) -> np.ndarray:
    """Frames at `idx` (any shape, repeats allowed), each decoded once."""
    uniq, inverse = np.unique(idx, return_inverse=True)
    return video.get(uniq)[inverse.reshape(idx.shape)]


class VideoClipSource:
    """Clips of `paths`, decoded on the fly; see the module docstring.

    `start_s`/`end_s` (seconds, NaN = the file's own start/end) cut a window per
    video. `augment`/`scale`/`ratio`/`flip` are the training transform;
    `eval_resize` is "squash" (ViCLIP's test transform) or "center_crop".
    `fallback` retries a file decord rejects with PyAV before calling it bad.
    `seed` fixes the order in which replacement clips are tried.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        num_frames: int,
        image_size: int,
        *,
        augment: bool = True,
        flip: bool = False,
        scale: tuple[float, float] = SCALE,
        ratio: tuple[float, float] = RATIO,
        eval_resize: str = "squash",
        start_s: Sequence[float] | None = None,
        end_s: Sequence[float] | None = None,
        backend: str = "decord",
        workers: int = 1,
        fallback: bool = True,
        ledger: str | Path | None = None,
        max_fail_fraction: float = 0.1,
        seed: int = 0,
    ):
        self.paths = [Path(p) for p in paths]
        n = len(self.paths)
        if n == 0:
            raise ValueError("VideoClipSource: no video paths")
        if backend not in ("decord", "pyav"):
            raise ValueError(f"unknown video backend {backend!r}")
        if eval_resize not in EVAL_RESIZE:
            raise ValueError(f"unknown eval_resize {eval_resize!r}; expected one of {EVAL_RESIZE}")
        if not 0.0 <= max_fail_fraction <= 1.0:
            raise ValueError(f"max_fail_fraction must be in [0, 1], got {max_fail_fraction}")
        if workers < 1 or num_frames < 1 or image_size < 1:
            raise ValueError(
                f"workers, num_frames and image_size must be positive, got {workers}, {num_frames}, {image_size}"
            )
        if not (0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]):
            raise ValueError(f"bad crop scale {scale} or ratio {ratio}")
        self.num_frames, self.image_size = num_frames, image_size
        self.augment, self.flip, self.scale, self.ratio = augment, flip, tuple(scale), tuple(ratio)
        self.eval_resize, self.backend, self.fallback = eval_resize, backend, fallback
        self.max_fail_fraction = max_fail_fraction
        self.start_s, self.end_s = self._window(start_s, "start_s"), self._window(end_s, "end_s")
        self._order = np.random.default_rng(seed).permutation(n)
        self._pos = np.empty(n, dtype=np.int64)
        self._pos[self._order] = np.arange(n)
        self._bad: dict[int, str] = {}
        self.failures: list[dict] = []
        self._lock = threading.Lock()
        self.ledger = FailureLedger(ledger) if ledger is not None else None
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="decode") if workers > 1 else None
        self._ahead: ThreadPoolExecutor | None = None

    def _window(self, values, name: str) -> np.ndarray:
        if values is None:
            return np.full(len(self.paths), np.nan)
        out = np.asarray(values, dtype=np.float64)
        if out.shape != (len(self.paths),):
            raise ValueError(f"{name}: expected {len(self.paths)} values (one per path), got shape {out.shape}")
        return out

    @classmethod
    def from_manifest(
        cls, root: str | Path, manifest: pd.DataFrame, num_frames: int, image_size: int, **kwargs
    ) -> VideoClipSource:
        """A source over a manifest's `path` column (relative to `root`), with optional `start_s`/`end_s` windows."""
        if "path" not in manifest.columns:
            raise ValueError(f"manifest under {root}: missing column 'path'")
        for col in ("start_s", "end_s"):
            if col in manifest.columns:
                kwargs.setdefault(col, manifest[col].to_numpy(dtype=np.float64, na_value=np.nan))
        return cls([Path(root) / p for p in manifest["path"]], num_frames, image_size, **kwargs)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def n_failed(self) -> int:
        return len(self._bad)

    # ------------------------------------------------------------------ batches

    def load(
        self, idx: np.ndarray, train: bool, rng: np.random.Generator | None = None
    ) -> tuple[torch.Tensor, np.ndarray]:
        """(x [B, T, 3, S, S] normalised, the clip used in each slot)."""
        return self._finish(*self._start(idx, train, rng))

    def prefetch(self, idx: np.ndarray, train: bool, rng: np.random.Generator | None = None) -> Future:
        """`load` in the background: the seeds are drawn from `rng` now, so results equal `load`'s."""
        job = self._start(idx, train, rng)
        if self._ahead is None:
            self._ahead = ThreadPoolExecutor(1, thread_name_prefix="prefetch")
        return self._ahead.submit(self._finish, *job)

    def views(self, idx: np.ndarray, clips: int = 1, crops: int = 1) -> tuple[torch.Tensor, np.ndarray]:
        """Multi-view test input [B, clips * crops, T, 3, S, S] (clip-major), and the clips used.

        Temporal clip k takes the point (k+1)/(clips+1) of each segment; one
        crop is the eval transform, three are start/centre/end squares of the
        short-side-resized frame. 1 x 1 equals `load(idx, train=False)`.
        """
        if clips < 1 or crops < 1:
            raise ValueError(f"views need at least one clip and one crop, got {clips} x {crops}")
        idx = self._check(idx)
        return self._finish(idx, np.zeros(len(idx), dtype=np.int64), ("views", clips, crops))

    def _start(self, idx, train: bool, rng) -> tuple[np.ndarray, np.ndarray, tuple]:
        idx = self._check(idx)
        if not train:
            return idx, np.zeros(len(idx), dtype=np.int64), ("eval",)
        if rng is None:
            raise ValueError("training batches need a seeded generator (rng)")
        return idx, rng.integers(0, 2**63 - 1, size=len(idx), dtype=np.int64), ("train",)

    def _check(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        if idx.ndim != 1 or len(idx) == 0:
            raise ValueError(f"clip indices must be a non-empty 1-D array, got shape {idx.shape}")
        if idx.min() < 0 or idx.max() >= len(self):
            raise IndexError(f"clip index out of range [0, {len(self)}): {int(idx.min())}..{int(idx.max())}")
        return idx

    def _finish(self, idx: np.ndarray, seeds: np.ndarray, mode: tuple) -> tuple[torch.Tensor, np.ndarray]:
        with self._lock:
            skip = set(self._bad)  # a snapshot: whether a clip is skipped or retried-and-failed, the batch is the same
        slots = range(len(idx))
        attempt = lambda s: self._attempt(int(idx[s]), int(seeds[s]), mode, skip)
        out = list(self._pool.map(attempt, slots) if self._pool else map(attempt, slots))
        used = idx.copy()
        taken = {int(i) for i, o in zip(idx, out) if o is not None}
        for s in slots:  # replacements in slot order, so they never depend on thread timing
            if out[s] is None:
                used[s], out[s] = self._substitute(int(idx[s]), int(seeds[s]), mode, taken)
                taken.add(int(used[s]))
        return normalize(torch.stack(out)), used

    def _substitute(self, i: int, seed: int, mode: tuple, taken: set[int]) -> tuple[int, torch.Tensor]:
        """The next clip after `i` in the seeded order that decodes, preferring clips not in the batch yet."""
        n = len(self)
        for allow_taken in (False, True):
            for step in range(1, n):
                j = int(self._order[(self._pos[i] + step) % n])
                if j in self._bad or (j in taken and not allow_taken):
                    continue
                out = self._attempt(j, seed, mode, ())
                if out is not None:
                    return j, out
        raise CorpusError(
            f"no clip of {n} decodes; first failure: {self.failures[0]['error'] if self.failures else '-'}"
        )

    def _attempt(self, i: int, seed: int, mode: tuple, skip) -> torch.Tensor | None:
        if i in skip:
            return None
        try:
            return self._decode(i, seed, mode)
        except VideoError as exc:
            self._record(i, str(exc))
            return None

    def _decode(self, i: int, seed: int, mode: tuple) -> torch.Tensor:
        """uint8 [T, 3, S, S] (train, eval) or [V, T, 3, S, S] (views) for clip i."""
        frames, rng = with_fallback(self.backend, self.fallback, lambda b: self._read(i, seed, mode, b))
        if mode[0] == "train":
            return train_clip(frames, self.image_size, rng, self.augment, self.flip, self.scale, self.ratio)
        if mode[0] == "eval":
            return eval_clip(frames, self.image_size, self.eval_resize)
        return torch.cat([view_crops(frames[k], self.image_size, mode[2], self.eval_resize) for k in range(mode[1])])

    def _read(self, i: int, seed: int, mode: tuple, backend: str) -> tuple[torch.Tensor, np.random.Generator | None]:
        """Frames [..., T, 3, H, W] of clip i and the clip's generator, its frame draws already taken."""
        path, t = self.paths[i], self.num_frames
        rng = np.random.default_rng(seed) if mode[0] == "train" else None
        with Video(path, backend) as video:
            lo, hi = frame_window(video.n_frames, video.fps, self.start_s[i], self.end_s[i], path)
            if mode[0] == "train":
                idx = lo + sample_indices(hi - lo, t, "random", rng)
            elif mode[0] == "eval":
                idx = lo + sample_indices(hi - lo, t, "middle")
            else:
                idx = lo + view_indices(hi - lo, t, mode[1])
            return torch.from_numpy(_get(video, idx)).movedim(-1, -3), rng

    def _record(self, i: int, error: str) -> None:
        with self._lock:
            if i in self._bad:
                return
            self._bad[i] = error
            self.failures.append({"index": i, "path": str(self.paths[i]), "error": error})
            if self.ledger is not None:
                self.ledger.add(i, str(self.paths[i]), error)
            log.warning("clip %d skipped: %s", i, error)
            limit = self.max_fail_fraction * len(self)
            if len(self._bad) > limit:
                where = f"; ledger: {self.ledger.path}" if self.ledger is not None else ""
                raise CorpusError(
                    f"{len(self._bad)} of {len(self)} clips failed to decode, more than max_fail_fraction="
                    f"{self.max_fail_fraction} allows ({int(limit)}); first: {self.failures[0]['error']}{where}"
                )

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        for pool in (self._pool, self._ahead):
            if pool is not None:
                pool.shutdown(wait=True)
        self._pool = self._ahead = None

    def __enter__(self) -> VideoClipSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FileViews:
    """Multi-view test input read from a benchmark's video files, for views a frame cache cannot give.

    A real benchmark's cache holds only the segment-middle frames, resized:
    more temporal clips, spatial crops or another frame count come from the
    files. Every file here decoded once already (the cache lists only those),
    so a failure now is an error naming the file, never a substitute clip: an
    evaluation must score the videos it says it scores.
    """

    def __init__(self, root: str | Path, rows: pd.DataFrame, image_size: int, workers: int = 1):
        self.root, self.rows, self.image_size, self.workers = (
            Path(root),
            rows.reset_index(drop=True),
            image_size,
            workers,
        )
        self._sources: dict[int, VideoClipSource] = {}

    def views(self, idx: np.ndarray, clips: int, crops: int, num_frames: int) -> torch.Tensor:
        if num_frames not in self._sources:
            self._sources[num_frames] = VideoClipSource.from_manifest(
                self.root,
                self.rows,
                num_frames,
                self.image_size,
                augment=False,
                workers=self.workers,
                max_fail_fraction=1.0,
            )
        x, used = self._sources[num_frames].views(np.asarray(idx), clips, crops)
        bad = [int(i) for i, u in zip(idx, used) if i != u]
        if bad:
            raise VideoError(
                f"{self.root / str(self.rows['path'].iloc[bad[0]])}: failed to decode for multi-view "
                f"testing though it decoded for the cache ({len(bad)} such videos in this batch)"
            )
        return x
