"""Contrastive loss over the global batch, shared by pretraining and retrieval fine-tuning."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from viclip.train.distributed import Dist, gather_with_grad


def global_infonce(video: torch.Tensor, text: torch.Tensor, temp: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Symmetric InfoNCE of this rank's pairs against every pair of all ranks.

    Each rank scores its own rows against the gathered columns (open_clip's
    "local loss"): the ranks' losses average to the one-process loss on the
    whole batch, and the logits take n x N memory per rank instead of N x N.
    Computed in fp32 whatever the autocast dtype.
    """
    all_video = gather_with_grad(video, dist).float()
    all_text = gather_with_grad(text, dist).float()
    temp = temp.float()
    target = torch.arange(video.shape[0], device=video.device) + dist.rank * video.shape[0]
    per_video = video.float() @ all_text.t() / temp
    per_text = text.float() @ all_video.t() / temp
    return (F.cross_entropy(per_video, target) + F.cross_entropy(per_text, target)) / 2
