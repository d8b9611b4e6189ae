"""AdamW with ViCLIP's weight-decay groups and a cosine schedule with linear warmup."""

from __future__ import annotations

import math

import torch
from torch import nn

from viclip.model.viclip import no_decay


def adamw(model: nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.98)) -> torch.optim.AdamW:
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (plain if no_decay(name, p) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas))


def cosine_lr(step: int, total: int, peak: float, warmup: int, min_ratio: float) -> float:
    """Warmup from min_ratio*peak to peak, then cosine down to min_ratio*peak (ViCLIP's scheduler)."""
    floor = peak * min_ratio
    if step < warmup:
        return floor + (peak - floor) * step / max(warmup, 1)
    progress = (step - warmup) / max(total - warmup, 1)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
