"""Benchmark: pretraining step time on the CPU, video mask ratio 0.9 vs 0.

One step is what the training loop runs per optimizer step
(`viclip.train.loop.train_step`: forward of both towers, the contrastive
loss, backward, then AdamW), on a batch of `pretrain.batch_size` random clips
and captions. Median of N timed steps after warm-up steps, one CPU thread by
default (as the default workflow's pretraining jobs run); wall time, and
the process's CPU time, which other work on a shared machine disturbs less. Models: the
embedded default (`config.yaml`'s `model:` block) and a vision-heavier
variant of it (64-pixel frames: 512 patch tokens per clip instead of 128),
since the default's text tower (32 tokens) is a large share of its step.

Writes bench/results/pretrain_step.json with the machine and the command.

With `--device cuda`: ViCLIP-B/16 (configs/paper.yaml's model, random
weights, text tower frozen) in bf16 autocast on one GPU, each step timed
between CUDA synchronisations, with the Triton kernels and with the torch
path; adds TFLOP/s, peak memory and the first step's loss (the two paths
start from the same weights and data, so their losses should agree to bf16
precision). Writes bench/results/pretrain_step_cuda.json.

Usage: .venv/bin/python bench/pretrain_step.py [--steps 20] [--warmup 5] [--threads 1]
       python bench/pretrain_step.py --device cuda [--batch 32] [--steps 10] [--warmup 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import yaml  # noqa: E402

from viclip.io import atomic_json  # noqa: E402
from viclip.model.factory import initial_model  # noqa: E402
from viclip.model.flops import count, vision_tokens  # noqa: E402
from viclip.model.masking import random_keep_indices  # noqa: E402
from viclip.model.viclip import ViCLIPConfig  # noqa: E402
from viclip.train.distributed import Dist  # noqa: E402
from viclip.train.loop import train_step  # noqa: E402
from viclip.train.optim import adamw  # noqa: E402
from viclip.train.pretrain import Micro, PretrainTask  # noqa: E402

MASKS = (0.9, 0.0)


def step_times(
    cfg: ViCLIPConfig,
    ratio: float,
    batch: int,
    steps: int,
    warmup: int,
    train: dict,
    device: str = "cpu",
    precision: str = "fp32",
) -> dict:
    """Wall and CPU seconds of each timed step, the first step's loss, and (CUDA) the peak memory."""
    model = initial_model(cfg, 0).to(device)
    task = PretrainTask(model, None, None, [], [], 0)
    optimizer = adamw(model, train["lr"], train["weight_decay"], train["betas"])
    g = torch.Generator().manual_seed(0)
    video = torch.randn(batch, cfg.num_frames, 3, cfg.image_size, cfg.image_size, generator=g).to(device)
    ids = torch.randint(1, cfg.vocab_size - 2, (batch, cfg.context_length), generator=g).to(device)
    n_tokens = vision_tokens(cfg, 0.0)["patch_tokens"]
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16")
    cuda = device == "cuda"
    wall, cpu, first_loss = [], [], None
    model.train()
    for i in range(warmup + steps):
        keep = (
            random_keep_indices(batch, n_tokens, ratio, g, device) if ratio > 0 else None
        )  # drawn by the loader in training
        if i == warmup and cuda:
            torch.cuda.reset_peak_memory_stats()
        if cuda:
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        loss = train_step(task.module, [Micro((video, ids, keep))], task, Dist(), autocast, cached=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if i == 0:
            first_loss = float(loss)
        if i >= warmup:
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return {
        "wall": wall,
        "cpu": cpu,
        "first_loss": first_loss,
        "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }


def measure(
    name: str,
    model: dict,
    batch: int,
    steps: int,
    warmup: int,
    train: dict,
    device: str = "cpu",
    precision: str = "fp32",
) -> dict:
    cfg = ViCLIPConfig.from_dict(model)
    out = {"model": {k: v for k, v in model.items()}, "batch_size": batch, "device": device, "precision": precision}
    for ratio in MASKS:
        r = step_times(cfg, ratio, batch, steps, warmup, train, device, precision)
        t, c = r["wall"], r["cpu"]
        flops = count(cfg, ratio)["flops_train_step_per_pair"] * batch
        out[f"mask_{ratio}"] = {
            "step_ms_median": round(1e3 * statistics.median(t), 2),
            "step_ms_min": round(1e3 * min(t), 2),
            "step_ms_max": round(1e3 * max(t), 2),
            "cpu_ms_median": round(1e3 * statistics.median(c), 2),
            "clips_per_s": round(batch / statistics.median(t), 1),
            "vision_tokens": vision_tokens(cfg, ratio)["tokens_vision"],
            "flops_per_step": flops,
            "tflops": round(flops / statistics.median(t) / 1e12, 2),
            "first_step_loss": r["first_loss"],
            "peak_mem_mb": r["peak_mem_mb"],
        }
        print(f"{name}: mask {ratio}: {out[f'mask_{ratio}']['step_ms_median']:.1f} ms/step", flush=True)
    masked, full = out["mask_0.9"], out["mask_0.0"]
    out["speedup_masked"] = round(full["step_ms_median"] / masked["step_ms_median"], 2)
    out["speedup_masked_cpu_time"] = round(full["cpu_ms_median"] / masked["cpu_ms_median"], 2)
    out["flops_ratio_unmasked_over_masked"] = round(full["flops_per_step"] / masked["flops_per_step"], 2)
    return out


def measure_cuda(args) -> dict:
    """ViCLIP-B/16 (random weights) on one GPU in bf16: Triton kernels vs the torch path, masked vs not."""
    config = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
    model = {**config["model"], "init": "random", "clip_pretrained": ""}
    train = config["pretrain"]
    out = {}
    for kernels in ("triton", "torch"):
        out[kernels] = measure(
            f"{model['name']} {kernels}",
            {**model, "kernels": kernels},
            args.batch,
            args.steps,
            args.warmup,
            train,
            "cuda",
            "bf16",
        )
    out["triton_over_torch_step"] = {
        m: round(out["torch"][m]["step_ms_median"] / out["triton"][m]["step_ms_median"], 2)
        for m in (f"mask_{r}" for r in MASKS)
    }
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "config.yaml"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: ViCLIP-B/16 from configs/paper.yaml in bf16, Triton kernels vs torch",
    )
    ap.add_argument("--batch", type=int, default=32, help="clips per step on cuda (the CPU run uses the config's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench/pretrain_step.py --device cuda needs a CUDA GPU")
    out = args.out or str(
        REPO / "bench" / "results" / ("pretrain_step.json" if args.device == "cpu" else "pretrain_step_cuda.json")
    )
    torch.set_num_threads(args.threads)
    results = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip(),
        "machine": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "steps": args.steps,
        "warmup": args.warmup,
        "goal": "masked (0.9) step at least 5x faster than unmasked",
    }
    if args.device == "cuda":
        results["machine"]["gpu"] = torch.cuda.get_device_name()
        results["viclip_b16"] = measure_cuda(args)
    else:
        config = yaml.safe_load(Path(args.config).read_text())
        model, train = config["model"], config["pretrain"]
        batch = train["batch_size"]
        results["default"] = measure("default", model, batch, args.steps, args.warmup, train)
        results["vision_heavy"] = measure(
            "vision_heavy", {**model, "image_size": 64}, batch, args.steps, args.warmup, train
        )
    atomic_json(results, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
