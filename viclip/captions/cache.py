"""A caption cache on disk, which is also how a killed shard job resumes.

Layout: `<root>/<task>/<fingerprint digest>/` holds `fingerprint.json` (the
model, prompt and generation settings, for people) and parquet files of
(key, value) rows. The key hashes the clip (id, video content, window) and
the task's per-clip input (frame indices, or the frame captions a summary
reads), so a caption is reused exactly when everything it depends on is the
same. Every finished chunk of clips is one file written atomically: a job
killed at any moment loses at most the chunk in flight. At the end of a job
its chunk files are merged into one (`compact`), so a folder holds about one
file per shard.

Shard jobs running side by side write files under different names and never
touch each other's; a job reads only the key column of other files and the
values of files that hold keys it wants.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from viclip.io import atomic_path

log = logging.getLogger("viclip")


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:32]


def file_digest(path: str | Path) -> str:
    """Content hash of a video: a re-rendered or re-downloaded clip with other bytes is another clip."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class CaptionCache:
    def __init__(self, root: str | Path, task: str, fingerprint: dict, tag: str):
        self.dir = Path(root) / task / digest(fingerprint)
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "fingerprint.json"
        if not meta.exists():
            with atomic_path(meta) as tmp:
                tmp.write_text(json.dumps({"task": task, **fingerprint}, indent=2, sort_keys=True, default=str) + "\n")
        self.task, self.tag = task, tag
        self._written: list[Path] = []

    def lookup(self, keys: list[str]) -> dict[str, str]:
        """The cached values of those `keys` that have one."""
        wanted, found = set(keys), {}
        for f in sorted(self.dir.glob("*.parquet")):
            if f.name.startswith("."):  # another job's file still being written
                continue
            try:
                file_keys = set(pq.read_table(f, columns=["key"]).column("key").to_pylist())
                if file_keys & wanted:
                    table = pq.read_table(f).to_pandas()
                    table = table[table["key"].isin(wanted)]
                    found.update(zip(table["key"], table["value"]))
            except (OSError, ValueError, pa.ArrowException) as exc:  # an unreadable file is only lost work
                log.warning("caption cache: skipping unreadable %s (%s)", f, exc)
        return found

    def add(self, rows: dict[str, str]) -> None:
        if not rows:
            return
        path = self.dir / f"{self.tag}-{uuid.uuid4().hex[:12]}.parquet"
        with atomic_path(path) as tmp:
            pd.DataFrame({"key": list(rows), "value": list(rows.values())}).to_parquet(tmp, index=False)
        self._written.append(path)

    def compact(self) -> None:
        """Merge this tag's files (this run's chunks and any left by a killed run) into one."""
        parts = sorted(self.dir.glob(f"{self.tag}-*.parquet"))
        if len(parts) < 2:
            return
        frames = []
        for f in parts:
            try:
                frames.append(pd.read_parquet(f))
            except (OSError, ValueError, pa.ArrowException) as exc:
                log.warning("caption cache: skipping unreadable %s (%s)", f, exc)
        merged = pd.concat(frames, ignore_index=True).drop_duplicates("key")
        target = self.dir / f"{self.tag}-{uuid.uuid4().hex[:12]}.parquet"
        with atomic_path(target) as tmp:
            merged.to_parquet(tmp, index=False)
        # The merged file is in place before any part goes: a kill in between
        # leaves duplicates of equal values, never a loss.
        for f in parts:
            f.unlink(missing_ok=True)
        self._written = [target]
