"""Per-job set-up shared by the workflow's scripts: logging, threads, seeding."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def device() -> torch.device:
    """CUDA when present (cluster jobs), else the CPU; VICLIP_DEVICE overrides."""
    import torch

    name = os.environ.get("VICLIP_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def setup_job(log_path: str | Path, threads: int = 1) -> logging.Logger:
    """Send this process's output to `log_path` and pin the CPU thread count.

    Progress bars (tqdm writes to stderr) land in the log too, so a user can
    `tail -f` a running job's log.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(log_path, "w", buffering=1)
    sys.stdout = sys.stderr = stream
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(stream=stream, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    return logging.getLogger("viclip")
