"""A sample sheet per shard: a few clips' frames beside their captions, as one image.

Each clip gets a row of thumbnails (its middle frame, which the coarse
caption describes, then the frames the frame captioner saw, each titled
with its caption) and below them the coarse, summary and fused captions.
Clips are evenly spaced over the shard, so the sheet needs no seed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from viclip.captions.base import Clip
from viclip.captions.coarse import middle_frame
from viclip.captions.decode import clip_frames
from viclip.io import atomic_path


def sample_positions(n: int, k: int) -> list[int]:
    return sorted(set(np.linspace(0, n - 1, min(k, n)).round().astype(int).tolist())) if n else []


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) or "(empty)"


def render_sheet(
    clips: list[Clip], variants: dict[str, pd.DataFrame], out: str | Path, n_clips: int = 6, title: str = ""
) -> list[str]:
    """Write the sheet (png) and return the ids of the clips it shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_id = {name: df.set_index("clip_id") for name, df in variants.items()}
    shown = [clips[i] for i in sample_positions(len(clips), n_clips)]
    k = max((len(by_id["frames"].loc[c.clip_id, "frame_indices"]) for c in shown), default=1)
    cols = k + 1
    fig = plt.figure(figsize=(1.9 * cols, 3.1 * max(len(shown), 1)))
    grid = fig.add_gridspec(2 * max(len(shown), 1), cols, height_ratios=[1.9, 1.2] * max(len(shown), 1))
    for r, clip in enumerate(shown):
        idx = [int(i) for i in by_id["frames"].loc[clip.clip_id, "frame_indices"]]
        frame_caps = list(by_id["frames"].loc[clip.clip_id, "captions"])
        mid = int(middle_frame(clip.n_frames)[0])
        frames = clip_frames(clip, np.array([mid, *idx]))
        titles = [f"middle frame {mid}"] + [f"{i}: {t}" for i, t in zip(idx, frame_caps)]
        for c, (img, t) in enumerate(zip(frames, titles)):
            ax = fig.add_subplot(grid[2 * r, c])
            ax.imshow(img, interpolation="nearest")
            ax.set_title(_wrap(t, 28), fontsize=6, loc="left")
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                for side in ax.spines.values():
                    side.set_edgecolor("tab:red"), side.set_linewidth(2)
        ax = fig.add_subplot(grid[2 * r + 1, :])
        ax.axis("off")
        lines = [f"{clip.clip_id}"] + [
            f"{name}: {by_id[name].loc[clip.clip_id, 'caption']}"
            for name in ("coarse", "summary", "fused")
            if name in by_id
        ]
        ax.text(0, 1, "\n".join(_wrap(line, 30 * cols) for line in lines), fontsize=7, va="top", family="monospace")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.99 if title else 1))
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return [c.clip_id for c in shown]
