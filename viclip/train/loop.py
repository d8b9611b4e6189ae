"""The training engine shared by pretraining and fine-tuning.

A run is a list of phases (pretraining: the masked stage, then unmasked
tuning), each with its own AdamW, warmup and cosine schedule. A task says
what a micro-batch is, what the module (the thing DDP wraps) returns for
it, and the loss of those outputs; the engine does the rest:

- one process or many (torchrun; DDP averages gradients across ranks);
- gradient accumulation to the configured global batch. A loss that couples
  the samples of a batch (contrastive: `task.global_loss`) is accumulated
  with cached embeddings by default (`negatives: global`): a no-grad forward
  of every micro-batch, one loss over the whole global batch, then a
  forward+backward per micro-batch that feeds it its slice of the
  embeddings' gradient. That is exactly the gradient of one softmax over
  the global batch, as the paper's 32k batch has, for one extra forward
  per step. `negatives: micro` instead gives each micro-batch its own loss
  over the micro-batches of all ranks (world x micro negatives), which is
  cheaper and what plain accumulation does;
- bf16 autocast, optional gradient clipping, the gradient norm;
- resume points every N steps, at epoch and phase ends and on SIGTERM /
  SIGUSR1 (`state.py`); a resumed run continues bit-identically;
- the jsonl log, a progress bar, optional dashboards (`observe.py`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from viclip.progress import progress
from viclip.train.distributed import Dist
from viclip.train.observe import RunLog, Sinks, Window, peak_memory_mb, throughput
from viclip.train.optim import adamw, cosine_lr, set_lr
from viclip.train.sampling import accumulation
from viclip.train.state import Preempted, ResumeStore, StopFlag, rng_states, set_rng_states

log = logging.getLogger("viclip")


@dataclass(frozen=True)
class Phase:
    name: str
    steps: tuple[int, ...]  # optimizer steps of each epoch
    lr: float
    warmup: int
    min_lr_ratio: float
    batch_size: int  # the global batch: clips per optimizer step over all ranks
    tokens_per_clip: int = 0  # tokens the towers process per (clip, caption), for tokens/s
    flops_per_clip: float = 0.0  # model FLOPs of a training step per (clip, caption), for MFU
    info: dict = field(default_factory=dict)  # logged with every line, e.g. the mask ratio


@dataclass(frozen=True)
class Options:
    """Engine settings: `train` keys that change results, then execution keys that do not."""

    weight_decay: float
    betas: tuple[float, float] = (0.9, 0.98)
    precision: str = "fp32"
    negatives: str = "global"
    micro_batch: int = 0
    grad_clip: float = 0.0
    checkpoint_every: int = 0
    log_every: int = 0
    keep: int = 2
    loader_workers: int = 0
    peak_tflops: float = 0.0
    tensorboard: bool = False
    wandb: bool = False
    deterministic: bool = False

    @staticmethod
    def from_settings(train: dict, run: dict, **fixed) -> Options:
        """The options of a job from its `train` block and its execution settings (`fixed` overrides)."""
        training = {
            "weight_decay": train["weight_decay"],
            "betas": tuple(train["betas"]),
            "precision": train.get("precision", "fp32"),
            "micro_batch": train.get("micro_batch", 0),
            "grad_clip": train.get("grad_clip", 0.0),
        }
        execution = ("checkpoint_every", "log_every", "keep", "loader_workers", "peak_tflops", "tensorboard", "wandb")
        return Options(**training, **{k: run[k] for k in (*execution, "deterministic")}, **fixed)


class MicroBatch(Protocol):
    inputs: tuple  # positional arguments of the module's forward, on the device
    targets: torch.Tensor | None


class Task(Protocol):
    model: nn.Module  # whose state_dict is saved
    module: nn.Module  # what DDP wraps: forward(*inputs) -> tuple of outputs
    global_loss: bool  # whether the loss couples the samples of a batch

    def batches(
        self, phase: int, epoch: int, first_step: int, micro: int, dist: Dist, workers: int
    ) -> Iterator[MicroBatch]: ...

    def loss(self, outputs: Sequence[torch.Tensor], targets: torch.Tensor | None, dist: Dist) -> torch.Tensor: ...

    def log_values(self) -> dict: ...


def optimizer_to(optimizer: torch.optim.Optimizer, dev: torch.device) -> None:
    for st in optimizer.state.values():
        for k, v in st.items():
            if torch.is_tensor(v) and k != "step":
                st[k] = v.to(dev)


def step_seed(seed: int, phase: int, epoch: int, step: int, rank: int) -> int:
    """Seed of the model's own randomness (drop path) at a step: resumable without saved streams."""
    return int(np.random.SeedSequence([seed, phase, epoch, step, rank]).generate_state(1, np.uint64)[0] >> 1)


