"""Zero-shot classification: class prompts become a classifier, videos are ranked against it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from viclip.eval.metrics import topk_accuracy


def class_scores(video_emb: torch.Tensor, prompt_emb: torch.Tensor, ensemble: str) -> torch.Tensor:
    """video_emb: [V, D] normalised; prompt_emb: [C, P, D] normalised -> [V, C].

    "clip": average the prompt embeddings, re-normalise, then cosine (CLIP,
    open_clip, clip_benchmark). "viclip": average the cosines over prompts
    with no re-normalisation (ViCLIP's `get_sim`).
    """
    if ensemble == "clip":
        return video_emb @ F.normalize(prompt_emb.mean(1), dim=-1).t()
    if ensemble == "viclip":
        return torch.einsum("vd,cpd->vcp", video_emb, prompt_emb).mean(-1)
    raise ValueError(f"unknown prompt ensembling {ensemble!r} (known: clip, viclip)")


def prompts(classes: list[str], templates: list[str]) -> list[str]:
    """Class-major list: all templates of class 0, then class 1, ..."""
    return [t.format(c) for c in classes for t in templates]


def zero_shot_accuracy(video_emb: torch.Tensor, prompt_emb: torch.Tensor, labels: torch.Tensor, ensemble: str) -> dict:
    return topk_accuracy(class_scores(video_emb, prompt_emb, ensemble), labels)
