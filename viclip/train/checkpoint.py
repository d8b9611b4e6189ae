"""Checkpoints: written atomically and durably, read with weights_only=True.

`checkpoint.pt` holds only what training computed (weights, config, seed,
the run's shape); wall-clock timings go to the run's `log.jsonl`. The file
is written through a file object, so torch names its inner archive
`archive/` rather than after the random temp file: a deterministic run gives
a byte-identical checkpoint, and records that carry its sha256 agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from viclip.io import atomic_path, file_sha256
from viclip.model.checkpoints import load_released, load_torch
from viclip.model.viclip import ViCLIP, ViCLIPConfig


def write_torch(obj: Any, path: str | Path) -> None:
    """torch.save `obj` to `path`: same bytes for the same object, synced to disk before the rename.

    The sync matters after a node crash: a renamed file whose data never
    reached the disk would read back truncated.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
    try:  # the rename itself: sync the directory entry too (not every filesystem allows it)
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(path: str | Path, model: ViCLIP, **extra) -> None:
    write_torch({"model": model.state_dict(), "config": model.cfg.to_dict(), **extra}, path)


def import_released(source: str | Path, model: Mapping, out: str | Path, *, seed: int, key: str | None = None) -> dict:
    """Write released ViCLIP weights `source` as one of our checkpoints at `out`, for a model of config `model`.

    The result is what a pretraining run of that config writes (model, config,
    seed), so evaluation and fine-tuning read it unchanged; `released` says
    where the weights came from. Errors name `source` and `key` (viclip.model.checkpoints.load_released);
    nothing is written unless the whole file loads. Returns the `released` entry.
    """
    loaded, report = load_released(source, model, key)
    released = {"path": str(source), "sha256": file_sha256(source), "tensors": report["tensors"]}
    released["adapted"] = report["adapted"]
    save(out, loaded, seed=seed, released=released)
    return released


def load_model(path: str | Path, key: str | None = None) -> tuple[ViCLIP, dict]:
    """Rebuild a model from one of our checkpoints; errors name the file (and `key`, the config key naming it)."""
    path = Path(path)
    where = f"{key}: {path}" if key else str(path)
    try:
        ckpt = load_torch(path, key)
    except OSError as exc:
        raise ValueError(f"{where}: cannot read the checkpoint ({type(exc).__name__}: {exc.strerror or exc})") from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f"{where}: not one of our checkpoints (a {type(ckpt).__name__}, not a dict)")
    for entry in ("model", "config"):
        if entry not in ckpt:
            raise ValueError(f"{where}: checkpoint has no '{entry}' entry")
    model = ViCLIP(ViCLIPConfig.from_dict(ckpt["config"]))
    missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
    if missing or unexpected:
        raise ValueError(f"{where}: checkpoint does not match its config: missing {missing}, unexpected {unexpected}")
    return model, ckpt