def _no_sync(module: nn.Module, sync: bool):
    return nullcontext() if sync or not isinstance(module, DistributedDataParallel) else module.no_sync()


def _rng_snapshot(dev: torch.device) -> tuple:
    return torch.get_rng_state(), torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None


def _rng_restore(snap: tuple, dev: torch.device) -> None:
    torch.set_rng_state(snap[0])
    if snap[1] is not None:
        torch.cuda.set_rng_state(snap[1], dev)


def _join(parts: list[tuple]) -> list[torch.Tensor]:
    """Per-sample outputs of micro-batches concatenated; 0-d outputs (the temperature) are shared."""
    return [torch.cat(xs) if xs[0].ndim else xs[0] for xs in zip(*parts)]


def train_step(module: nn.Module, micro: list, task: Task, dist: Dist, autocast, cached: bool) -> torch.Tensor:
    """Forward and backward of one optimizer step over this rank's micro-batches; returns its loss."""
    n = len(micro)
    if n == 1 or not cached:
        total = 0.0
        for i, mb in enumerate(micro):
            with _no_sync(module, i == n - 1):
                with autocast:
                    out = module(*mb.inputs)
                loss = task.loss(out, mb.targets, dist) / n
                loss.backward()
            total = total + loss.detach()
        return total
    # Cached accumulation: one loss over all micro-batches, gradients pushed back one micro-batch at a time.
    inner = module.module if isinstance(module, DistributedDataParallel) else module
    dev = next(inner.parameters()).device
    snaps, outs = [], []
    with torch.no_grad():
        for mb in micro:
            snaps.append(_rng_snapshot(dev))  # the re-forward must drop the same paths
            with autocast:
                outs.append(inner(*mb.inputs))
    leaves = [x.detach().requires_grad_() for x in _join(outs)]
    targets = None if micro[0].targets is None else torch.cat([mb.targets for mb in micro])
    loss = task.loss(leaves, targets, dist)
    loss.backward()
    grads = [leaf.grad for leaf in leaves]
    offset = 0
    for i, (mb, snap) in enumerate(zip(micro, snaps)):
        last = i == n - 1
        _rng_restore(snap, dev)
        with _no_sync(module, last):
            with autocast:
                out = module(*mb.inputs)
            size = next(o.shape[0] for o in out if o.ndim)
            surrogate = 0.0
            for o, g in zip(out, grads):
                if o.ndim:
                    surrogate = surrogate + (o * g[offset : offset + size].to(o.dtype)).sum()
                elif last:  # a shared scalar gets its whole gradient once, in the synchronised backward
                    surrogate = surrogate + (o * g.to(o.dtype)).sum()
            surrogate.backward()
        offset += size
    return loss.detach()


def grad_norm(params: list[nn.Parameter], clip: float) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if clip > 0:
        return torch.nn.utils.clip_grad_norm_(params, clip)
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def _position(phases: Sequence[Phase], phase: int, epoch: int, step: int) -> dict:
    """The next step to run, carried over epoch and phase ends."""
    if phase < len(phases) and epoch < len(phases[phase].steps) and step >= phases[phase].steps[epoch]:
        epoch, step = epoch + 1, 0
    if phase < len(phases) and epoch >= len(phases[phase].steps):
        phase, epoch = phase + 1, 0
    return {"phase": phase, "epoch": epoch, "step": step}


def fit(
    task: Task,
    phases: Sequence[Phase],
    opts: Options,
    dist: Dist,
    store: ResumeStore,
    log_path: str | Path,
    seed: int,
    run_name: str = "run",
) -> dict:
    """Train through every phase (resuming where a resume point says); return elapsed seconds and steps."""
    if opts.negatives not in ("global", "micro"):
        raise ValueError(f"negatives: expected 'global' or 'micro', got {opts.negatives!r}")
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    if opts.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    try:
        return _Run(task, phases, opts, dist, store, log_path, seed, run_name).train()
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


