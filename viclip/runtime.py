"""Per-job set-up shared by the workflow's scripts: logging, threads, seeding."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def device() -> torch.device:
    """CUDA when present (cluster jobs), else the CPU; VICLIP_DEVICE overrides."""
    import torch

    name = os.environ.get("VICLIP_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def setup_job(log_path: str | Path, threads: int = 1) -> logging.Logger:
    """Send this process's output to `log_path` and pin the CPU thread count.

    Progress (viclip.progress) lands in the log as one plain line per
    interval, so a user can `tail -f` or grep a running job's log. The log
    holds no carriage returns: one written by anything else (a third-party
    progress bar) ends the line instead, and a log record never continues a
    line that such output left open.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stream = LineLog(open(log_path, "w", buffering=1))
    sys.stdout = sys.stderr = stream
    # torch takes its thread count from OMP_NUM_THREADS when first imported: jobs that never import it
    # (data preparation, the report) are spared its 2 s start-up
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    handler = _RecordHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    return logging.getLogger("viclip")


def as_json(obj: Any) -> str:
    """`obj` (metrics, counts, a summary) as one line of JSON with sorted keys, for a log message."""
    return json.dumps(obj, sort_keys=True, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    item = getattr(obj, "item", None)  # numpy and torch scalars
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(obj)


class LineLog(io.TextIOBase):
    """A text file that never receives a carriage return: each one ends the current line
    (or is dropped at the start of a line), so redraws become separate lines."""

    def __init__(self, file):
        self.file = file
        self.at_line_start = True

    def write(self, s: str) -> int:
        out, bol = [], self.at_line_start
        for i, piece in enumerate(s.replace("\r\n", "\n").split("\r")):
            if i and not bol:
                out.append("\n")
                bol = True
            if piece:
                out.append(piece)
                bol = piece.endswith("\n")
        if out:
            self.file.write("".join(out))
        self.at_line_start = bol
        return len(s)

    def end_line(self) -> None:
        """Start a new line unless the last write ended one."""
        if not self.at_line_start:
            self.write("\n")

    def flush(self) -> None:
        self.file.flush()

    def fileno(self) -> int:
        return self.file.fileno()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            super().close()  # flushes first
            self.file.close()

    @property
    def buffer(self):
        return self.file.buffer

    @property
    def encoding(self) -> str:
        return self.file.encoding

    @property
    def errors(self) -> str | None:
        return self.file.errors


class _RecordHandler(logging.StreamHandler):
    """A StreamHandler whose records each start on a line of their own."""

    def emit(self, record: logging.LogRecord) -> None:
        end_line = getattr(self.stream, "end_line", None)
        if end_line is not None:
            end_line()
        super().emit(record)
