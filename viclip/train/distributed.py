"""One training process among many: rank, world, device, and the few collectives training needs.

torchrun (or srun + torchrun across nodes) sets RANK, WORLD_SIZE and
LOCAL_RANK; without them this is a single process and every collective is
the identity, so the same code runs with and without a process group. CUDA
ranks use NCCL, CPU ranks gloo (which is how the CPU tests run 2 ranks).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist

from viclip.runtime import device as default_device


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            tdist.barrier()

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """All-reduce (sum) in place; returns the tensor."""
        if self.active:
            tdist.all_reduce(t)
        return t

    def gather_objects(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out = [None] * self.world
        tdist.all_gather_object(out, obj)
        return out


def from_env(timeout_min: float = 30.0) -> Dist:
    """Join the process group torchrun describes in the environment, or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = default_device()
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if world > 1 and not tdist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        tdist.init_process_group(
            backend,
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(minutes=timeout_min),
            device_id=dev if dev.type == "cuda" else None,
        )
    return Dist(rank, world, local_rank, dev)


def shutdown(dist: Dist) -> None:
    if dist.active and tdist.is_initialized():
        tdist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward returns each rank its slice of the summed gradient.

    The summed gradient is an all-reduce and a slice rather than a
    reduce-scatter, because gloo has no reduce-scatter.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world, rank = tdist.get_world_size(), tdist.get_rank()
        ctx.rank, ctx.n = rank, x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world)]
        tdist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        tdist.all_reduce(grad)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather_with_grad(x: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Rows of every rank in rank order; gradients flow back to each rank's own rows."""
    return _GatherWithGrad.apply(x) if dist.active else x
