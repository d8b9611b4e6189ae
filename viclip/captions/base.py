"""What every captioning backend implements.

InternVid's multi-scale pipeline has two kinds of model: an image captioner
(BLIP-2 for the coarse caption of the middle frame, a lighter one for every
sampled frame) and a text summariser (an LLM turning per-frame captions into
one description of what happens). Backends implement these protocols; the
variant modules (coarse, frames, summary, fused) and the shard driver only
call them, so the synthetic and the real (`hf`) backends write the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Clip:
    """A clip to caption: its id, its video file, its frame count and (synthetic only) its spec JSON.

    `start_s`/`end_s` cut a window out of a longer file (None: the whole file);
    frame indices are then counted from the window's first frame.
    """

    clip_id: str
    path: str
    n_frames: int
    spec: str | None = None
    start_s: float | None = None
    end_s: float | None = None


class ImageCaptioner(Protocol):
    # False: captions come from something other than pixels (the synthetic
    # backend reads each clip's spec), so the driver decodes nothing for it.
    needs_pixels: bool

    def fingerprint(self) -> dict:
        """Everything besides the frames that its captions depend on (model, prompt, generation settings)."""
        ...

    def caption_many(
        self, clips: list[Clip], frame_indices: list[np.ndarray], frames: list[np.ndarray] | None
    ) -> list[list[str]]:
        """One caption per requested frame of each clip; `frames[i]` is uint8 [k, H, W, 3] when pixels are needed."""
        ...


class Summarizer(Protocol):
    def fingerprint(self, task: str = "summary") -> dict:
        """What its texts depend on besides the input captions, for `task` "summary" or "fusion"."""
        ...

    def summarize_many(self, clip_ids: list[str], frame_captions: list[list[str]]) -> list[str]:
        """One description of each clip from its per-frame captions only."""
        ...

    def fuse_many(self, clip_ids: list[str], coarse: list[str], frame_captions: list[list[str]]) -> list[str]:
        """One caption of each clip from its coarse caption and its per-frame captions together."""
        ...
