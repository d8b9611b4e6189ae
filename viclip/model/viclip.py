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

import torch
import torch.nn.functional as F
from torch import nn

from viclip.model.config import PRESETS, ViCLIPConfig  # noqa: F401  (re-exported: the config lives without torch)
from viclip.model.text import TextTransformer
from viclip.model.vision import VisionTransformer


class ViCLIP(nn.Module):
    def __init__(self, cfg: ViCLIPConfig):
        super().__init__()
        self.cfg = cfg
        self.temp = nn.Parameter(torch.tensor(cfg.temp_init))
        self.vision_encoder = VisionTransformer(
            cfg.image_size,
            cfg.patch_size,
            cfg.vision_width,
            cfg.vision_layers,
            cfg.vision_heads,
            cfg.embed_dim,
            cfg.num_frames,
            cfg.drop_path,
            cfg.kernels,
        )
        self.text_encoder = TextTransformer(
            cfg.vocab_size, cfg.context_length, cfg.text_width, cfg.text_layers, cfg.text_heads, cfg.embed_dim
        )
        if cfg.freeze_text:
            self.text_encoder.requires_grad_(False)
        self.vision_encoder.transformer.grad_checkpointing = cfg.grad_checkpointing

    def encode_video(
        self,
        video: torch.Tensor,
        mask_ratio: float = 0.0,
        keep: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
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
    return (
        p.ndim < 2
        or name.endswith(".bias")
        or name == "temp"
        or any(k in name for k in ("positional_embedding", "class_embedding", "temporal_positional_embedding"))
    )
