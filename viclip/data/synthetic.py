"""Render synthetic datasets to real mp4 files with a manifest.

The pretraining corpus draws (colour, shape) pairs that are *not* held out;
benchmark stand-ins draw only held-out pairs and use their own seeds, so
zero-shot evaluation sees attribute combinations pretraining never showed.
"""

from __future__ import annotations

import itertools
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from viclip.data.render import render_clip
from viclip.data.video import write_mp4
from viclip.data.world import COLOURS, SHAPES, ClipSpec, heldout_pairs, sample_spec
from viclip.io import atomic_parquet
from viclip.progress import progress


def pair_pool(world: dict, heldout: bool) -> list[tuple[str, str]]:
    held = heldout_pairs(world["heldout_fraction"], world["seed"])
    pairs = sorted(itertools.product(COLOURS, SHAPES))
    return [p for p in pairs if (p in held) == heldout]


def sub_seed(seed: int, name: str) -> int:
    """A child seed for a named stream, stable across Python runs (no hash())."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**32)


def sample_specs(
    n: int,
    seed: int,
    prefix: str,
    pairs: list[tuple[str, str]],
    n_events: int,
    frames_per_event: int,
    events: list[tuple[str, ...]] | None = None,
) -> list[ClipSpec]:
    rng = np.random.default_rng(seed)
    return [
        sample_spec(rng, f"{prefix}{i:05d}", n_events, frames_per_event, pairs, None if events is None else events[i])
        for i in range(n)
    ]


def render_dataset(specs: list[ClipSpec], out_dir: str | Path, world: dict, desc: str = "render") -> pd.DataFrame:
    """Write `videos/{clip_id}.mp4` for each spec; return the manifest rows."""
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in progress(specs, desc=desc, mininterval=2.0):
        rel = f"videos/{spec.clip_id}.mp4"
        write_mp4(out_dir / rel, render_clip(spec, world["frame_size"], world["pixel_noise"]), fps=world["fps"])
        rows.append({"clip_id": spec.clip_id, "path": rel, "n_frames": spec.n_frames, "spec": spec.to_json()})
    return pd.DataFrame(rows)


def render_corpus(world: dict, corpus: dict, out_dir: str | Path) -> Path:
    """The pretraining corpus: `clips.parquet` plus `videos/`."""
    specs = sample_specs(
        corpus["n_clips"],
        sub_seed(corpus["seed"], "corpus"),
        "clip",
        pair_pool(world, heldout=False),
        corpus["events_per_clip"],
        corpus["frames_per_event"],
    )
    manifest = render_dataset(specs, out_dir, world, desc="corpus")
    out = Path(out_dir) / "clips.parquet"
    atomic_parquet(manifest, out)
    return out
