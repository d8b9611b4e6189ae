"""ViCLIP's random token masking, as in the official `mask_tokens`.

Tokens are dropped, not replaced; every sample keeps the same count; kept
tokens stay in ascending original order.
"""

from __future__ import annotations

import torch


def random_keep_indices(
    batch: int, n_tokens: int, ratio: float, generator: torch.Generator | None, device=None
) -> torch.Tensor:
    """[B, kept] indices of kept tokens, sorted ascending."""
    n_drop = int(ratio * n_tokens)
    # Drawn on the CPU whatever the device, so a seed gives the same tokens on CPU and GPU.
    noise = torch.rand(batch, n_tokens, generator=generator)
    return noise.argsort(dim=1)[:, n_drop:].sort(dim=1).values.to(device)


def gather_tokens(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """x: [B, L, W], keep: [B, K] -> [B, K, W]."""
    return x.gather(1, keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
