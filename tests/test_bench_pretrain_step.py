"""bench/pretrain_step.py's step loop with the GPU run's settings (bf16 autocast, Triton kernels), on the
CPU interpreter with a tiny model: the device run is a rare loan, so its code path is exercised here."""

import importlib.util
import math
import os
from pathlib import Path

import pytest
from tiny_model import tiny

pytest.importorskip("triton")
if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs the Triton interpreter (CPU tensors)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
TINY = tiny(num_frames=2, freeze_text=True)
TRAIN = {"lr": 1e-3, "weight_decay": 0.2, "betas": [0.9, 0.98]}


def test_bf16_triton_steps_match_the_torch_path():
    spec = importlib.util.spec_from_file_location("bench_pretrain_step", REPO / "bench" / "pretrain_step.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    runs = {}
    for kernels in ("triton", "torch"):
        cfg = bench.ViCLIPConfig.from_dict({**TINY, "kernels": kernels})
        runs[kernels] = bench.step_times(cfg, 0.5, 4, 2, 1, TRAIN, "cpu", "bf16")
    for r in runs.values():
        assert len(r["wall"]) == len(r["cpu"]) == 2 and math.isfinite(r["first_loss"]) and r["peak_mem_mb"] is None
    # same weights and data; bf16 rounding differs between the paths
    assert abs(runs["triton"]["first_loss"] - runs["torch"]["first_loss"]) < 0.05
