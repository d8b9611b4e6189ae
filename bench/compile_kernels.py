"""Compile the Triton kernels for NVIDIA GPUs ahead of time, on a machine without one.

triton ships ptxas, so `triton.compile` can lower every kernel to a cubin for
a chosen architecture with no GPU present. That runs the whole CUDA code
path short of launching it: the lowering of every op, layouts, the software
pipeline, register allocation. This script compiles each kernel for each of
its CUDA configs (the autotuner's list and the fixed config) and records what
the cubin needs: shared memory, registers, and stack (register spills), and
whether it fits an H100 (sm_90, 227 KiB of shared memory per block) and an
A100 (sm_80, 163 KiB). A config that does not fit is skipped by the autotuner
at run time; a kernel with no fitting config, or a fixed config that does not
fit, is a bug.

Sets: `training` (default) is what a ViCLIP-B/16 or L/14 run compiles
(attention head dim 64 without padding mask, bf16 and fp32; patch embedding
in bf16, patch sizes 16 and 14, masked and not); `fixed` is every kernel's fixed config over fp32, bf16 and fp16 and
head dims 24, 64 and 128 with and without the padding mask (the CPU tests
compile this set); `all` is both.

Usage: .venv/bin/python bench/compile_kernels.py [--set training] [--arch 90 80] [--workers 2]
Writes bench/results/kernels_compile.json. Must run without TRITON_INTERPRET.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from viclip.io import atomic_json  # noqa: E402

SHARED_LIMIT = {90: 232448, 80: 166912}  # bytes of shared memory one block may use (opt-in maximum)
TRITON_DTYPE = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16"}


def attention_signature(kernel: str, dtype: str) -> dict:
    t = f"*{dtype}"
    if kernel == "fwd":
        ptrs = {"Q": t, "K": t, "V": t, "KPM": "*u8", "O": t, "LSE": "*fp32"}
        scalars = {"H": "i32", "N_Q": "i32", "N_K": "i32", "qk_scale": "fp32"}
    else:
        ptrs = {"Q": t, "K": t, "V": t, "KPM": "*u8", "DO": t, "LSE": "*fp32", "DELTA": "*fp32"}
        ptrs.update({"DK": t, "DV": t} if kernel == "dkdv" else {"DQ": t})
        scalars = {"H": "i32", "N_Q": "i32", "N_K": "i32", "qk_scale": "fp32", "sm_scale": "fp32"}
    consts = ["HEAD_DIM", "HAS_MASK", "UPCAST", "DOT_PREC", "BLOCK_M", "BLOCK_N", "BLOCK_D"]
    return {**ptrs, **scalars, **{c: "constexpr" for c in consts}}


def patch_signature(kernel: str, dtype: str) -> dict:
    t = f"*{dtype}"
    strides = {"stride_vb": "i32", "stride_vt": "i32", "stride_vc": "i32", "stride_vh": "i32"}
    if kernel == "fwd":
        ptrs = {
            "video_ptr": t,
            "keep_ptr": "*i64",
            "w_ptr": "*fp32",
            "pos_ptr": "*fp32",
            "temp_ptr": "*fp32",
            "out_ptr": t,
        }
        scalars = {"K": "i32", "T": "i32", "GRID_W": "i32", "WIDTH": "i32", **strides}
        consts = ["PATCH", "HAS_KEEP", "UPCAST", "BLOCK_M", "BLOCK_K", "BLOCK_W"]
    elif kernel == "dw":
        ptrs = {"video_ptr": t, "keep_ptr": "*i64", "dout_ptr": t, "dw_ptr": "*fp32"}
        scalars = {
            "K": "i32",
            "T": "i32",
            "GRID_W": "i32",
            "WIDTH": "i32",
            "M_TOTAL": "i32",
            "TOKENS_PER_SPLIT": "i32",
            **strides,
        }
        consts = ["PATCH", "HAS_KEEP", "UPCAST", "BLOCK_M", "BLOCK_P", "BLOCK_W"]
    else:  # dtable
        ptrs = {"keep_ptr": "*i64", "dout_ptr": t, "g_ptr": "*fp32"}
        scalars = {"K": "i32", "WIDTH": "i32"}
        consts = ["HAS_KEEP", "BLOCK_M", "BLOCK_W"]
    return {**ptrs, **scalars, **{c: "constexpr" for c in consts}}


def jobs(which: str) -> list[dict]:
    """One dict per compilation: op, kernel, dtype, constexprs, num_warps, num_stages, and whether fixed."""
    from viclip.kernels import attention as A
    from viclip.kernels import patch_embed as P

    def meta(c) -> tuple[dict, int, int]:
        return dict(c.kwargs), c.num_warps, c.num_stages

    out = []

    def add(op, kernel, dtype, consts, blocks, warps, stages, fixed):
        out.append(
            {
                "op": op,
                "kernel": kernel,
                "dtype": dtype,
                "consts": {**consts, **blocks},
                "num_warps": warps,
                "num_stages": stages,
                "fixed": fixed,
            }
        )

    def attention_cases(dtypes, dims, masks, tuned):
        for dtype in dtypes:
            for d in dims:
                for mask in masks:
                    consts = {
                        "HEAD_DIM": d,
                        "HAS_MASK": mask,
                        "UPCAST": False,
                        "DOT_PREC": "ieee" if dtype == "fp32" else "tf32",
                        "BLOCK_D": max(16, 1 << (d - 1).bit_length()),
                    }
                    fp32 = dtype == "fp32"
                    for kernel in ("fwd", "dkdv", "dq"):
                        f = (A._CUDA_FIXED_FP32 if fp32 else A._CUDA_FIXED)[kernel]
                        configs = [meta(c) for c in A._cuda_configs(kernel, fp32)] if tuned else []
                        for blocks, w, s in configs:
                            add("attention", kernel, dtype, consts, blocks, w, s, False)
                        add(
                            "attention",
                            kernel,
                            dtype,
                            consts,
                            {"BLOCK_M": f["BLOCK_M"], "BLOCK_N": f["BLOCK_N"]},
                            f["num_warps"],
                            f["num_stages"],
                            True,
                        )

    def patch_cases(dtypes, patches, tuned):
        for dtype in dtypes:
            for patch in patches:
                for has_keep in (True, False):
                    consts = {"PATCH": patch, "HAS_KEEP": has_keep, "UPCAST": False}
                    for kernel, fixed in (("fwd", P._FWD_BLOCKS_CUDA), ("dw", P._DW_BLOCKS_CUDA)):
                        configs = [meta(c) for c in P._cuda_configs(kernel)] if tuned else []
                        for blocks, w, s in configs:
                            add("patch_embed", kernel, dtype, consts, blocks, w, s, False)
                        blocks = {k: v for k, v in fixed.items() if k.startswith("BLOCK")}
                        add("patch_embed", kernel, dtype, consts, blocks, fixed["num_warps"], fixed["num_stages"], True)
            d = P._DTABLE_BLOCKS_CUDA  # the scatter does not depend on the patch size
            add(
                "patch_embed",
                "dtable",
                dtype,
                {"HAS_KEEP": True},
                {"BLOCK_M": d["BLOCK_M"], "BLOCK_W": d["BLOCK_W"]},
                d["num_warps"],
                3,
                True,
            )

    if which in ("training", "all"):
        attention_cases(["bf16", "fp32"], [64], [False], tuned=True)
        patch_cases(["bf16"], [16, 14], tuned=True)
    if which in ("fixed", "all"):
        attention_cases(["fp32", "bf16", "fp16"], [24, 64, 128], [False, True], tuned=False)
        patch_cases(["fp32", "bf16", "fp16"], [16, 14], tuned=False)
    seen, unique = set(), []
    for j in out:  # `all` lists the training set's fixed configs twice
        key = json.dumps(j, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(j)
    return unique


def resource_usage(cubin: bytes) -> dict:
    """Registers, stack (spills) and static shared memory of the cubin's kernel, from cuobjdump."""
    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run(
            [str(tool), "--dump-resource-usage", f.name], capture_output=True, text=True, check=True
        ).stdout
    fields = dict(re.findall(r"(REG|STACK|LOCAL):(\d+)", text.split("Function", 1)[1]))
    return {"registers": int(fields["REG"]), "stack_bytes": int(fields["STACK"]), "local_bytes": int(fields["LOCAL"])}


