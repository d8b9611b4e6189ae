"""Autotuning policy shared by the kernels: built lazily on CUDA, results cached on disk.

`triton.autotune` needs a live GPU driver, so each kernel module wraps its jit
function through here on its first CUDA call, never at import. The first call
with a new key benchmarks every config and keeps the winner in the process;
`cache_results=True` also writes the winner to triton's cache directory
(`TRITON_CACHE_DIR`, default `~/.triton/cache`), keyed by the kernel source,
the key values, the config list and the GPU, so the next training job, every
rank of a DDP job and every Slurm retry reuse it instead of benchmarking again.

`VICLIP_TRITON_AUTOTUNE=0` makes every kernel launch with its one fixed CUDA
config instead: no benchmarking on first use (quick checks of many shapes and
dtypes, where each new key would otherwise compile the whole config list).
"""

from __future__ import annotations

import os

import triton

ENV = "VICLIP_TRITON_AUTOTUNE"


def autotune_enabled() -> bool:
    """Read at each launch, so a process can switch it for part of its work."""
    value = os.environ.get(ENV, "1")
    if value not in ("0", "1"):
        raise ValueError(f"{ENV} must be 0 or 1; got {value!r}")
    return value == "1"


def autotune(fn, configs: list[triton.Config], key: list[str]):
    """`fn` wrapped in triton's autotuner over `configs`, keyed on the named arguments, cached on disk."""
    return triton.autotune(configs=configs, key=key, cache_results=True)(fn)
