"""Embedding clips and texts in batches, unmasked, in fp32."""

from __future__ import annotations

import numpy as np
import torch

from viclip.data.frames import ClipSampler
from viclip.model.tokenizer import build_tokenizer
from viclip.model.viclip import ViCLIP


@torch.no_grad()
def embed_videos(model: ViCLIP, sampler: ClipSampler, batch_size: int = 64) -> torch.Tensor:
    model.eval()
    dev = next(model.parameters()).device
    out = [
        model.encode_video(sampler.batch(np.arange(i, min(i + batch_size, len(sampler))), train=False).to(dev)).cpu()
        for i in range(0, len(sampler), batch_size)
    ]
    return torch.cat(out).float()


@torch.no_grad()
def embed_texts(model: ViCLIP, tokenizer, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    model.eval()
    dev = next(model.parameters()).device
    out = [
        model.encode_text(tokenizer(texts[i : i + batch_size]).to(dev)).cpu() for i in range(0, len(texts), batch_size)
    ]
    return torch.cat(out).float()


def tokenizer_with_length(cfg, text_length: int | None = None):
    """The model's tokenizer cutting texts at `text_length` tokens (at most the model's context).

    Padding is cut too; the causal text tower pools at EOT, so texts that fit
    embed exactly as with the full context.
    """
    length = min(text_length or cfg.context_length, cfg.context_length)
    return build_tokenizer(cfg.tokenizer, cfg.vocab_size, length)
