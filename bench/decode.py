"""Benchmark: decoding clips on the fly for training, decord vs PyAV, with bad files in the corpus.

Renders a corpus of H.264 mp4 clips (moving shapes on a gradient, light
noise) into a temp dir, breaks a fraction of them (random bytes, cut in
half, empty), then runs the training loader (`VideoClipSource.load`, train
mode: 8 random frames in 8 segments, RandomResizedCrop to 224, flip,
normalise) over the whole corpus once per backend and worker count, checking
that every bad file is ledgered and that nothing crashes. Speed is measured
on passes over the good clips only (median of --repeats), single torch
thread, so the worker count is the only parallelism; single-thread decode
only and transform only rates show where the time goes. Writes
bench/results/decode.json.

Usage: .venv/bin/python bench/decode.py [--clips 200] [--workers 1 2] [--out bench/results/decode.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np
import torch

from viclip.data import transforms
from viclip.data.loader import VideoClipSource, read_ledger
from viclip.data.video import Video, sample_indices, write_mp4
from viclip.io import atomic_json

BAD_KINDS = ("corrupt", "truncated", "empty")


def render(n_frames: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Three coloured boxes moving over a colour gradient, with mild pixel noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    bg = c0 + (c1 - c0) * ((xx + yy) / (h + w))[..., None]
    boxes = [
        (
            rng.uniform(0, w),
            rng.uniform(0, h),
            rng.uniform(-3, 3),
            rng.uniform(-2, 2),
            int(rng.integers(w // 8, w // 3)),
            int(rng.integers(h // 8, h // 3)),
            rng.uniform(0, 255, 3),
        )
        for _ in range(3)
    ]
    noise = rng.normal(0, 3, (4, h, w, 3)).astype(np.float32)  # a few noise fields reused: rendering stays cheap
    out = np.empty((n_frames, h, w, 3), np.uint8)
    for t in range(n_frames):
        f = bg.copy()
        for x0, y0, vx, vy, bw, bh, col in boxes:
            x, y = int(x0 + vx * t) % w, int(y0 + vy * t) % h
            f[y : y + bh, x : x + bw] = col
        out[t] = np.clip(f + noise[t % len(noise)], 0, 255)
    return out


def make_corpus(root: Path, args) -> tuple[list[Path], list[int]]:
    rng = np.random.default_rng(args.seed)
    paths = []
    for i in range(args.clips):
        path = root / f"{i:04d}.mp4"
        write_mp4(path, render(args.frames, args.height, args.width, rng), fps=args.fps)
        paths.append(path)
    bad = sorted(rng.choice(args.clips, int(round(args.bad_fraction * args.clips)), replace=False).tolist())
    for k, i in enumerate(bad):
        kind, data = BAD_KINDS[k % 3], paths[i].read_bytes()
        paths[i].write_bytes(
            rng.bytes(len(data)) if kind == "corrupt" else data[: len(data) // 2] if kind == "truncated" else b""
        )
    return paths, bad


def train_pass(src: VideoClipSource, idx: np.ndarray, batch: int, seed: int) -> tuple[float, float, set[int]]:
    """One epoch over `idx`: (wall seconds, CPU seconds of this process, clips delivered)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(idx)
    used_all: set[int] = set()
    t0, c0 = time.perf_counter(), time.process_time()
    for b in range(0, len(order), batch):
        x, used = src.load(order[b : b + batch], True, rng)
        assert x.shape[0] == len(order[b : b + batch]) and bool(torch.isfinite(x).all())
        used_all.update(used.tolist())
    return time.perf_counter() - t0, time.process_time() - c0, used_all


def decode_only(paths: list[Path], backend: str, num_frames: int, seed: int) -> tuple[dict, list[np.ndarray]]:
    """Opening a file and decoding 8 random frames, no transform, one thread: rates, and the frames."""
    rng = np.random.default_rng(seed)
    out = []
    t0, c0 = time.perf_counter(), time.process_time()
    for p in paths:
        with Video(p, backend) as v:
            out.append(v.get(sample_indices(v.n_frames, num_frames, "random", rng)))
    return rates(len(paths), time.perf_counter() - t0, time.process_time() - c0), out


