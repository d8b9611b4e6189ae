"""Benchmark: clips/s of the captioning stage with tiny random-weight models on CPU.

Times, on rendered clips shaped like the paper configs' downloads (10 s at
8 fps, 256x256), with the tiny BLIP-2 (coarse), GIT (frames) and T5
(summarizer) of viclip/captions/tiny.py:

- image captioning with frame sharing: one pass runs both captioners, each
  clip decoded once (the hf backend's caption_images rule);
- image captioning without sharing: a coarse pass, then a frames pass, each
  decoding every clip (share_frames: false: rules caption_coarse + caption_frames);
- decoding alone, both ways (what sharing saves);
- the summary stage (batched generation over the frame captions).

Models are loaded before timing and the cache is off, so every run
captions everything; each figure is the median of `--repeats` runs. The
tiny models make decoding a large share of the time; with real models
on a GPU the share, and so the gain, is smaller.

Usage: .venv/bin/python bench/captions.py [--clips 24] [--repeats 3] [--threads 1] [--chunk 8] [--out bench/results/captions.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np
import torch

from viclip.captions import decode, tiny
from viclip.captions.base import Clip
from viclip.captions.coarse import coarse_task, middle_frame
from viclip.captions.frames import frames_table, frames_task
from viclip.captions.hf import HFImageCaptioner, HFSummarizer
from viclip.captions.settings import ModelSettings, summarizer_settings
from viclip.captions.shards import Runner, caption_images
from viclip.captions.summary import summary_captions
from viclip.data.video import sample_indices, write_mp4
from viclip.io import atomic_json

FRAMES, SIZE, FPS, PER_CLIP = 80, 256, 8, 8


def render(root: Path, n: int) -> list[Clip]:
    """Moving noise blobs: enough texture that H.264 has real work, like real footage."""
    rng = np.random.default_rng(0)
    clips = []
    for i in range(n):
        base = rng.integers(0, 256, (SIZE // 8, SIZE // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        frames = np.stack([np.roll(base, 2 * t, axis=1) for t in range(FRAMES)])
        path = root / f"clip{i:03d}.mp4"
        write_mp4(path, frames, fps=FPS)
        clips.append(Clip(f"clip{i:03d}", str(path), FRAMES))
    return clips


def timed(fns: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each function over `repeats` rounds, after one untimed warm-up round.

    The functions take turns within a round, so load from other processes
    drifting over time hits the compared variants alike.
    """
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--decode-workers", type=int, default=2)
    ap.add_argument(
        "--chunk", type=int, default=8, help="clips per chunk (decoded while the previous one is captioned)"
    )
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "captions.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = tiny.build(tmp / "models", ("blip2", "git", "t5"))
        clips = render(tmp, args.clips)
        gen = {"max_new_tokens": 10}
        coarse = HFImageCaptioner(ModelSettings(model=str(models["blip2"]), **gen), 16, cpu)
        frames = HFImageCaptioner(ModelSettings(model=str(models["git"]), **gen), 64, cpu)
        summ = HFSummarizer(summarizer_settings({"model": str(models["t5"]), **gen}, "bench"), 16, cpu)
        for m in (coarse, frames, summ):
            m.load()
        run = Runner(None, chunk=args.chunk, decode_workers=args.decode_workers)
        n = len(clips)

        shared_tasks = [coarse_task(coarse), frames_task(frames, PER_CLIP)]
        mid, sampled = middle_frame(FRAMES), sample_indices(FRAMES, PER_CLIP, "middle")
        union = np.unique(np.concatenate([mid, sampled]))

        def decode_all(*index_sets):
            # as the driver decodes: chunk by chunk, `decode_workers` threads
            for idx in index_sets:
                chunks = [
                    (clips[i : i + args.chunk], [idx] * len(clips[i : i + args.chunk])) for i in range(0, n, args.chunk)
                ]
                for _ in decode.prefetch(chunks, args.decode_workers):
                    pass

        t = timed(
            {
                "shared": lambda: caption_images(clips, shared_tasks, run),
                "separate": lambda: (
                    caption_images(clips, [coarse_task(coarse)], run),
                    caption_images(clips, [frames_task(frames, PER_CLIP)], run),
                ),
                "decode_shared": lambda: decode_all(union),
                "decode_separate": lambda: decode_all(mid, sampled),
            },
            args.repeats,
        )
        t_shared, t_separate, t_dec_shared, t_dec_separate = (
            t["shared"],
            t["separate"],
            t["decode_shared"],
            t["decode_separate"],
        )
        table = frames_table(clips, caption_images(clips, shared_tasks, run)["frames"])
        t_summary = timed({"summary": lambda: summary_captions(table, summ, run)}, args.repeats)["summary"]

    result = {
        "what": "captioning stage, tiny random-weight models (viclip/captions/tiny.py), CPU, cache off",
        "clips": n,
        "clip": {"frames": FRAMES, "fps": FPS, "size": SIZE, "codec": "h264"},
        "frames_per_clip": PER_CLIP,
        "max_new_tokens": gen["max_new_tokens"],
        "models": {
            "coarse": "tiny BLIP-2 (batch 16)",
            "frames": "tiny GIT (batch 64)",
            "summarizer": "tiny T5 (batch 16)",
        },
        "torch_threads": args.threads,
        "decode_workers": args.decode_workers,
        "chunk_clips": args.chunk,
        "repeats": args.repeats,
        "image_captioning": {
            "shared_frames": {"seconds": t_shared, "clips_per_s": n / t_shared},
            "separate_jobs": {"seconds": t_separate, "clips_per_s": n / t_separate},
            "speedup": t_separate / t_shared,
        },
        "decode_only": {
            "shared_frames": {"seconds": t_dec_shared, "clips_per_s": n / t_dec_shared},
            "separate_jobs": {"seconds": t_dec_separate, "clips_per_s": n / t_dec_separate},
        },
        "summary": {"seconds": t_summary, "clips_per_s": n / t_summary},
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m_at_end": os.getloadavg()[0],
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }
    atomic_json(result, args.out)
    ic = result["image_captioning"]
    print(
        f"image captioning: shared {ic['shared_frames']['clips_per_s']:.1f} clips/s, "
        f"separate {ic['separate_jobs']['clips_per_s']:.1f} clips/s (x{ic['speedup']:.2f}); "
        f"summary {result['summary']['clips_per_s']:.1f} clips/s -> {args.out}"
    )


if __name__ == "__main__":
    main()