def compile_one(job: dict, arch: int) -> dict:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from viclip.kernels import attention as A
    from viclip.kernels import patch_embed as P

    fns = {
        ("attention", "fwd"): A._fwd_kernel,
        ("attention", "dkdv"): A._bwd_dkdv_kernel,
        ("attention", "dq"): A._bwd_dq_kernel,
        ("patch_embed", "fwd"): P._patch_embed_fwd_kernel,
        ("patch_embed", "dw"): P._patch_embed_dw_kernel,
        ("patch_embed", "dtable"): P._patch_embed_dtable_kernel,
    }
    fn = fns[(job["op"], job["kernel"])]
    sig_of = attention_signature if job["op"] == "attention" else patch_signature
    signature = sig_of(job["kernel"], TRITON_DTYPE[job["dtype"]])
    result = {**job, "arch": arch}
    t0 = time.perf_counter()
    try:
        compiled = triton.compile(
            ASTSource(fn, signature, job["consts"]),
            target=GPUTarget("cuda", arch, 32),
            options={"num_warps": job["num_warps"], "num_stages": job["num_stages"]},
        )
    except Exception as exc:  # a lowering error is the finding, recorded with its message
        result.update(ok=False, error=f"{type(exc).__name__}: {str(exc)[:300]}")
        return result
    shared = compiled.metadata.shared
    result.update(
        ok=True,
        compile_s=round(time.perf_counter() - t0, 2),
        shared_bytes=shared,
        fits=shared <= SHARED_LIMIT[arch],
        **resource_usage(compiled.asm["cubin"]),
    )
    return result


