"""CLIP's pre-LN transformer block, with ViCLIP's parameter names.

Names (`attn.in_proj_weight`, `ln_1`, `mlp.c_fc`, `mlp.c_proj`, `ln_2`)
match the official checkpoints so loading them is a key-for-key copy.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from viclip.kernels import dispatch


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class LayerNormFp32(nn.LayerNorm):
    """CLIP's text LayerNorm: compute in fp32 whatever the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample while training."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty(x.shape[0], *([1] * (x.ndim - 1))).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, drop_path: float = 0.0, norm=nn.LayerNorm, kernels: str = "torch"):
        super().__init__()
        self.kernels = kernels
        # Kept as nn.MultiheadAttention for its parameter names (in_proj_weight,
        # out_proj), which official checkpoints use; `_attention` runs it.
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = norm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                c_fc=nn.Linear(width, 4 * width),
                gelu=QuickGELU(),
                drop1=nn.Dropout(0.0),
                c_proj=nn.Linear(4 * width, width),
                drop2=nn.Dropout(0.0),
            )
        )
        self.ln_2 = norm(width)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: [L, B, W] (sequence first, as nn.MultiheadAttention and CLIP use)
        x = x + self.drop_path(self._attention(self.ln_1(x), attn_mask))
        return x + self.drop_path(self.mlp(self.ln_2(x)))

    def _attention(self, h: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """Multi-head self-attention with nn.MultiheadAttention's weights, through the kernel dispatch."""
        n, b, w = h.shape
        heads = self.attn.num_heads
        qkv = F.linear(h, self.attn.in_proj_weight, self.attn.in_proj_bias)  # [N, B, 3W]
        q, k, v = qkv.view(n, b, 3, heads, w // heads).permute(2, 1, 3, 0, 4).unbind(0)  # each [B, H, N, D]
        out = dispatch.attention(q, k, v, self.kernels, attn_mask)
        out = out.permute(2, 0, 1, 3).reshape(n, b, w)
        return F.linear(out, self.attn.out_proj.weight, self.attn.out_proj.bias)


class Transformer(nn.Module):
    def __init__(
        self, width: int, layers: int, heads: int, drop_path: float = 0.0, norm=nn.LayerNorm, kernels: str = "torch"
    ):
        super().__init__()
        rates = [drop_path * i / max(layers - 1, 1) for i in range(layers)]  # rises linearly from 0
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, r, norm, kernels) for r in rates])
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.resblocks:
            if self.grad_checkpointing and self.training:
                x = checkpoint(block, x, attn_mask, use_reentrant=False)
            else:
                x = block(x, attn_mask)
        return x


def init_transformer(t: Transformer, width: int) -> None:
    """CLIP's initialisation of a block stack."""
    layers = len(t.resblocks)
    proj_std = width**-0.5 * (2 * layers) ** -0.5
    attn_std = width**-0.5
    fc_std = (2 * width) ** -0.5
    for block in t.resblocks:
        nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
        nn.init.zeros_(block.attn.in_proj_bias)
        nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
        nn.init.zeros_(block.attn.out_proj.bias)
        nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
        nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
