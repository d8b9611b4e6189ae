"""Decoded-frame caches: a dataset's clips decoded once into one uint8 array.

A dataset's mp4s are decoded once (decord) into one uint8 array
[N, F, H, W, 3]; training then samples from it every epoch
(viclip.data.frames). This trades disk for the decoder start-up cost per
clip, which dominates for tiny clips. For real benchmarks,
`decode_all(size=, num_frames=)` keeps only the evaluation frames, already
through the test transform, so clips of any size share one cache and give
the same model input as `VideoClipSource` decoding on the fly.

Only that evaluation path needs torch, so it is imported there: the decode
jobs of the synthetic world are spared its start-up.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from viclip.data.video import VideoError, read_frames
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
            from viclip.data.loader import decode_eval_frames  # torch: only for the test transform

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
