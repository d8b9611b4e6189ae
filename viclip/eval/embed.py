"""Embedding clips and texts in batches, unmasked, in fp32."""

from __future__ import annotations

import numpy as np
import torch

from viclip.data.frames import ClipSampler
from viclip.model.viclip import ViCLIP


@torch.no_grad()
def embed_videos(model: ViCLIP, sampler: ClipSampler, batch_size: int = 64) -> torch.Tensor:
    model.eval()
    dev = next(model.parameters()).device
    out = [model.encode_video(sampler.batch(np.arange(i, min(i + batch_size, len(sampler))), train=False).to(dev)).cpu()
           for i in range(0, len(sampler), batch_size)]
    return torch.cat(out).float()


@torch.no_grad()
def embed_texts(model: ViCLIP, tokenizer, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    model.eval()
    dev = next(model.parameters()).device
    out = [model.encode_text(tokenizer(texts[i : i + batch_size]).to(dev)).cpu() for i in range(0, len(texts), batch_size)]
    return torch.cat(out).float()
