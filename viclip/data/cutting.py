"""Cutting a clip out of a video with ffmpeg, and probing the result before it counts.

Clips are re-encoded to a fixed short side and frame rate (H.264, yuv420p,
no audio) into a temp file that is renamed into place only after it decodes
with the expected duration and frame count (within one output frame).

A clip shows what a player shows: output frame k is the source frame on
screen at start + k/fps (the last one whose timestamp is <= that time), at
the display aspect (sample aspect ratio applied) and orientation (ffmpeg
applies the rotation metadata when it re-encodes, and the clip carries none).
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from viclip.io import atomic_path

# Bump when the same source and settings give another clip: ledger records of an older cut are stale,
# so their clips are cut again. 2: the frame on screen at the start, the display aspect, one frame of slack.
CUT_VERSION = 2


class CutError(RuntimeError):
    """A clip could not be cut or failed its probe; `source_corrupt` when the input itself does not decode."""

    def __init__(self, message: str, source_corrupt: bool = False):
        super().__init__(message)
        self.source_corrupt = source_corrupt


@dataclass(frozen=True)
class Probe:
    n_frames: int
    fps: float
    width: int
    height: int
    duration_s: float

    def asdict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """A system `ffmpeg` on PATH when there is one, else the binary shipped by imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def clip_frames(duration_s: float, fps: float) -> int:
    """Frames in a clip of `duration_s`: the nearest whole number, so the clip is within half a frame of it."""
    return max(1, math.floor(duration_s * fps + 0.5))


def cut_command(src: Path, dst: Path, start_s: float, duration_s: float, short_side: int, fps: float) -> list[str]:
    """The ffmpeg argument list (no shell) that cuts and re-encodes one clip."""
    s = int(short_side)
    # Short side to `s` at the display aspect `dar` (stored size x sample aspect ratio), long side
    # to the nearest even size (yuv420p); only then are the pixels square. Quotes protect if()'s commas.
    long_side = "max(2,2*round({s}*{r}/2))"
    w = f"if(gte(dar,1),{long_side.format(s=s, r='dar')},{s})"
    h = f"if(gte(dar,1),{s},{long_side.format(s=s, r='1/dar')})"
    # -ss before -i without accurate seeking decodes from the keyframe at or before the start and keeps
    # every frame (times shifted by -start): the frame on screen at the start is still there. (Accurate
    # seeking drops it when its timestamp lies before the start, and the clip starts one source frame late.)
    # fps with round=up puts a frame at time p on output tick ceil(p * fps), so tick k shows the last frame
    # with p <= k / fps, the one a player shows then; start_time=0 drops the earlier ones.
    return [
        ffmpeg_exe(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-ss",
        f"{start_s:.6f}",
        "-noaccurate_seek",
        "-i",
        f"file:{src.resolve()}",
        # A frame count, not -t: ffmpeg 9 drops a last frame that ends after -t, so -t gives floor(d * fps).
        "-frames:v",
        str(clip_frames(duration_s, fps)),
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-vf",
        f"fps={fps:g}:start_time=0:round=up,scale=w='{w}':h='{h}',setsar=1,format=yuv420p",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-threads",
        "1",
        # bit-exact muxing and no copied metadata: the same input gives the same bytes
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        f"file:{dst.resolve()}",
    ]


def is_decodable(path: Path) -> bool:
    """Whether the file opens and its first video frame decodes (PyAV)."""
    import av

    try:
        with av.open(str(path)) as container:
            for _ in container.decode(video=0):
                return True
    except Exception:  # PyAV raises many types for bad files (InvalidDataError, EOFError, ...)
        return False
    return False


def probe_video(path: Path) -> Probe:
    """Decode every frame with PyAV and count them with decord; both decoders must agree."""
    import av

    from viclip.data.video import VideoError, count_frames

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 0)
            n, width, height = 0, 0, 0
            for frame in container.decode(video=0):
                n += 1
                width, height = frame.width, frame.height
            duration = float(container.duration) / 1e6 if container.duration else (n / fps if fps else 0.0)
    except Exception as exc:
        raise CutError(f"{path}: does not decode ({type(exc).__name__}: {exc})") from exc
    if n == 0 or fps <= 0:
        raise CutError(f"{path}: no video frames")
    try:
        n_decord = count_frames(path)
    except VideoError as exc:
        raise CutError(str(exc)) from exc
    if n_decord != n:
        raise CutError(f"{path}: decord counts {n_decord} frames, PyAV decodes {n}")
    return Probe(n_frames=n, fps=fps, width=width, height=height, duration_s=round(duration, 4))


def check_probe(probe: Probe, duration_s: float, fps: float, tolerance_s: float = 0.0) -> None:
    """Raise CutError unless the clip has the expected frame rate, and its duration and frame count
    are within one output frame (plus `tolerance_s`) of the request."""
    expected_frames = duration_s * fps
    if abs(probe.fps - fps) > 1e-3 * fps:
        raise CutError(f"frame rate {probe.fps:g}, expected {fps:g}")
    # A clip is a whole number of frames (clip_frames), hence the one frame of slack; the 1e-4 s covers
    # the probe's rounding. A source that ends early gives a short clip, which fails here.
    slack = tolerance_s + 1 / fps
    if abs(probe.duration_s - duration_s) > slack + 1e-4:
        raise CutError(
            f"duration {probe.duration_s:.3f} s, expected {duration_s:.3f} s (within one frame + {tolerance_s} s)"
        )
    if abs(probe.n_frames - expected_frames) > slack * fps + 1e-6:
        raise CutError(f"{probe.n_frames} frames, expected about {expected_frames:.1f}")


def cut_clip(
    src: Path,
    dst: Path,
    start_s: float,
    end_s: float,
    short_side: int,
    fps: float,
    tolerance_s: float = 0.0,
    timeout_s: float = 600.0,
) -> Probe:
    """Cut [start_s, end_s] of `src` into `dst` (atomically) and return its probe.

    Raises CutError: with `source_corrupt` when `src` itself does not decode,
    otherwise when ffmpeg fails or the result fails its probe (for example a
    clip that ends after the video does).
    """
    src, dst = Path(src), Path(dst)
    duration = float(end_s) - float(start_s)
    if duration <= 0:
        raise CutError(f"{src}: empty clip [{start_s}, {end_s}]")
    with atomic_path(dst, suffix=".mp4") as tmp:
        cmd = cut_command(src, tmp, float(start_s), duration, short_side, fps)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise CutError(f"{src}: ffmpeg took over {timeout_s:.0f} s") from exc
        try:
            if proc.returncode != 0:
                tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
                raise CutError(f"{src}: ffmpeg exited with {proc.returncode}: {tail}")
            probe = probe_video(tmp)
            check_probe(probe, duration, fps, tolerance_s)
        except CutError as exc:
            if not is_decodable(src):
                raise CutError(f"{src}: source video does not decode ({exc})", source_corrupt=True) from exc
            raise CutError(f"{src} [{start_s:.3f}, {end_s:.3f}] s: {exc}") from exc
    return probe
