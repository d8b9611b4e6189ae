"""Checkpoints: written atomically, read with weights_only=True."""

from __future__ import annotations

from pathlib import Path

import torch

from viclip.io import atomic_torch
from viclip.model.viclip import ViCLIP, ViCLIPConfig


def save(path: str | Path, model: ViCLIP, **extra) -> None:
    atomic_torch({"model": model.state_dict(), "config": model.cfg.to_dict(), **extra}, path)


def load_model(path: str | Path) -> tuple[ViCLIP, dict]:
    """Rebuild a model from one of our checkpoints; errors name the file."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    for key in ("model", "config"):
        if key not in ckpt:
            raise ValueError(f"{path}: checkpoint has no '{key}' entry")
    model = ViCLIP(ViCLIPConfig.from_dict(ckpt["config"]))
    missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: checkpoint does not match its config: missing {missing}, unexpected {unexpected}")
    return model, ckpt
