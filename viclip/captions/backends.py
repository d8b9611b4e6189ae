"""Build captioning backends from the `captions` config block."""

from __future__ import annotations

from viclip.captions.base import ImageCaptioner, Summarizer
from viclip.captions.synthetic import SyntheticImageCaptioner, SyntheticSummarizer


def image_captioner(cfg: dict, style: str) -> ImageCaptioner:
    if cfg["backend"] == "synthetic":
        return SyntheticImageCaptioner(style, cfg["noise"]["coarse" if style == "coarse" else "frames"], cfg["seed"])
    raise ValueError(f"captions.backend: {cfg['backend']!r} has no image captioner yet (known: synthetic)")


def summarizer(cfg: dict) -> Summarizer:
    if cfg["backend"] == "synthetic":
        return SyntheticSummarizer(cfg["noise"]["summary"], cfg["summary_keeps_colour"], cfg["seed"])
    raise ValueError(f"captions.backend: {cfg['backend']!r} has no summarizer yet (known: synthetic)")
