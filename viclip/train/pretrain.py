"""Contrastive pretraining: a (masked) stage, then a short unmasked tuning stage.

The baseline drops 90% of video tokens in the first stage; the no-mask arm
runs the identical schedule with ratio 0, so the arms differ in masking only.
Progress is saved after every epoch (`resume.pt`); a restarted job picks up
there with the same random streams, so an interrupted run ends bit-identical
to an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from viclip.data.frames import ClipSampler
from viclip.io import atomic_torch
from viclip.runtime import device
from viclip.model.factory import initial_model
from viclip.model.viclip import ViCLIPConfig
from viclip.train import checkpoint
from viclip.train.optim import adamw, cosine_lr, set_lr


@dataclass(frozen=True)
class Stage:
    name: str
    epochs: float  # fractional epochs subsample the data, as the official code does
    mask_ratio: float
    lr: float


def stages(train: dict, mask_ratio: float) -> list[Stage]:
    out = [Stage("masked" if mask_ratio > 0 else "unmasked", train["epochs"], mask_ratio, train["lr"])]
    if train["tune_epochs"] > 0:
        out.append(Stage("tune", train["tune_epochs"], 0.0, train["tune_lr"]))
    return out


def optimizer_to(optimizer: torch.optim.Optimizer, dev: torch.device) -> None:
    for state in optimizer.state.values():
        for k, v in state.items():
            if torch.is_tensor(v) and k != "step":
                state[k] = v.to(dev)


def epoch_steps(n_clips: int, epochs: float, batch_size: int) -> list[int]:
    """Optimizer steps of each epoch: whole epochs, then a subsampled fractional one.

    The official code trains "0.5 epoch" as one pass over a random half of the
    data; 2.5 epochs are two full passes and one such half pass.
    """
    fractions = [1.0] * int(epochs)
    if epochs - int(epochs) > 1e-9:
        fractions.append(epochs - int(epochs))
    return [max(int(round(n_clips * f)) // batch_size, 1) for f in fractions]


def pretrain(model_cfg: ViCLIPConfig, train: dict, mask_ratio: float, sampler: ClipSampler, tokens: torch.Tensor,
             seed: int, out_dir: str | Path, log_path: str | Path) -> dict:
    """Train and write `checkpoint.pt` in out_dir; return a summary of the run."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = initial_model(model_cfg, seed)
    dev = device()
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=train.get("precision", "fp32") == "bf16")
    rng = np.random.default_rng(seed)
    mask_gen = torch.Generator().manual_seed(seed + 1)
    plan = stages(train, mask_ratio)
    start = {"stage": 0, "epoch": 0, "seconds": 0.0}
    resume_path = out_dir / "resume.pt"
    # A resume point only counts for the very same run; any change starts over.
    fingerprint = json.dumps([model_cfg.to_dict(), train, mask_ratio, seed, len(sampler), int(tokens.sum())], sort_keys=True)
    optimizer = None
    state = torch.load(resume_path, map_location="cpu", weights_only=True) if resume_path.exists() else None
    if state is not None and state.get("fingerprint") != fingerprint:
        state = None
    if state is not None:
        model.load_state_dict(state["model"])
        rng.bit_generator.state = state["rng"]
        mask_gen.set_state(state["mask_gen"])
        torch.set_rng_state(state["torch_rng"])
        start = state["position"]
    model.to(dev)
    if state is not None and state["optimizer"] is not None:
        # None: the saved epoch closed a stage, and the next one starts afresh.
        optimizer = adamw(model, plan[start["stage"]].lr, train["weight_decay"], train["betas"])
        optimizer.load_state_dict(state["optimizer"])
        optimizer_to(optimizer, dev)
    log = open(log_path, "a")
    elapsed = start["seconds"]
    for si in range(start["stage"], len(plan)):
        stage = plan[si]
        if optimizer is None:
            optimizer = adamw(model, stage.lr, train["weight_decay"], train["betas"])
        steps = epoch_steps(len(sampler), stage.epochs, train["batch_size"])
        n_epochs = len(steps)
        total = sum(steps)
        warmup = train["warmup_steps"] if si == 0 else max(total // 5, 1)
        first_epoch = start["epoch"] if si == start["stage"] else 0
        bar = tqdm(total=total, initial=sum(steps[:first_epoch]), desc=f"{stage.name} (mask {stage.mask_ratio})", mininterval=5.0)
        for epoch in range(first_epoch, n_epochs):
            t0 = time.perf_counter()
            steps_per_epoch = steps[epoch]
            order = rng.permutation(len(sampler))
            losses = []
            model.train()
            for b in range(steps_per_epoch):
                step = sum(steps[:epoch]) + b
                set_lr(optimizer, cosine_lr(step, total, stage.lr, warmup, train["min_lr_ratio"]))
                idx = order[b * train["batch_size"] : (b + 1) * train["batch_size"]]
                video = sampler.batch(idx, train=True, rng=rng).to(dev, non_blocking=True)
                with autocast:  # bf16 matmuls where asked; the loss itself is computed in fp32
                    v = model.encode_video(video, mask_ratio=stage.mask_ratio, generator=mask_gen)
                    t = model.encode_text(tokens[torch.from_numpy(idx)].to(dev))
                loss = model.loss(v, t)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            elapsed += time.perf_counter() - t0
            record = {"stage": stage.name, "epoch": epoch, "mask_ratio": stage.mask_ratio,
                      "loss": float(np.mean(losses)), "lr": optimizer.param_groups[0]["lr"],
                      "temp": float(model.temp.detach()), "seconds": round(elapsed, 3),
                      "clips_per_s": round(steps_per_epoch * train["batch_size"] / (time.perf_counter() - t0), 1)}
            log.write(json.dumps(record) + "\n")
            log.flush()
            last = epoch == n_epochs - 1
            position = {"stage": si + 1 if last else si, "epoch": 0 if last else epoch + 1, "seconds": elapsed}
            atomic_torch({"model": model.state_dict(), "optimizer": None if last else optimizer.state_dict(),
                          "rng": rng.bit_generator.state,
                          "mask_gen": mask_gen.get_state(), "torch_rng": torch.get_rng_state(), "position": position,
                          "fingerprint": fingerprint},
                         resume_path)
        bar.close()
        optimizer = None
    log.close()
    summary = {"seconds": round(elapsed, 2), "stages": [s.__dict__ for s in plan], "final_temp": float(model.temp.detach())}
    checkpoint.save(out_dir / "checkpoint.pt", model.cpu(), seed=seed, summary={**summary, "device": str(dev)})
    resume_path.unlink(missing_ok=True)
    return summary
