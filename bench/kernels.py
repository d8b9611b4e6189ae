"""GPU benchmark of the Triton kernels against PyTorch (needs CUDA; refuses otherwise).

For ViCLIP-B/16 and L/14 shapes at mask ratios 0 and 0.9, times forward and
forward+backward of
- attention: our fused kernel, SDPA's flash backend, and the naive torch reference;
- patch embedding: our masked kernel (embeds only kept patches) and the torch
  path (convolution over every patch, then gather);
and reports ms, TFLOP/s and peak memory as JSON (bench/results/kernels.json).

FLOP conventions: attention forward 4*B*H*N^2*D, backward 2.5x forward (it
recomputes QK^T); patch embedding 2*B*K*(3*p*p)*W forward (K = kept tokens,
the work a masked kernel needs), backward weight gradient only (1x).

Usage: .venv/bin/python bench/kernels.py [--batch-b 32] [--batch-l 16] [--dtype bf16]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from viclip.io import atomic_json
from viclip.model.masking import kept_count, random_keep_indices

SHAPES = {  # width, heads, patch, frames, image
    "viclip-b16": (768, 12, 16, 8, 224),
    "viclip-l14": (1024, 16, 14, 8, 224),
}


def timed(fn, backward: bool, reps: int = 20) -> tuple[float, int]:
    """Median milliseconds and peak bytes of fn() (and its backward)."""
    for _ in range(3):
        out = fn()
        if backward:
            out.float().sum().backward()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = fn()
        if backward:
            out.float().sum().backward()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2], torch.cuda.max_memory_allocated()


def bench_attention(b, h, n, d, dtype) -> dict:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from viclip.kernels.attention import attention_reference, fused_attention

    q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))

    def sdpa_flash():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    impls = {"triton": lambda: fused_attention(q, k, v), "sdpa_flash": sdpa_flash,
             "torch_naive": lambda: attention_reference(q, k, v, upcast=False)}
    flops_fwd = 4 * b * h * n * n * d
    out = {}
    for name, fn in impls.items():
        try:
            fwd_ms, fwd_mem = timed(fn, backward=False)
            both_ms, both_mem = timed(fn, backward=True)
        except RuntimeError as exc:  # e.g. out of memory for the naive path at L/14 unmasked
            out[name] = {"error": str(exc)[:200]}
            continue
        out[name] = {"fwd_ms": fwd_ms, "fwd_bwd_ms": both_ms, "fwd_tflops": flops_fwd / fwd_ms / 1e9,
                     "fwd_bwd_tflops": 3.5 * flops_fwd / both_ms / 1e9, "peak_mem_fwd_mb": fwd_mem / 2**20,
                     "peak_mem_fwd_bwd_mb": both_mem / 2**20}
    return out


def bench_patch_embed(b, width, patch, frames, image, ratio, dtype) -> dict:
    from viclip.kernels.dispatch import patch_embed_torch
    from viclip.kernels.patch_embed import masked_patch_embed

    n = (image // patch) ** 2
    video = torch.randn(b, frames, 3, image, image, device="cuda", dtype=dtype)
    weight = torch.randn(width, 3, 1, patch, patch, device="cuda", dtype=dtype, requires_grad=True)
    pos = torch.randn(n, width, device="cuda", dtype=dtype, requires_grad=True)
    temporal = torch.randn(1, frames, width, device="cuda", dtype=dtype, requires_grad=True)
    keep = None if ratio == 0 else random_keep_indices(b, n * frames, ratio, torch.Generator().manual_seed(0), "cuda")
    k = kept_count(n * frames, ratio)
    impls = {"triton": lambda: masked_patch_embed(video, keep, weight, pos, temporal),
             "torch_conv_gather": lambda: patch_embed_torch(video, keep, weight, pos, temporal)}
    flops_fwd = 2 * b * k * 3 * patch * patch * width
    out = {}
    for name, fn in impls.items():
        fwd_ms, fwd_mem = timed(fn, backward=False)
        both_ms, both_mem = timed(fn, backward=True)
        out[name] = {"fwd_ms": fwd_ms, "fwd_bwd_ms": both_ms, "fwd_tflops": flops_fwd / fwd_ms / 1e9,
                     "peak_mem_fwd_mb": fwd_mem / 2**20, "peak_mem_fwd_bwd_mb": both_mem / 2**20}
    out["speedup_fwd_bwd"] = out["torch_conv_gather"]["fwd_bwd_ms"] / out["triton"]["fwd_bwd_ms"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-b", type=int, default=32)
    ap.add_argument("--batch-l", type=int, default=16)
    ap.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), default="bf16")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "kernels.json")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench/kernels.py needs a CUDA GPU: the Triton kernels are timed against SDPA on the device. "
                 "On CPU, tests/test_kernel_*.py check their numerics under TRITON_INTERPRET=1.")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "dtype": args.dtype, "runs": []}
    for name, (width, heads, patch, frames, image) in SHAPES.items():
        batch = args.batch_b if name == "viclip-b16" else args.batch_l
        for ratio in (0.0, 0.9):
            n_tokens = kept_count(frames * (image // patch) ** 2, ratio) + 1
            run = {"model": name, "mask_ratio": ratio, "batch": batch, "seq_len": n_tokens,
                   "attention": bench_attention(batch, heads, n_tokens, width // heads, dtype),
                   "patch_embed": bench_patch_embed(batch, width, patch, frames, image, ratio, dtype)}
            result["runs"].append(run)
            print(json.dumps(run, indent=1), flush=True)
    atomic_json(result, args.out)


if __name__ == "__main__":
    main()
