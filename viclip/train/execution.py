"""How a training job runs: `pretrain.execution` and `finetune.execution`, typed.

These keys never change what a run computes (so the rules keep them out of
params): processes and devices, the job's size on a cluster, resume-point and
log intervals, mirrors. The defaults here are the only ones; the workflow's
resource requests and the training loop both read them. Importing this module
does not import torch, so planning a DAG stays fast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Execution:
    gpus: int = 0  # GPUs per node; 0: CPU processes (gloo)
    nodes: int = 1
    nproc: int = 1  # CPU training processes per node when gpus is 0
    cpus_per_process: int = 1
    mem_mb: int = 4000
    runtime_min: int = 120  # the job's time limit; a job stopped by it saves a resume point
    stop_timeout_s: int = 120  # time the ranks get to save after SIGTERM/SIGUSR1 before SIGKILL
    loader_workers: int = 0
    checkpoint_every: int = 0  # optimizer steps between resume points (epoch/stage ends and signals always save)
    keep: int = 2  # resume points kept
    log_every: int = 0  # optimizer steps between step lines in log.jsonl
    peak_tflops: float = 0.0  # per-GPU peak for the logged MFU; 0: none
    tensorboard: bool = False
    wandb: bool = False
    deterministic: bool = False

    @classmethod
    def from_config(cls, block: dict | None, where: str) -> Execution:
        block = dict(block or {})
        unknown = sorted(set(block) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
        ex = cls(**block)
        if ex.nodes > 1 and not ex.gpus:
            raise ValueError(f"{where}: nodes > 1 needs gpus > 0")
        return ex

    @property
    def per_node(self) -> int:
        """Training processes per node."""
        return self.gpus or self.nproc

    @property
    def threads(self) -> int:
        """CPU threads the job asks for on each node."""
        return self.per_node * self.cpus_per_process

    def resources(self) -> dict:
        """The job's Snakemake resources (the Slurm executor maps them to sbatch flags)."""
        return {
            "mem_mb": self.mem_mb,
            "runtime": self.runtime_min,
            "gpu": self.gpus * self.nodes,
            "nodes": self.nodes,
            "cpus_per_task": self.threads,
        }
