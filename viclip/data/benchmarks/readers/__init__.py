"""Readers that turn a user's local copy of a public benchmark into the standard manifest.

One module per benchmark family; `READERS` maps a reader name to its read
function `(annotations, splits, **options) -> Listing`. `prepare` runs a
reader, finds the videos and returns manifest, meta and the missing-video ledger.

Manifest columns: clip_id, path (absolute), split (train/val/test), label
(int64) or texts (every caption; for paragraph benchmarks the sentences in
temporal order), and where the benchmark defines them start_s/end_s (a window
inside the file) and sentence_times.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from viclip.data.benchmarks.readers import anet, didemo, kinetics, lsmdc, msrvtt, msvd, ssv2
from viclip.data.benchmarks.readers.common import DEFAULT_EXTENSIONS, AnnotationError, Listing, VideoIndex, build, write


def _kinetics(version: int) -> Callable[..., Listing]:
    def read(annotations: dict, splits: list[str] | None = None, *, naming: str = "clip") -> Listing:
        return kinetics.read(annotations, splits, version=version, naming=naming)

    return read


READERS: dict[str, Callable[..., Listing]] = {
    "kinetics400": _kinetics(400),
    "kinetics600": _kinetics(600),
    "kinetics700": _kinetics(700),
    "ssv2": ssv2.read,
    "msrvtt": msrvtt.read,
    "lsmdc": lsmdc.read,
    "didemo": didemo.read,
    "msvd": msvd.read,
    "anet": anet.read,
}

__all__ = ["READERS", "AnnotationError", "prepare", "write"]


def prepare(
    name: str,
    reader: str,
    annotations: dict[str, str],
    video_root: str | Path,
    splits: list[str] | None = None,
    extensions: tuple[str, ...] | list[str] = DEFAULT_EXTENSIONS,
    options: dict | None = None,
    templates: list[str] | None = None,
) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Manifest, meta.json content and missing-video ledger of benchmark `name`."""
    if reader not in READERS:
        raise ValueError(f"{name}: unknown reader {reader!r}; have {sorted(READERS)}")
    read = READERS[reader]
    try:
        inspect.signature(read).bind(annotations, splits, **(options or {}))
    except TypeError as exc:
        raise ValueError(f"{name}: reader {reader} does not take options {sorted(options or {})} ({exc})") from exc
    listing = read(annotations, splits, **(options or {}))
    manifest, meta, missing = build(name, reader, listing, VideoIndex(video_root, tuple(extensions)))
    if templates is not None:
        meta["templates"] = list(templates)
    return manifest, meta, missing
