"""WiSE-FT: evaluate a weighted average of the initial and the trained weights.

The paper's zero-shot numbers come from `*_wiseft05.sh` runs: 0.5 x the ViCLIP
checkpoint + 0.5 x the CLIP model it started from, for every shared tensor
except the temporal position table, which CLIP does not have and which is
taken from the checkpoint as is (viclip_spec.md §3.4).

The weight is `evaluate.wise_ft_alpha`. Averaging only makes sense towards a
meaningful init: a CLIP-initialised model (the paper's 0.5) keeps some of
CLIP's zero-shot robustness; a model trained from scratch would be averaged
with random weights, so the embedded tiny default uses 1.0 (no averaging).
"""

from __future__ import annotations

import torch

KEEP_TRAINED = ("vision_encoder.temporal_positional_embedding",)


def interpolate(
    init: dict[str, torch.Tensor], trained: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """alpha * trained + (1 - alpha) * init; alpha = 1 gives the trained weights, 0 the init."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"WiSE-FT alpha must be in [0, 1], got {alpha}")
    if init.keys() != trained.keys():
        raise ValueError(f"WiSE-FT: the two state dicts differ in keys: {sorted(init.keys() ^ trained.keys())}")
    out = {}
    for key, t in trained.items():
        if key in KEEP_TRAINED or alpha == 1.0 or not t.is_floating_point():
            out[key] = t.clone()
        elif alpha == 0.0:
            out[key] = init[key].clone()
        else:
            out[key] = torch.lerp(init[key].to(t.dtype), t, alpha)
    return out


def init_source(cfg, seed: int) -> str:
    """What the interpolation averages towards, for the record."""
    if cfg.init == "clip":
        return f"clip:{cfg.clip_name}:{cfg.clip_pretrained or '-'}"
    return f"random init, seed {seed}"
