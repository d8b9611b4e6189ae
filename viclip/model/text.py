"""ViCLIP's text tower: CLIP's causal text transformer, pooled at EOT."""

from __future__ import annotations

import torch
from torch import nn

from viclip.model.blocks import LayerNormFp32, Transformer, init_transformer


class TextTransformer(nn.Module):
    def __init__(self, vocab_size: int, context_length: int, width: int, layers: int, heads: int, output_dim: int):
        super().__init__()
        self.context_length = context_length
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.transformer = Transformer(width, layers, heads, norm=LayerNormFp32)
        self.ln_final = LayerNormFp32(width)
        self.text_projection = nn.Parameter(torch.empty(width, output_dim))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=width**-0.5)
        init_transformer(self.transformer, width)
        # A plain attribute, not a buffer: official checkpoints do not hold it.
        self.attn_mask = torch.full((context_length, context_length), float("-inf")).triu_(1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: [B, context] with EOT as the largest id -> [B, output_dim]."""
        x = self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]
        mask = self.attn_mask[: ids.shape[1], : ids.shape[1]].to(x.device, x.dtype)
        x = self.transformer(x.permute(1, 0, 2), attn_mask=mask).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0], device=x.device), ids.argmax(dim=-1)] @ self.text_projection
