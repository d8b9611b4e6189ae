"""First-use self-check: each Triton kernel against its torch reference on this device, at this dtype.

No GPU ran these kernels while they were written (docs/KERNELS.md), so a user's first CUDA run is the
first time a real GPU, driver and triton build execute them. Before the dispatch (`dispatch.py`) first
sends an op through Triton on a CUDA device at a dtype, `check` runs both kernels, forward and backward,
on one small odd shape and compares the output and every gradient with the torch reference beside each
kernel, computed in fp64 on the same device (fp64 is immune to TF32 in torch's fp32 matmuls and convs).
A kernel that is off raises `KernelSelfCheckError`, which names `model.kernels: torch` as the way out;
the outcome is cached per (process, device, dtype), so every later call is a dict lookup.
`bench/gpu_check.sh` stays the full check (many shapes, every autotuned config, timings).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable

import torch

log = logging.getLogger("viclip")

# Error = max |kernel - fp64 reference| / max |reference|, per output or gradient. Measured on these shapes
# in the interpreter (4 seeds): fp32 <= 5.4e-7, fp16 <= 7e-4, bf16 <= 1.2e-2, as large as torch's own
# error in the 16-bit dtypes. A false alarm stops a user's run, so the bounds leave 3.5x (bf16) to over
# 100x (fp32) headroom; a broken kernel (garbage, NaN, a lost term, a wrong layout) is off by far more.
TOLERANCES = {torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 4e-2}

# Odd sizes, so every tile ends in a partial block: attention [B, H, N, D] with N past one 64-wide
# block (the online softmax rescales across key blocks) at ViCLIP's head dim; patch embedding with
# p = 14 (3*p*p = 588 pixels per patch, masked K tiles), 7 of 12 tokens kept, width 40.
ATTENTION_SHAPE = (1, 2, 77, 64)
PATCH_SHAPE = {"batch": 2, "frames": 3, "patch": 14, "grid": 2, "width": 40, "kept": 7}

_results: dict[tuple, SelfCheck] = {}


class KernelSelfCheckError(RuntimeError):
    """A Triton kernel disagrees with its torch reference on this device at this dtype."""


@dataclasses.dataclass(frozen=True)
class SelfCheck:
    device: str
    dtype: torch.dtype
    tolerance: float
    errors: dict[str, float]  # "<kernel> <forward|backward>" -> the largest error of its tensors
    worst: dict[str, str]  # the same keys -> the tensor with that error (out, dq, dweight, ...)
    seconds: float

    @property
    def passed(self) -> bool:
        return all(e <= self.tolerance for e in self.errors.values())  # NaN compares False: a failure

    def summary(self) -> str:
        errs = ", ".join(f"{name} {err:.1e}" for name, err in self.errors.items())
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"kernels: self-check on {self.device} in {_name(self.dtype)} {verdict} "
            f"in {self.seconds:.2f} s: {errs} (max error relative to the fp64 torch reference; "
            f"tolerance {self.tolerance:.0e})"
        )

    def failure(self) -> str:
        off = "; ".join(
            f"{name} ({self.worst[name]}) is off by {err:.2e}"
            for name, err in self.errors.items()
            if not err <= self.tolerance
        )
        return (
            f"Triton kernel self-check failed on {self.device} in {_name(self.dtype)}: {off} (max |kernel - torch "
            f"reference| relative to the reference's largest value; tolerance {self.tolerance:.0e}). The "
            "Triton kernels compute wrong results with this GPU, driver and triton; set `model.kernels: torch` "
            "in the config to run the plain torch path instead, and run `bash bench/gpu_check.sh` for the "
            "full check."
        )


def check(
    device: torch.device | str,
    dtype: torch.dtype,
    attention: Callable | None = None,
    patch_embed: Callable | None = None,
) -> SelfCheck:
    """Run the self-check once per (device, dtype, kernels); raise KernelSelfCheckError if a kernel is off.

    `attention` (q, k, v) -> o and `patch_embed` (video, keep, weight, pos, temporal) -> tokens default
    to the real kernels; a test passes a wrong one to see the check fail. Later calls return the cached
    result (or raise its error again) without running anything.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    key = (device, dtype, attention, patch_embed)
    result = _results.get(key)
    if result is None:
        if dtype not in TOLERANCES:
            raise ValueError(f"no self-check for {dtype}: the Triton kernels take float32, float16 and bfloat16")
        result = _results[key] = _measure(device, dtype, attention, patch_embed)
        (log.info if result.passed else log.error)(result.summary())
    if not result.passed:
        raise KernelSelfCheckError(result.failure())
    return result


