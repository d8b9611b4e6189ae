"""Every kernel's fixed CUDA config compiles to an sm_90 cubin, on this GPU-less machine.

triton bundles ptxas, so the CUDA code path (lowering, layouts, pipelining, register allocation) is
exercised here although nothing can launch it. bench/compile_kernels.py does the work; it runs in a
subprocess because the test session imports triton in interpreter mode.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_fixed_configs_compile_and_fit_an_h100(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "cache")  # compile for real, not from an earlier run's cache
    out = tmp_path / "compile.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "compile_kernels.py"),
            "--set",
            "fixed",
            "--arch",
            "90",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["problems"] == []
    results = report["results"]
    kernels = {(r["op"], r["kernel"]) for r in results}
    assert kernels == {
        ("attention", "fwd"),
        ("attention", "dkdv"),
        ("attention", "dq"),
        ("patch_embed", "fwd"),
        ("patch_embed", "dw"),
        ("patch_embed", "dtable"),
    }
    assert {r["dtype"] for r in results} == {"fp32", "bf16", "fp16"}
    assert all(r["ok"] and r["fits"] and 0 < r["registers"] <= 255 for r in results)
    # at ViCLIP's head dim (64, B/16 and L/14 alike) and in the patch embedding: no register spills, any dtype
    spills = [r for r in results if r["consts"].get("HEAD_DIM", 64) == 64 and r["stack_bytes"]]
    assert spills == []
