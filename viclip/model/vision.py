"""ViCLIP's video tower: a CLIP ViT with joint space-time attention over T frames.

Per frame: a (1, p, p) Conv3d patchify, a class token and CLIP's spatial
positions. Then one class token for the clip, a zero-initialised temporal
position per frame on the patch tokens, optional random token dropping, and
one transformer over all remaining tokens (viclip_spec.md §1.2).
"""

from __future__ import annotations

import torch
from torch import nn

from viclip.kernels import dispatch
from viclip.model.blocks import Transformer, init_transformer
from viclip.model.masking import random_keep_indices


class VisionTransformer(nn.Module):
    def __init__(
        self,
        image_size: int,
        patch_size: int,
        width: int,
        layers: int,
        heads: int,
        output_dim: int,
        num_frames: int,
        drop_path: float = 0.0,
        kernels: str = "torch",
    ):
        super().__init__()
        self.kernels = kernels
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.patch_size, self.num_frames = patch_size, num_frames
        self.grid = image_size // patch_size
        self.conv1 = nn.Conv3d(
            3, width, kernel_size=(1, patch_size, patch_size), stride=(1, patch_size, patch_size), bias=False
        )
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(self.grid**2 + 1, width))
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, num_frames, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, drop_path, kernels=kernels)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))
        init_transformer(self.transformer, width)

    def tokens(self, video: torch.Tensor, keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Class token [B, 1, W] and the kept patch tokens [B, K, W] (all N*T in (n t) order when keep is None)."""
        if video.ndim == 4:  # an image: one frame
            video = video.unsqueeze(1)
        patches = dispatch.patch_embed(
            video,
            keep,
            self.conv1.weight,
            self.positional_embedding[1:],
            self.temporal_positional_embedding,
            self.kernels,
        )
        cls = (self.class_embedding + self.positional_embedding[0]).to(patches.dtype)
        return cls.expand(patches.shape[0], 1, -1), patches

    def forward(
        self,
        video: torch.Tensor,
        mask_ratio: float = 0.0,
        keep: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """video: [B, T, 3, H, W] (or [B, 3, H, W]) -> [B, output_dim].

        The caller chooses masking: `mask_ratio` draws kept tokens from
        `generator`; `keep` gives them explicitly. Ratio 0 gathers nothing.
        Masking comes after both position tables, as in the official code; the
        kernel path never embeds the dropped patches at all.
        """
        frames = 1 if video.ndim == 4 else video.shape[1]
        n_tokens = frames * (video.shape[-2] // self.patch_size) * (video.shape[-1] // self.patch_size)
        if keep is None and mask_ratio > 0.0:
            keep = random_keep_indices(video.shape[0], n_tokens, mask_ratio, generator, video.device)
        cls, patches = self.tokens(video, keep)
        x = self.ln_pre(torch.cat([cls, patches], dim=1))
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0]) @ self.proj
