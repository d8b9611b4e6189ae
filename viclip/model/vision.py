"""ViCLIP's video tower: a CLIP ViT with joint space-time attention over T frames.

Per frame: a (1, p, p) Conv3d patchify, a class token and CLIP's spatial
positions. Then one class token for the clip, a zero-initialised temporal
position per frame on the patch tokens, optional random token dropping, and
one transformer over all remaining tokens (viclip_spec.md §1.2).
"""

from __future__ import annotations

import torch
from torch import nn

from viclip.model.blocks import Transformer, init_transformer
from viclip.model.masking import gather_tokens, random_keep_indices


class VisionTransformer(nn.Module):
    def __init__(self, image_size: int, patch_size: int, width: int, layers: int, heads: int,
                 output_dim: int, num_frames: int, drop_path: float = 0.0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.patch_size, self.num_frames = patch_size, num_frames
        self.grid = image_size // patch_size
        self.conv1 = nn.Conv3d(3, width, kernel_size=(1, patch_size, patch_size), stride=(1, patch_size, patch_size), bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(self.grid**2 + 1, width))
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, num_frames, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, drop_path)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))
        init_transformer(self.transformer, width)

    def tokens(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedded tokens before masking: class token [B, 1, W] and patches [B, N*T, W] in (n t) order."""
        if video.ndim == 4:  # an image: one frame
            video = video.unsqueeze(1)
        b, t = video.shape[:2]
        x = self.conv1(video.permute(0, 2, 1, 3, 4))  # [B, W, T, h, w]
        w = x.shape[1]
        x = x.permute(0, 2, 3, 4, 1).reshape(b * t, -1, w)  # [B*T, N, W]
        cls = (self.class_embedding + self.positional_embedding[0]).to(x.dtype)
        patches = x + self.positional_embedding[1:].to(x.dtype)
        patches = patches.view(b, t, -1, w)
        if t == 1:
            temporal = self.temporal_positional_embedding.mean(1, keepdim=True)
        else:
            temporal = self.temporal_positional_embedding[:, :t]
        patches = patches + temporal.unsqueeze(2).to(x.dtype)  # [B, T, N, W]
        patches = patches.permute(0, 2, 1, 3).reshape(b, -1, w)  # (n t): a position's frames are adjacent
        return cls.expand(b, 1, w), patches

    def forward(self, video: torch.Tensor, mask_ratio: float = 0.0, keep: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """video: [B, T, 3, H, W] (or [B, 3, H, W]) -> [B, output_dim].

        The caller chooses masking: `mask_ratio` draws kept tokens from
        `generator`; `keep` gives them explicitly. Ratio 0 gathers nothing.
        """
        cls, patches = self.tokens(video)
        if keep is None and mask_ratio > 0.0:
            keep = random_keep_indices(patches.shape[0], patches.shape[1], mask_ratio, generator, patches.device)
        if keep is not None:
            patches = gather_tokens(patches, keep)
        x = self.ln_pre(torch.cat([cls, patches], dim=1))
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0]) @ self.proj
