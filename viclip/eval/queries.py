"""Text queries of a retrieval benchmark: one per caption, or one paragraph per video.

Paragraph benchmarks (DiDeMo, ActivityNet Captions; meta.json `paragraph:
true`) store each video's sentences in temporal order. "paragraph" mode joins
them with single spaces into one query per video, as CLIP4Clip's DiDeMo
loader and ViCLIP's `is_paragraph_retrieval` do; "sentence" mode keeps each
sentence as its own query for the whole video, which is what ViCLIP's
zero-shot configs run (viclip_spec.md §5.2). Other benchmarks ignore the mode:
MSVD's captions are never joined (evaluation_protocols.md §4).
"""

from __future__ import annotations

MODES = ("paragraph", "sentence")


def video_queries(texts: list[list[str]], paragraph: bool, mode: str) -> list[list[str]]:
    """Per-video query lists for `mode`."""
    if mode not in MODES:
        raise ValueError(f"query mode must be one of {MODES}, got {mode!r}")
    if paragraph and mode == "paragraph":
        return [[" ".join(s.strip() for s in ts)] if ts else [] for ts in texts]
    return [list(ts) for ts in texts]


def flatten_texts(texts: list[list[str]]) -> tuple[list[str], list[int]]:
    """All queries in video order and the video of each; every video needs one."""
    flat, owner = [], []
    for v, ts in enumerate(texts):
        if len(ts) == 0:
            raise ValueError(f"video {v} has no text query")
        flat.extend(ts)
        owner.extend([v] * len(ts))
    return flat, owner
