"""The model a run starts from, rebuilt the same way wherever it is needed.

Pretraining starts from it; WiSE-FT evaluation averages towards it. Random
inits are seeded, CLIP inits are read from the configured weights, so both
jobs get the identical starting point without storing it.
"""

from __future__ import annotations

import logging
import pickle

import torch

from viclip.model.viclip import ViCLIP, ViCLIPConfig

log = logging.getLogger("viclip")


def initial_model(cfg: ViCLIPConfig, seed: int) -> ViCLIP:
    torch.manual_seed(seed)
    model = ViCLIP(cfg)
    if cfg.init == "random":
        return model
    if cfg.init == "clip":
        if not cfg.clip_name or not cfg.clip_pretrained:
            raise ValueError(
                "model.init is 'clip': set model.clip_name (open_clip name) and model.clip_pretrained "
                "(a local weights file, or an open_clip tag where the hub is reachable)"
            )
        from viclip.model.clip_init import build_open_clip, init_from_open_clip

        try:
            clip = build_open_clip(cfg.clip_name, cfg.clip_pretrained)
        except FileNotFoundError as e:
            if str(e).startswith("model.clip_name"):  # a missing model config JSON names its key already
                raise
            raise FileNotFoundError(f"model.clip_pretrained: {e}") from e
        except pickle.UnpicklingError as e:  # open_clip's torch.load(weights_only=True) refused or could not read it
            from viclip.model.checkpoints import refused

            raise refused(cfg.clip_pretrained, "model.clip_pretrained", e) from None
        report = init_from_open_clip(model, clip)
        log.info(
            "initialised from %s (%s); not from CLIP: %s", cfg.clip_name, cfg.clip_pretrained, report["not_initialised"]
        )
        return model
    raise ValueError(f"model.init: unknown init {cfg.init!r} (known: random, clip)")