def summarize(results: list[dict]) -> dict:
    """Per (op, kernel, dtype, arch, constexprs without blocks): configs that compile and fit."""
    groups: dict[str, dict] = {}
    for r in results:
        shape = {k: v for k, v in r["consts"].items() if not k.startswith("BLOCK")}
        key = f"{r['op']}.{r['kernel']} {r['dtype']} sm_{r['arch']} {json.dumps(shape, sort_keys=True)}"
        g = groups.setdefault(key, {"configs": 0, "fit": 0, "spill": 0, "fixed_fits": None})
        g["configs"] += 1
        fits = r["ok"] and r["fits"]
        g["fit"] += fits
        g["spill"] += r["ok"] and r["stack_bytes"] > 0
        if r["fixed"]:
            g["fixed_fits"] = fits
    return groups


def problems(results: list[dict]) -> list[str]:
    """Lowering errors, fixed configs that do not fit, and kernels with no fitting config."""
    out = [f"{r['op']}.{r['kernel']} {r['dtype']} {r['consts']}: {r['error']}" for r in results if not r["ok"]]
    out += [
        f"{key}: the fixed config does not fit" for key, g in summarize(results).items() if g["fixed_fits"] is False
    ]
    out += [f"{key}: no config fits" for key, g in summarize(results).items() if g["fit"] == 0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=("training", "fixed", "all"), default="training")
    ap.add_argument("--arch", type=int, nargs="+", default=[90, 80], choices=sorted(SHARED_LIMIT))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "kernels_compile.json")
    args = ap.parse_args()
    if os.environ.get("TRITON_INTERPRET") == "1":
        sys.exit("bench/compile_kernels.py compiles for the GPU: unset TRITON_INTERPRET")
    work = [(j, a) for j in jobs(args.set) for a in args.arch]
    print(f"compiling {len(work)} kernel variants with {args.workers} workers", flush=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(compile_one, *zip(*work)))
    import triton

    report = {
        "command": " ".join(["python", *sys.argv]),
        "triton": triton.__version__,
        "set": args.set,
        "wall_s": round(time.perf_counter() - t0, 1),
        "shared_limit_bytes": SHARED_LIMIT,
        "summary": summarize(results),
        "problems": problems(results),
        "results": results,
    }
    atomic_json(report, args.out)
    for line in report["problems"]:
        print("PROBLEM", line)
    print(f"{len(results)} compiled in {report['wall_s']} s, {len(report['problems'])} problems; wrote {args.out}")
    sys.exit(1 if report["problems"] else 0)


if __name__ == "__main__":
    main()
