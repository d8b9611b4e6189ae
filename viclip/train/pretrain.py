"""Contrastive pretraining: a (masked) stage, then a short unmasked tuning stage.

The baseline drops 90% of video tokens in the first stage; the no-mask arm
runs the identical schedule with ratio 0, so the arms differ in masking only.
Each stage is an engine phase (`loop.py`) with its own AdamW, global batch,
warmup and cosine schedule, as the paper's separate unmasked run has. The
loss is InfoNCE over the global batch with embeddings gathered from every
rank. Resume points live in `resume/` beside the outputs until the run ends.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from viclip.model.factory import initial_model
from viclip.model.flops import count, vision_tokens
from viclip.model.viclip import ViCLIP, ViCLIPConfig
from viclip.runtime import device
from viclip.train import checkpoint, launch
from viclip.train.corpus import load_corpus, load_video_corpus
from viclip.train.distributed import Dist
from viclip.train.execution import Execution
from viclip.train.loop import Options, Phase, fit
from viclip.train.losses import global_infonce
from viclip.train.sampling import EpochClips, epoch_order, micro_batches, micro_positions
from viclip.train.state import ResumeStore

log = logging.getLogger("viclip")


@dataclass(frozen=True)
class Stage:
    name: str
    epochs: float  # fractional epochs subsample the data, as the official code does
    mask_ratio: float
    lr: float
    batch_size: int  # global batch


def stages(train: dict, mask_ratio: float) -> list[Stage]:
    out = [
        Stage("masked" if mask_ratio > 0 else "unmasked", train["epochs"], mask_ratio, train["lr"], train["batch_size"])
    ]
    if train["tune_epochs"] > 0:
        out.append(
            Stage(
                "tune", train["tune_epochs"], 0.0, train["tune_lr"], train.get("tune_batch_size") or train["batch_size"]
            )
        )
    return out


def epoch_steps(n_clips: int, epochs: float, batch_size: int) -> list[int]:
    """Optimizer steps of each epoch: whole epochs, then a subsampled fractional one.

    The official code trains "0.5 epoch" as one pass over a random half of the
    data; 2.5 epochs are two full passes and one such half pass.
    """
    fractions = [1.0] * int(epochs)
    if epochs - int(epochs) > 1e-9:
        fractions.append(epochs - int(epochs))
    return [max(int(round(n_clips * f)) // batch_size, 1) for f in fractions]


def warmup_steps(train: dict, index: int, steps: list[int], n_clips: int, batch_size: int) -> int:
    """Stage 0: `warmup_steps`, or `warmup_epochs` of full epochs; tuning: `tune_warmup` of its steps."""
    if index > 0:
        return max(int(sum(steps) * train.get("tune_warmup", 0.2) + 1e-9), 1)
    if train.get("warmup_epochs") is not None:
        return int(round(train["warmup_epochs"] * epoch_steps(n_clips, 1, batch_size)[0]))
    return train["warmup_steps"]


class ContrastiveModule(nn.Module):
    """What DDP wraps: both towers and the temperature in one forward, so every trained parameter is in its graph."""

    def __init__(self, model: ViCLIP):
        super().__init__()
        self.model = model

    def forward(self, video: torch.Tensor, ids: torch.Tensor, keep: torch.Tensor | None = None):
        return self.model.encode_video(video, keep=keep), self.model.encode_text(ids), self.model.temperature()


class Micro(NamedTuple):
    inputs: tuple
    targets: None = None


class PretrainTask:
    global_loss = True

    def __init__(self, model: ViCLIP, source, captions, plan: list[Stage], phases: list[Phase], seed: int):
        self.model, self.module = model, ContrastiveModule(model)
        self.source, self.captions, self.plan, self.phases, self.seed = source, captions, plan, phases, seed
        self.n_patches = vision_tokens(model.cfg, 0.0)["patch_tokens"]

    def batches(self, phase: int, epoch: int, first_step: int, micro: int, dist: Dist, workers: int) -> Iterator[Micro]:
        stage, steps = self.plan[phase], self.phases[phase].steps[epoch]
        order = epoch_order(len(self.source), self.seed, phase, epoch)
        dataset = EpochClips(
            self.source, self.captions, order, self.seed, phase, epoch, stage.mask_ratio, self.n_patches
        )
        positions = [
            mb
            for s in range(first_step, steps)
            for mb in micro_positions(s, stage.batch_size, dist.world, dist.rank, micro)
        ]
        dev = dist.device
        for video, ids, keep, _ in micro_batches(dataset, positions, workers):
            yield Micro(
                (
                    video.to(dev, non_blocking=True),
                    ids.to(dev, non_blocking=True),
                    None if keep is None else keep.to(dev, non_blocking=True),
                )
            )

    def loss(self, outputs, targets, dist: Dist) -> torch.Tensor:
        video, text, temp = outputs
        return global_infonce(video, text, temp, dist)

    def log_values(self) -> dict:
        return {"temp": float(self.model.temp.detach())}


def captions_digest(captions) -> str:
    if torch.is_tensor(captions):
        return hashlib.sha1(captions.cpu().numpy().tobytes()).hexdigest()
    return captions.digest()


def pretrain(
    model_cfg: ViCLIPConfig,
    train: dict,
    mask_ratio: float,
    source,
    captions,
    seed: int,
    out_dir: str | Path,
    log_path: str | Path,
    execution: Execution | dict | None = None,
    dist: Dist | None = None,
) -> dict:
    """Train and write `checkpoint.pt` in out_dir; return a summary of the run.

    `source`: a clip source (`__len__`, `load(idx, train, rng)`); `captions`:
    caption token ids by clip index (a [N, L] tensor or `corpus.Captions`).
    Raises `state.Preempted` after saving a resume point when signalled.
    """
    train = {k: v for k, v in train.items() if k != "execution"}
    if not isinstance(execution, Execution):
        execution = Execution.from_config(execution, "pretrain.execution")
    run = asdict(execution)
    dist = dist or Dist(device=device())
    out_dir = Path(out_dir)
    plan = stages(train, mask_ratio)
    n = len(source)
    for stage in plan:
        if stage.batch_size > n:
            raise ValueError(
                f"pretrain: {stage.name} batch size {stage.batch_size} exceeds the {n} clips of the corpus"
            )
    phases = []
    for i, stage in enumerate(plan):
        steps = epoch_steps(n, stage.epochs, stage.batch_size)
        phases.append(
            Phase(
                stage.name,
                tuple(steps),
                stage.lr,
                warmup_steps(train, i, steps, n, stage.batch_size),
                train["min_lr_ratio"],
                stage.batch_size,
                tokens_per_clip=vision_tokens(model_cfg, stage.mask_ratio)["tokens_vision"] + model_cfg.context_length,
                flops_per_clip=count(model_cfg, stage.mask_ratio)["flops_train_step_per_pair"],
                info={"mask_ratio": stage.mask_ratio},
            )
        )
    negatives = train.get("negatives", "global")
    # A resume point counts only for the very same run. With per-micro-batch negatives the process count
    # and micro-batch change the loss, so they are part of the run; with global negatives they only change
    # float rounding, and a requeued run may resume on another number or kind of GPU.
    same = {k: v for k, v in train.items() if negatives == "micro" or k != "micro_batch"}
    fingerprint = json.dumps(
        [
            model_cfg.to_dict(),
            same,
            mask_ratio,
            seed,
            n,
            captions_digest(captions),
            dist.world if negatives == "micro" else None,
        ],
        sort_keys=True,
    )
    store = ResumeStore(out_dir / "resume", fingerprint, keep=run["keep"])
    opts = Options.from_settings(train, run, negatives=negatives)
    model = initial_model(model_cfg, seed)
    task = PretrainTask(model, source, captions, plan, phases, seed)
    result = fit(task, phases, opts, dist, store, log_path, seed, run_name=f"{out_dir.parent.name}/{out_dir.name}")
    summary = {
        **result,
        "stages": [asdict(s) for s in plan],
        "final_temp": float(model.temp.detach()),
        "processes": dist.world,
    }
    if dist.main:
        # What the run computed, never how long it took: the seconds are in log.jsonl (the report reads them
        # there), so two runs of a deterministic config give byte-identical checkpoints.
        computed = {k: v for k, v in summary.items() if k != "seconds"}
        checkpoint.save(
            out_dir / "checkpoint.pt", model.cpu(), seed=seed, summary={**computed, "device": str(dist.device)}
        )
        store.clear()
    dist.barrier()
    return summary


@dataclass(frozen=True)
class PretrainJob:
    """One pretraining run, as rule pretrain hands it over: what to train, on what, where, and how to execute."""

    model: dict  # the config's model block (ViCLIPConfig.from_dict)
    train: dict  # the arm's schedule: the pretrain block with its epochs (viclip.train.arms)
    mask_ratio: float
    seed: int
    captions: str
    out_dir: str
    log_path: str
    execution: Execution = Execution()
    threads: int = 1  # CPU threads per training process
    frames: str | None = None  # the synthetic corpus: its decoded frame cache and index
    index: str | None = None
    manifest: str | None = None  # a real corpus: clip files, decoded on the fly

    def spec(self) -> dict:
        """Plain data, for the job file each torchrun rank reads."""
        return asdict(self)

    @classmethod
    def from_spec(cls, spec: dict) -> PretrainJob:
        return cls(**{**spec, "execution": Execution.from_config(spec.get("execution"), "pretrain.execution")})


def run(job: PretrainJob) -> None:
    """Pretrain one run: in this process, or one process per GPU under torchrun (srun across nodes)."""
    Path(job.out_dir).mkdir(parents=True, exist_ok=True)
    launch.run_here_or_torchrun(job.spec(), job.execution, run_job, job.out_dir)


def run_job(spec: dict, dist: Dist) -> dict:
    """One training process of a run (under torchrun: `python -m viclip.train.pretrain JOB.json` per rank)."""
    job = PretrainJob.from_spec(spec)
    model_cfg = ViCLIPConfig.from_dict(job.model)
    train = job.train
    if job.manifest:
        source, captions = load_video_corpus(
            job.manifest,
            job.captions,
            model_cfg,
            train["augment"],
            train["flip"],
            Path(job.out_dir) / "decode_failures.tsv",
            job.seed,
        )
    else:
        source, captions = load_corpus(job.frames, job.index, job.captions, model_cfg, train["augment"], train["flip"])
    log.info(
        "rank %d/%d on %s: %d clips, mask ratio %s", dist.rank, dist.world, dist.device, len(source), job.mask_ratio
    )
    return pretrain(
        model_cfg, train, job.mask_ratio, source, captions, job.seed, job.out_dir, job.log_path, job.execution, dist
    )


if __name__ == "__main__":
    sys.exit(launch.worker_main(sys.argv[1:], run_job))
