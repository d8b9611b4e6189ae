"""Download shards: which clips a shard job fetches, its ledger's name, and gathering the shards' manifests.

A shard is a contiguous run of the clip table (the subset, in its order), so the
shards' manifests in shard order are the manifest one unsharded run writes. All
shards cut into the same `videos/` folder and each appends to its own ledger,
`ledger.s{k}of{n}.jsonl`: shard jobs never write the same file, and a rerun of
one shard resumes from its own ledger. Ledgers of another shard count (or the
unsharded `ledger.jsonl`) are read too, so changing `download.shards` refetches
nothing that is already cut.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

SHARD_LEDGER = re.compile(r"ledger\.s(\d+)of(\d+)\.jsonl")


def check_shard(shard: int, n_shards: int) -> None:
    if not (isinstance(n_shards, int) and n_shards >= 1 and isinstance(shard, int) and 0 <= shard < n_shards):
        raise ValueError(f"download shard {shard!r} of {n_shards!r}: need 0 <= shard < shards, shards >= 1")


def shard_rows(clips: pd.DataFrame, shard: int, n_shards: int) -> pd.DataFrame:
    """Rows of shard `shard` of `n_shards`: a contiguous run, sizes differing by at most one."""
    check_shard(shard, n_shards)
    bounds = np.linspace(0, len(clips), n_shards + 1).round().astype(int)
    return clips.iloc[bounds[shard] : bounds[shard + 1]]


def tag(shard: tuple[int, int] | None) -> str:
    """The name part of a run's ledger, lock and work folder: `s{k}of{n}`, or `all` for an unsharded run."""
    return "all" if shard is None else f"s{shard[0]}of{shard[1]}"


def ledger_path(out: Path, shard: tuple[int, int] | None) -> Path:
    return out / ("ledger.jsonl" if shard is None else f"ledger.{tag(shard)}.jsonl")


def other_ledgers(out: Path, shard: tuple[int, int] | None) -> list[Path]:
    """Ledgers of other shard layouts in `out`: earlier runs whose clips a run may find already cut.

    The other shards of the same layout are left out: their clips are not this shard's.
    """
    own = ledger_path(out, shard)
    found = []
    for path in sorted(out.glob("ledger*.jsonl")):
        m = SHARD_LEDGER.fullmatch(path.name)
        if path != own and not (shard and m and int(m.group(2)) == shard[1]):
            found.append(path)
    return found


def gather(manifests: list[str | Path], summaries: list[dict]) -> tuple[pd.DataFrame, dict]:
    """The shards' manifests in shard order as one, and their summaries added up."""
    parts = [pd.read_parquet(p) for p in manifests]
    manifest = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    dup = manifest["clip_id"].duplicated() if len(manifest) else pd.Series(dtype=bool)
    if dup.any():
        clip = manifest.at[int(dup.idxmax()), "clip_id"]
        where = [str(p) for p, df in zip(manifests, parts) if (df["clip_id"] == clip).any()]
        raise ValueError(f"clip {clip!r} is in more than one shard manifest: {where}")
    by_status: dict[str, int] = {}
    for s in summaries:
        for status, n in s["by_status"].items():
            by_status[status] = by_status.get(status, 0) + int(n)
    summary = {
        "n_clips": sum(int(s["n_clips"]) for s in summaries),
        "n_ok": len(manifest),
        "attempted_last_run": sum(int(s["attempted_this_run"]) for s in summaries),
        "by_status": dict(sorted(by_status.items())),
        "shards": len(summaries),
        "ledgers": [s["ledger"] for s in summaries],
    }
    return manifest, summary
