"""Build captioning backends from the `captions` config block (or a rule's subset of it).

`backend: synthetic` is the synthetic world's captioner; `backend: hf` runs
the transformers models of `captions.hf` (see viclip/captions/hf.py) as
`captions.execution` says. Both write the same files.
"""

from __future__ import annotations

from viclip.captions.base import ImageCaptioner, Summarizer
from viclip.captions.settings import ExecutionSettings, ModelSettings, summarizer_settings
from viclip.captions.synthetic import SyntheticImageCaptioner, SyntheticSummarizer

BACKENDS = ("synthetic", "hf")
_ROLE = {"coarse": "coarse", "frame": "frames"}


def _check(cfg: dict) -> str:
    if cfg.get("backend") not in BACKENDS:
        raise ValueError(f"captions.backend: {cfg.get('backend')!r} is not one of {', '.join(BACKENDS)}")
    return cfg["backend"]


def _hf_block(cfg: dict, role: str) -> dict:
    block = (cfg.get("hf") or {}).get(role)
    if block is None:
        raise ValueError(f"captions.hf.{role}: missing (backend hf needs a model for it)")
    return block


def image_captioner(cfg: dict, style: str, execution: ExecutionSettings | None = None) -> ImageCaptioner:
    """style "coarse" (middle frame) or "frame" (every sampled frame)."""
    if _check(cfg) == "synthetic":
        if style == "coarse":
            return SyntheticImageCaptioner(style, cfg["noise"]["coarse"], cfg["seed"], cfg["coarse_detail"])
        return SyntheticImageCaptioner(style, cfg["noise"]["frames"], cfg["seed"])
    from viclip.captions.hf import HFImageCaptioner

    ex = execution or ExecutionSettings()
    role = _ROLE[style]
    where = f"captions.hf.{role}"
    return HFImageCaptioner(
        ModelSettings.from_config(_hf_block(cfg, role), where), ex.batch_size[role], ex.torch_device(), where
    )


def summarizer(cfg: dict, execution: ExecutionSettings | None = None) -> Summarizer:
    if _check(cfg) == "synthetic":
        return SyntheticSummarizer(cfg["noise"]["summary"], cfg["summary_keeps_colour"], cfg["seed"])
    from viclip.captions.hf import HFSummarizer

    ex = execution or ExecutionSettings()
    where = "captions.hf.summarizer"
    return HFSummarizer(
        summarizer_settings(_hf_block(cfg, "summarizer"), where), ex.batch_size["summarizer"], ex.torch_device(), where
    )