def _measure(device: torch.device, dtype: torch.dtype, attention, patch_embed) -> SelfCheck:
    from viclip.kernels.attention import attention_reference, fused_attention
    from viclip.kernels.patch_embed import masked_patch_embed, masked_patch_embed_reference

    start = time.perf_counter()
    tensors: dict[str, dict[str, float]] = {}
    # the first call may come from eval code (no_grad, inference mode) or a training step (autocast)
    with (
        torch.inference_mode(False),
        torch.enable_grad(),
        torch.autocast(device.type, enabled=False),
        _fixed_configs(),
    ):
        g = torch.Generator().manual_seed(0)  # the same inputs on every machine; the global RNG is untouched
        consts, params, dout = _patch_inputs(g, device, dtype)
        got = _run("patch embedding", patch_embed or masked_patch_embed, consts, params, dout)
        video, keep = consts
        ref = _run("reference", masked_patch_embed_reference, (video.double(), keep), _f64(params), dout.double())
        tensors["patch embedding"] = _errors(("out", "dweight", "dpos", "dtemporal"), got, ref)

        qkv, dout = _attention_inputs(g, device, dtype)
        got = _run("attention", attention or fused_attention, (), qkv, dout)
        ref = _run("reference", lambda *x: attention_reference(*x, upcast=False), (), _f64(qkv), dout.double())
        tensors["attention"] = _errors(("out", "dq", "dk", "dv"), got, ref)

    errors, worst = {}, {}
    for kernel, errs in tensors.items():
        for direction, names in (("forward", ["out"]), ("backward", [n for n in errs if n != "out"])):
            name = max(names, key=lambda n: math.inf if math.isnan(errs[n]) else errs[n])
            errors[f"{kernel} {direction}"], worst[f"{kernel} {direction}"] = errs[name], name
    return SelfCheck(str(device), dtype, TOLERANCES[dtype], errors, worst, time.perf_counter() - start)


@contextlib.contextmanager
def _fixed_configs():
    """One fixed launch config per kernel: autotuning the check's own shapes would cost seconds, not ms."""
    from viclip.kernels.tuning import ENV

    before = os.environ.get(ENV)
    os.environ[ENV] = "0"  # read at each launch (viclip.kernels.tuning)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def _attention_inputs(g: torch.Generator, device: torch.device, dtype: torch.dtype):
    q, k, v, dout = (torch.randn(ATTENTION_SHAPE, generator=g).to(device, dtype) for _ in range(4))
    return (q, k, v), dout


def _patch_inputs(g: torch.Generator, device: torch.device, dtype: torch.dtype):
    """(video, keep), (weight, pos, temporal), dOut: 16-bit data and fp32 parameters, as under autocast."""
    s = PATCH_SHAPE
    b, t, p, w, n = s["batch"], s["frames"], s["patch"], s["width"], s["grid"] ** 2
    video = torch.randn(b, t, 3, s["grid"] * p, s["grid"] * p, generator=g).to(device, dtype)
    keep = torch.stack([torch.randperm(n * t, generator=g)[: s["kept"]].sort().values for _ in range(b)])
    weight = torch.randn(w, 3, 1, p, p, generator=g) * (3 * p * p) ** -0.5
    pos, temporal = torch.randn(n, w, generator=g) * 0.5, torch.randn(1, t, w, generator=g) * 0.5
    dout = torch.randn(b, s["kept"], w, generator=g).to(device, dtype)
    return (video, keep.to(device)), tuple(x.to(device) for x in (weight, pos, temporal)), dout


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _f64(tensors):
    return tuple(x.double() for x in tensors)


def _run(kernel: str, fn: Callable, consts: tuple, leaves: tuple, dout: torch.Tensor) -> list[torch.Tensor]:
    """[output, gradient of each leaf] for the vector-Jacobian product with dout."""
    leaves = [x.detach().clone().requires_grad_(True) for x in leaves]
    direction = "forward"
    try:
        out = fn(*consts, *leaves)
        direction = "backward"
        grads = torch.autograd.grad(out, leaves, dout.to(out.dtype))
    except Exception as exc:
        if kernel == "reference":
            raise
        # a kernel that cannot compile or launch here is as unusable as a wrong one: same way out
        raise KernelSelfCheckError(
            f"Triton kernel self-check: the {kernel} {direction} kernel raised {type(exc).__name__}: {exc}. "
            "Set `model.kernels: torch` in the config to run the plain torch path instead."
        ) from exc
    return [out.detach(), *grads]


def _errors(names: tuple[str, ...], got: list[torch.Tensor], ref: list[torch.Tensor]) -> dict[str, float]:
    errs = {}
    for name, x, r in zip(names, got, ref):
        if x.shape != r.shape:
            errs[name] = math.inf
            continue
        scale = r.abs().max().clamp_min(torch.finfo(torch.float64).tiny)
        errs[name] = ((x.double() - r).abs().max() / scale).item()
    return errs