def transform_only(clips: list[np.ndarray], image_size: int, seed: int) -> dict:
    """The training transform alone (crop, bicubic resize, flip, normalise), one thread."""
    rng = np.random.default_rng(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    for c in clips:
        x = transforms.train_clip(torch.from_numpy(c).movedim(-1, -3), image_size, rng, flip=True)
        transforms.normalize(x[None])
    return rates(len(clips), time.perf_counter() - t0, time.process_time() - c0)


def rates(n: int, wall: float, cpu: float) -> dict:
    """Wall-clock clips/s, and CPU ms per clip (what contention on a shared machine distorts least)."""
    return {"clips_per_s": round(n / wall, 1), "cpu_ms_per_clip": round(1000 * cpu / n, 1)}


def versions() -> dict:
    import av
    import decord

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "decord": decord.__version__,
        "av": av.__version__,
        "numpy": np.__version__,
        "git_commit": commit,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--bad-fraction", type=float, default=0.1)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--fps", type=int, default=8)
    ap.add_argument("--num-frames", type=int, default=8)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--backends", nargs="+", default=["decord", "pyav"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "decode.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="decode-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        paths, bad = make_corpus(root, args)
        render_s = time.perf_counter() - t0
        good = np.array(sorted(set(range(args.clips)) - set(bad)))
        sizes = [p.stat().st_size for i, p in enumerate(paths) if i not in bad]
        print(
            f"rendered {args.clips} clips ({len(bad)} broken) in {render_s:.1f} s, "
            f"mean {np.mean(sizes) / 1024:.1f} KiB per good clip",
            flush=True,
        )
        decode_only_rate, decoded = {}, []
        for b in args.backends:
            decode_only_rate[b], decoded = decode_only([paths[i] for i in good], b, args.num_frames, args.seed)
        transform_rate = transform_only(decoded, args.image_size, args.seed)
        del decoded
        print(f"one thread: decode only {decode_only_rate}; transform only {transform_rate}", flush=True)
        for backend in args.backends:
            for workers in args.workers:
                ledger = root / f"failures-{backend}-{workers}.tsv"
                with VideoClipSource(
                    paths,
                    args.num_frames,
                    args.image_size,
                    augment=True,
                    flip=True,
                    backend=backend,
                    workers=workers,
                    ledger=ledger,
                    max_fail_fraction=0.15,
                    seed=args.seed,
                ) as src:
                    full_s, _, used = train_pass(src, np.arange(args.clips), args.batch_size, args.seed)
                    ledgered = sorted(read_ledger(ledger)["index"].tolist())
                    passes = [train_pass(src, good, args.batch_size, args.seed + 1 + r) for r in range(args.repeats)]
                times = [p[0] for p in passes]
                rate = len(good) / statistics.median(times)
                run = {
                    "backend": backend,
                    "workers": workers,
                    "good_clips_per_s": round(rate, 1),
                    "good_cpu_ms_per_clip": round(1000 * statistics.median(p[1] for p in passes) / len(good), 1),
                    "good_pass_seconds": [round(t, 3) for t in times],
                    "full_pass_seconds": round(full_s, 3),
                    "full_pass_clips": args.clips,
                    "loadavg_1min": round(os.getloadavg()[0], 2),
                    "ledgered": len(ledgered),
                    "all_bad_ledgered": ledgered == bad,
                    "bad_clips_delivered": len(used & set(bad)),
                    "distinct_clips_delivered": len(used),
                }
                runs.append(run)
                print(
                    f"{backend:6s} workers={workers}: {rate:6.1f} clips/s, {run['good_cpu_ms_per_clip']} CPU ms/clip "
                    f"on good files; full pass {args.clips} clips in {full_s:.2f} s, {len(ledgered)} ledgered (all bad: {ledgered == bad})",
                    flush=True,
                )
    result = {
        "what": "training loader (VideoClipSource.load, train mode) over rendered mp4s with broken files",
        "command": " ".join([os.path.relpath(sys.executable, REPO), *sys.argv]),
        "corpus": {
            "clips": args.clips,
            "bad": len(bad),
            "bad_kinds": list(BAD_KINDS),
            "width": args.width,
            "height": args.height,
            "frames": args.frames,
            "fps": args.fps,
            "codec": "H.264 (libx264 qp 12, yuv420p)",
            "mean_good_file_bytes": int(np.mean(sizes)),
            "render_seconds": round(render_s, 1),
        },
        "loader": {
            "num_frames": args.num_frames,
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "augment": True,
            "flip": True,
            "fallback": True,
            "torch_threads": 1,
            "repeats": args.repeats,
        },
        "decode_only_1_thread": decode_only_rate,
        "transform_only_1_thread": transform_rate,
        "runs": runs,
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "processor": platform.processor() or platform.machine(),
            "platform": platform.platform(),
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            "note": "shared machine: other jobs ran alongside, see loadavg",
        },
        "versions": versions(),
    }
    atomic_json(result, args.out)
    print(f"wrote {args.out}")
    if not all(r["all_bad_ledgered"] and r["bad_clips_delivered"] == 0 for r in runs):
        sys.exit("some bad file was not ledgered or was delivered")


if __name__ == "__main__":
    main()
