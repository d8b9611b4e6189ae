"""What a training run reports: the jsonl log, throughput, peak memory, MFU, optional dashboards.

The jsonl log is the record (the report reads it); its lines also travel in
every resume point, so a resumed run rewrites the log up to its resume point
and then continues it, and the finished log has each step and epoch once.
TensorBoard and Weights & Biases are mirrors, used only when enabled in the
config and importable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import resource
import time
from pathlib import Path

import torch

from viclip.io import atomic_path

log = logging.getLogger("viclip")


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated by tensors on a GPU; the process's peak resident set on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class RunLog:
    """Append-only jsonl that starts from the lines a resume point carried (only the main rank writes)."""

    def __init__(self, path: str | Path, history: list[str], enabled: bool):
        self.path, self.lines, self.enabled = Path(path), list(history), enabled
        if enabled:
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(line + "\n" for line in self.lines))

    def write(self, record: dict) -> None:
        line = json.dumps(record)
        self.lines.append(line)
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(line + "\n")


class Window:
    """Clips and wall time since the last reset (for clips/s over a log interval or an epoch)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.clips, self.steps, self.t0 = 0, 0, time.perf_counter()

    def add(self, clips: int) -> None:
        self.clips += clips
        self.steps += 1

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def rate(self) -> float:
        return self.clips / max(self.seconds, 1e-9)


def throughput(
    clips_per_s: float,
    tokens_per_clip: int,
    flops_per_clip: float,
    peak_tflops: float,
    world: int,
    device: torch.device,
) -> dict:
    """tokens/s, and model FLOPs utilisation where a peak is configured and the work runs on GPUs."""
    out = {"clips_per_s": round(clips_per_s, 2), "tokens_per_s": round(clips_per_s * tokens_per_clip, 1)}
    if device.type == "cuda" and peak_tflops > 0:
        out["mfu"] = round(clips_per_s * flops_per_clip / (peak_tflops * 1e12 * world), 4)
    return out


def global_step(record: dict) -> int:
    """The optimizer steps done when a log line was written: `step` of a step line, `steps` of an epoch line."""
    return record["step"] if record["kind"] == "step" else record["steps"]


class Sinks:
    """Optional TensorBoard / W&B mirrors of the log's numbers."""

    def __init__(
        self,
        directory: Path,
        name: str,
        fingerprint: str,
        tensorboard: bool,
        wandb: bool,
        enabled: bool,
        history: list[str] = (),
    ):
        """history: the log.jsonl lines a resumed run starts with (read only to rewrite TensorBoard)."""
        self.tb = self.wb = None
        if not enabled:
            return
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("execution.tensorboard is on but tensorboard is not installed; not mirroring")
            else:
                # A killed attempt may have written events past its resume point, or lost some before it
                # (the writer buffers), so its event files are replaced by the resume point's log: then
                # TensorBoard shows exactly the lines of log.jsonl. (purge_step cannot do this reliably:
                # files are read in name order, and two attempts within a second can sort either way.)
                tb_dir = directory / "tensorboard"
                for old in tb_dir.glob("events.out.tfevents.*"):
                    old.unlink()
                self.tb = SummaryWriter(str(tb_dir))
                for record in map(json.loads, history):
                    self._tensorboard(global_step(record), record)
        if wandb:
            try:
                import wandb as wb
            except ImportError:
                log.warning("execution.wandb is on but wandb is not installed; not mirroring")
            else:
                run_id = hashlib.sha1(fingerprint.encode()).hexdigest()[:16]  # a resumed job continues the same run
                self.wb = wb.init(project="viclip-ablations", name=name, id=run_id, resume="allow")

    @staticmethod
    def _values(record: dict) -> dict:
        return {
            f"{record.get('kind', 'step')}/{k}": v
            for k, v in record.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }

    def _tensorboard(self, step: int, record: dict) -> None:
        for k, v in self._values(record).items():
            self.tb.add_scalar(k, v, step)

    def scalars(self, step: int, record: dict) -> None:
        if self.tb is not None:
            self._tensorboard(step, record)
        if self.wb is not None:  # W&B continues the same run id and drops steps it has already seen
            self.wb.log(self._values(record), step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wb is not None:
            self.wb.finish()
