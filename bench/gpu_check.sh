#!/usr/bin/env bash
# The prepared GPU check: one command for a short GPU loan (about 8 minutes of work).
#   1. bench/kernels.py: the Triton kernels checked against torch on the GPU (odd shapes, fp32/bf16/fp16,
#      then the autotuned configs), then timed against SDPA's flash backend and the torch paths;
#   2. bench/pretrain_step.py --device cuda: a ViCLIP-B/16 training step in bf16, Triton vs torch,
#      mask 0.9 vs 0 (it reuses the autotuned configs that step 1 cached on disk).
# Every CUDA run also checks the kernels on one small shape on first use (viclip/kernels/selfcheck.py); this is the full check.
# Needs a python with torch and triton that see the GPU; the repo itself goes on PYTHONPATH, so the
# library does not have to be installed there. Exit status: non-zero if a check or a step failed.
#
# Usage, from the repository root:  bash bench/gpu_check.sh [OUT_DIR]   (default: bench/results)
set -uo pipefail
out=${1:-bench/results}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$py" -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton",
triton.__version__, "gpu", torch.cuda.get_device_name())' || exit 1

status=0
timeout 420 "$py" bench/kernels.py --out "$out/kernels.json" 2>&1 | tee "$out/kernels.log" || status=1
timeout 150 "$py" bench/pretrain_step.py --device cuda --steps 10 --warmup 3 \
    --out "$out/pretrain_step_cuda.json" 2>&1 | tee "$out/pretrain_step_cuda.log" || status=1
echo "gpu_check: $([ $status = 0 ] && echo passed || echo FAILED); results in $out"
exit $status
