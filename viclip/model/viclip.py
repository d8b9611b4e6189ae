"""ViCLIP: a video tower and a text tower trained with symmetric InfoNCE.

Architecture choices (viclip_spec.md §1):
- one class token per clip, spatial positions shared by frames, temporal
  positions zero-initialised and added to patch tokens only;
- joint attention over all space-time tokens; random token dropping chosen
  by the caller (pretraining) and never at evaluation;
- a learnable temperature `temp` (not CLIP's logit scale), clamped from
  below before every use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from viclip.model.text import TextTransformer
from viclip.model.vision import VisionTransformer


@dataclass(frozen=True)
class ViCLIPConfig:
    image_size: int = 224
    patch_size: int = 16
    num_frames: int = 8
    vision_width: int = 768
    vision_layers: int = 12
    vision_heads: int = 12
    embed_dim: int = 512
    drop_path: float = 0.1
    vocab_size: int = 49408
    context_length: int = 32
    text_width: int = 512
    text_layers: int = 12
    text_heads: int = 8
    tokenizer: str = "clip_bpe"
    temp_init: float = 0.01
    temp_min: float = 0.01
    freeze_text: bool = True
    grad_checkpointing: bool = False
    init: str = "random"  # "clip": copy the towers of an open_clip CLIP model first
    clip_name: str = ""  # open_clip model name, e.g. "ViT-B-16-quickgelu"
    clip_pretrained: str = ""  # a local weights file, or an open_clip tag where the hub is reachable
    kernels: str = "auto"  # auto: Triton on CUDA, torch elsewhere (viclip.kernels.dispatch)

    @staticmethod
    def from_dict(d: dict) -> "ViCLIPConfig":
        known = {f.name for f in fields(ViCLIPConfig)}
        unknown = set(d) - known - {"name"}
        if unknown:
            raise ValueError(f"model: unknown keys {sorted(unknown)}")
        base = PRESETS.get(d.get("name", ""), {})
        return ViCLIPConfig(**{**base, **{k: v for k, v in d.items() if k in known}})

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    # OpenAI CLIP weights use QuickGELU, as ViCLIP does: hence the -quickgelu names.
    "viclip-b16": dict(patch_size=16, vision_width=768, vision_layers=12, vision_heads=12, embed_dim=512,
                       text_width=512, text_layers=12, text_heads=8, init="clip", clip_name="ViT-B-16-quickgelu"),
    "viclip-l14": dict(patch_size=14, vision_width=1024, vision_layers=24, vision_heads=16, embed_dim=768,
                       text_width=768, text_layers=12, text_heads=12, init="clip", clip_name="ViT-L-14-quickgelu",
                       grad_checkpointing=True),
}


class ViCLIP(nn.Module):
    def __init__(self, cfg: ViCLIPConfig):
        super().__init__()
        self.cfg = cfg
        self.temp = nn.Parameter(torch.tensor(cfg.temp_init))
        self.vision_encoder = VisionTransformer(cfg.image_size, cfg.patch_size, cfg.vision_width, cfg.vision_layers,
                                                cfg.vision_heads, cfg.embed_dim, cfg.num_frames, cfg.drop_path,
                                                cfg.kernels)
        self.text_encoder = TextTransformer(cfg.vocab_size, cfg.context_length, cfg.text_width, cfg.text_layers,
                                            cfg.text_heads, cfg.embed_dim)
        if cfg.freeze_text:
            self.text_encoder.requires_grad_(False)
        self.vision_encoder.transformer.grad_checkpointing = cfg.grad_checkpointing

    def encode_video(self, video: torch.Tensor, mask_ratio: float = 0.0, keep: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        return F.normalize(self.vision_encoder(video, mask_ratio, keep, generator), dim=-1)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_encoder(ids), dim=-1)

    def temperature(self) -> torch.Tensor:
        with torch.no_grad():
            self.temp.clamp_(min=self.cfg.temp_min)
        return self.temp

    def loss(self, video_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE over the batch, computed in fp32 (safe under bf16 autocast)."""
        logits = video_emb.float() @ text_emb.float().t() / self.temperature().float()
        target = torch.arange(logits.shape[0], device=logits.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def no_decay(name: str, p: nn.Parameter) -> bool:
    """Parameters ViCLIP trains without weight decay."""
    return p.ndim < 2 or name.endswith(".bias") or name == "temp" or any(
        k in name for k in ("positional_embedding", "class_embedding", "temporal_positional_embedding")
    )
