"""Append-only jsonl ledgers: one line per event, durable line by line.

A run that is killed loses at most the lines it had not yet written; the
next run reads the latest record per key and carries on from there.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("viclip")


class Ledger:
    """Records keyed by `key` (e.g. clip_id) in `path`; later lines supersede earlier ones."""

    def __init__(self, path: str | Path, key: str = "clip_id"):
        self.path = Path(path)
        self.key = key
        self._lock = threading.Lock()
        self._file = None

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record in file order, streamed. A torn last line (a killed writer) is skipped."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            for i, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                except ValueError as exc:
                    if not raw.endswith(b"\n"):  # the last line, cut short by a killed run
                        log.warning("%s: ignoring torn last line %d (%d bytes)", self.path, i, len(raw))
                        continue
                    raise ValueError(f"{self.path}: line {i} is not JSON ({exc})") from exc
                if not isinstance(rec, dict) or self.key not in rec:
                    raise ValueError(f"{self.path}: line {i} has no {self.key!r} field")
                yield rec

    def latest(self, keys: set[str] | None = None) -> dict[str, dict[str, Any]]:
        """The last record per key (of `keys` only, when given), with `n_attempts` (how many records it has)."""
        out: dict[str, dict[str, Any]] = {}
        counts: dict[str, int] = {}
        for rec in self.records():
            k = rec[self.key]
            if keys is not None and k not in keys:
                continue
            counts[k] = counts.get(k, 0) + 1
            out[k] = rec
        for k, rec in out.items():
            rec["n_attempts"] = counts[k]
        return out

    def open(self) -> Ledger:
        """Open for appending; a torn tail left by a killed run is cut off first."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._cut_torn_tail()
        self._file = open(self.path, "a", encoding="utf-8")
        return self

    def _cut_torn_tail(self) -> None:
        # Appending after a torn line would glue two records into one bad line.
        with open(self.path, "r+b") as f:
            end = f.seek(0, os.SEEK_END)
            pos = end
            while pos > 0:
                step = min(65536, pos)
                f.seek(pos - step)
                chunk = f.read(step)
                if pos == end and chunk.endswith(b"\n"):
                    return
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    pos = pos - step + nl + 1
                    break
                pos -= step
            f.truncate(pos)
            f.flush()
            os.fsync(f.fileno())
        log.warning("%s: removed a torn last line (%d bytes) left by an interrupted run", self.path, end - pos)

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write one record (with `time` added) and fsync it before returning."""
        if self._file is None:
            raise RuntimeError(f"{self.path}: ledger is not open for writing")
        record = {**record, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
        return record

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Ledger:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
