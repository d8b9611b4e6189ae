"""bench/kernels.py's check phase, run on the CPU interpreter: the GPU run is a rare, short loan, so its
rule and its bookkeeping are tested here; only the timings need the device."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")
if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs the Triton interpreter (CPU tensors)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_kernels", REPO / "bench" / "kernels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "DEVICE", "cpu")
    return module


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_checks_pass_on_the_kernels(bench, dtype):
    attention = bench.check_attention(2, 2, 37, 19, 24, True, dtype)
    patch = bench.check_patch_embed(3, 5, 56, 14, 80, 0.125, dtype)
    assert attention["ok"] and patch["ok"], (attention, patch)
    assert set(attention) >= {"out", "dq", "dk", "dv"} and set(patch) >= {"out", "dweight", "dpos", "dtemporal"}
    assert attention["dq"]["err"] > 0  # the comparison really ran


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_checks_catch_a_wrong_kernel(bench, dtype, monkeypatch):
    from viclip.kernels import attention

    real = attention.fused_attention
    monkeypatch.setattr(attention, "fused_attention", lambda *a, **k: real(*a, **k) * 1.02)
    result = bench.check_attention(2, 2, 17, 17, 32, False, dtype)
    assert not result["ok"] and result["out"]["err"] > result["out"]["bound"]


def test_autotuning_switch_is_restored(bench):
    from viclip.kernels.tuning import ENV, autotune_enabled

    assert autotune_enabled()
    with bench.autotuning(False):
        assert os.environ[ENV] == "0" and not autotune_enabled()
    assert ENV not in os.environ


def test_goals_read_the_runs(bench):
    runs = [
        {
            "model": "viclip-b16",
            "mask_ratio": 0.0,
            "attention": {"triton_over_sdpa_flash_fwd_bwd": 1.1},
            "patch_embed": {"speedup_fwd_bwd": 1.0},
        },
        {
            "model": "viclip-b16",
            "mask_ratio": 0.9,
            "attention": {"triton_over_sdpa_flash_fwd_bwd": 0.9},
            "patch_embed": {"speedup_fwd_bwd": 2.5},
        },
    ]
    g = bench.goals(runs)
    assert g["attention_b16_triton_over_sdpa_flash_fwd_bwd"] == [1.1, 0.9]
    assert not g["attention_matches_sdpa_flash_at_b16"] and g["masked_patch_embed_at_least_2x"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_refuses_without_cuda(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "kernels.py"), "--out", str(tmp_path / "k.json")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "needs a CUDA GPU" in proc.stderr
    assert not (tmp_path / "k.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_gpu_check_script_fails_cleanly_without_cuda(tmp_path):
    proc = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu_check.sh"), str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert proc.returncode != 0
    assert not list((tmp_path / "out").iterdir())  # no result file from a run that could not start