class _Run:
    """One call of `fit`: the model, optimizer, position and log of a run in progress."""

    def __init__(
        self,
        task: Task,
        phases: Sequence[Phase],
        opts: Options,
        dist: Dist,
        store: ResumeStore,
        log_path: str | Path,
        seed: int,
        run_name: str,
    ):
        self.task, self.phases, self.opts, self.dist, self.store, self.seed = task, phases, opts, dist, store, seed
        self.model, self.dev = task.model, dist.device
        self.pos, self.elapsed, self.done = {"phase": 0, "epoch": 0, "step": 0}, 0.0, 0
        self.epoch_losses: list[float] = []  # global losses of this epoch's steps
        self.since_log: list[float] = []  # ... and of the steps since the last step line
        self.optimizer, resume_optimizer, history = None, None, []
        state = store.latest()
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.pos, self.elapsed, self.done = state["position"], state["elapsed"], state["global_step"]
            self.epoch_losses, self.since_log = list(state["epoch_losses"]), list(state["since_log"])
            resume_optimizer, history = state["optimizer"], state["log"]
            if len(state["rng"]) == dist.world:
                set_rng_states(state["rng"][dist.rank])
        self.resume_optimizer = resume_optimizer
        self.model.to(self.dev)
        self.module = task.module
        if dist.active:
            self.module = DistributedDataParallel(
                self.module, device_ids=[self.dev.index] if self.dev.type == "cuda" else None
            )
        self.autocast = torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=opts.precision == "bf16")
        self.log = RunLog(log_path, history, dist.main)
        self.sinks = Sinks(
            Path(log_path).parent, run_name, store.fingerprint, opts.tensorboard, opts.wandb, dist.main, history
        )
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.stop = StopFlag()

    def train(self) -> dict:
        try:
            with self.stop:
                for pi in range(self.pos["phase"], len(self.phases)):
                    self.phase(pi)
                    self.pos = {"phase": pi + 1, "epoch": 0, "step": 0}
        finally:
            self.sinks.close()
        return {"seconds": round(self.elapsed, 3), "steps": self.done}

    def phase(self, pi: int) -> None:
        phase, opts = self.phases[pi], self.opts
        self.optimizer = adamw(self.model, phase.lr, opts.weight_decay, opts.betas)
        if pi == self.pos["phase"] and self.resume_optimizer is not None:
            self.optimizer.load_state_dict(self.resume_optimizer)
            optimizer_to(self.optimizer, self.dev)
        self.resume_optimizer = None
        first_epoch = self.pos["epoch"] if pi == self.pos["phase"] else 0
        start = sum(phase.steps[:first_epoch]) + (self.pos["step"] if pi == self.pos["phase"] else 0)
        label = " ".join([phase.name] + [f"{k}={v}" for k, v in phase.info.items()])
        with progress(
            total=sum(phase.steps), initial=start, desc=label, mininterval=5.0, disable=not self.dist.main
        ) as bar:
            for epoch in range(first_epoch, len(phase.steps)):
                first_step = self.pos["step"] if (pi, epoch) == (self.pos["phase"], self.pos["epoch"]) else 0
                self.epoch(pi, epoch, first_step, bar)

    def epoch(self, pi: int, epoch: int, first_step: int, bar) -> None:
        phase, opts, dist = self.phases[pi], self.opts, self.dist
        micro, accum = accumulation(phase.batch_size, dist.world, opts.micro_batch)
        cached = self.task.global_loss and opts.negatives == "global"
        if first_step == 0:
            self.epoch_losses = []
        batches = self.task.batches(pi, epoch, first_step, micro, dist, opts.loader_workers)
        window, epoch_window = Window(), Window()
        self.model.train()
        for step in range(first_step, phase.steps[epoch]):
            i = sum(phase.steps[:epoch]) + step
            set_lr(self.optimizer, cosine_lr(i, sum(phase.steps), phase.lr, phase.warmup, phase.min_lr_ratio))
            torch.manual_seed(step_seed(self.seed, pi, epoch, step, dist.rank))
            loss = train_step(
                self.module, [next(batches) for _ in range(accum)], self.task, dist, self.autocast, cached
            )
            log_now = opts.log_every > 0 and (self.done + 1) % opts.log_every == 0
            norm = grad_norm(self.params, opts.grad_clip) if (log_now or opts.grad_clip > 0) else None
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            # one all-reduce per step: the global loss, and whether any rank was told to stop
            shared = dist.sum_(
                torch.stack(
                    [
                        loss.float().reshape(()).to(self.dev),
                        torch.tensor(float(self.stop.signum is not None), device=self.dev),
                    ]
                )
            )
            value, stopping = shared[0].item() / dist.world, bool(shared[1].item() > 0)
            self.epoch_losses.append(value)
            self.since_log.append(value)
            self.done += 1
            window.add(phase.batch_size)
            epoch_window.add(phase.batch_size)
            bar.update(1)
            bar.set_postfix(
                loss=f"{value:.3f}",
                clips_s=f"{window.rate():.0f}",
                tok_s=f"{window.rate() * phase.tokens_per_clip:.3g}",
                refresh=False,
            )
            if log_now:
                self.elapsed += window.seconds
                self.write(
                    {
                        "kind": "step",
                        "stage": phase.name,
                        "epoch": epoch,
                        "step": self.done,
                        **phase.info,
                        "loss": float(np.mean(self.since_log)),
                        "lr": self.optimizer.param_groups[0]["lr"],
                        **self.task.log_values(),
                        "grad_norm": float(norm),
                        **self.timing(phase, window),
                    }
                )
                window.reset()
                self.since_log = []
            last = step == phase.steps[epoch] - 1
            if not last and (stopping or (opts.checkpoint_every and self.done % opts.checkpoint_every == 0)):
                self.elapsed += window.seconds
                window.reset()
                path = self.save(_position(self.phases, pi, epoch, step + 1), self.optimizer)
                if stopping:
                    raise Preempted(self.stop.signum or 15, path)
        self.elapsed += window.seconds
        self.write(
            {
                "kind": "epoch",
                "stage": phase.name,
                "epoch": epoch,
                "precision": self.opts.precision,  # what the run computed in: the records show the protocol
                **phase.info,
                "loss": float(np.mean(self.epoch_losses)),
                "lr": self.optimizer.param_groups[0]["lr"],
                **self.task.log_values(),
                **self.timing(phase, epoch_window),
                "steps": self.done,
            }
        )
        self.epoch_losses = []
        closing = epoch == len(phase.steps) - 1
        path = self.save(_position(self.phases, pi, epoch + 1, 0), None if closing else self.optimizer)
        if _any_stop(dist, self.stop):
            raise Preempted(self.stop.signum or 15, path)

    def timing(self, phase: Phase, window: Window) -> dict:
        """Wall-clock fields of a log line (all that a resumed run does not reproduce)."""
        return {
            "seconds": round(self.elapsed, 3),
            **throughput(
                window.rate(),
                phase.tokens_per_clip,
                phase.flops_per_clip,
                self.opts.peak_tflops,
                self.dist.world,
                self.dev,
            ),
            "peak_mem_mb": round(peak_memory_mb(self.dev), 1),
        }

    def write(self, record: dict) -> None:
        self.log.write(record)
        self.sinks.scalars(self.done, record)

    def save(self, position: dict, optimizer) -> Path | None:
        rngs = self.dist.gather_objects(rng_states())
        path = None
        if self.dist.main:
            path = self.store.save(
                {
                    "model": self.model.state_dict(),
                    "optimizer": optimizer.state_dict() if optimizer else None,
                    "position": position,
                    "elapsed": self.elapsed,
                    "log": self.log.lines,
                    "global_step": self.done,
                    "epoch_losses": self.epoch_losses,
                    "since_log": self.since_log,
                    "rng": rngs,
                    "world": self.dist.world,
                },
                self.done,
            )
        self.dist.barrier()  # nobody exits before the resume point is complete
        return path


def _any_stop(dist: Dist, stop: StopFlag) -> bool:
    flag = dist.sum_(torch.tensor([float(stop.signum is not None)], device=dist.device))
    return bool(flag.item() > 0)
