"""What every captioning backend implements.

InternVid's multi-scale pipeline has two kinds of model: an image captioner
(BLIP-2 for the coarse caption of the middle frame, a lighter one for every
sampled frame) and a text summariser (an LLM turning per-frame captions into
one description of what happens). Backends implement these protocols; the
variant modules (coarse, frames, summary, fused) only call them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Clip:
    """A clip to caption: its id, its video file, and (synthetic only) its spec JSON."""

    clip_id: str
    path: str
    n_frames: int
    spec: str | None = None


class ImageCaptioner(Protocol):
    def caption(self, clip: Clip, frame_indices: np.ndarray) -> list[str]:
        """One caption per requested frame of the clip."""
        ...


class Summarizer(Protocol):
    def summarize(self, clip_id: str, frame_captions: list[str]) -> str:
        """One description of the whole clip from its per-frame captions only."""
        ...
