"""Evaluation records: one JSON per (run, benchmark, protocol); the report reads only these.

A record holds the headline `metrics` (what the table shows), the protocol
`settings` that produced them, the evaluated checkpoint's sha256, how many
test videos were used and how many were missing, and the code version. When
WiSE-FT interpolates (alpha < 1), the trained weights' own result sits beside
the headline in `metrics_uninterpolated`, which the report does not read.
`items` (viclip.eval.items) holds the test clips' ids and the ranks the
headline metrics come from, per clip or query, for the report's bootstrap
over test items.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import viclip
from viclip.data.benchmarks.load import Benchmark
from viclip.io import file_sha256

UNITS = "fractions in [0, 1]; medr/meanr are 1-based ranks"


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """viclip.__version__ and the checkout's commit ("unknown" outside a git checkout)."""
    root = Path(viclip.__file__).resolve().parents[1]
    commit = "unknown"
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
            )
            commit = out.stdout.strip() or "unknown"
        except (OSError, subprocess.SubprocessError):
            commit = "unknown"
    return {"viclip": viclip.__version__, "git_commit": commit}


def videos_used(bench: Benchmark) -> dict:
    split, part = bench.eval_split, bench.test
    missing = dict(part.missing)
    return {"split": split, "used": len(part.sampler), "missing": sum(missing.values()), "missing_by_reason": missing}


def make_record(
    arm: str,
    seed: int,
    bench: Benchmark,
    protocol: str,
    metrics: dict,
    details: dict,
    *,
    settings: dict | None = None,
    checkpoint: str | Path | None = None,
    metrics_uninterpolated: dict | None = None,
) -> dict:
    """The record of one evaluation. Protocol settings come from `settings` or from details["settings"],
    per-item outcomes from details["items"]."""
    details = dict(details)
    settings = {**details.pop("settings", {}), **(settings or {})}
    items = details.pop("items", None)
    record = {
        "arm": arm,
        "seed": seed,
        "run": f"{arm}/seed{seed}",
        "benchmark": bench.name,
        "protocol": protocol,
        "task": bench.task,
        "synthetic": bool(bench.meta.get("synthetic", False)),
        "metrics": metrics,
        "settings": settings,
        "details": details,
        "videos": videos_used(bench),
        "checkpoint": {"path": str(checkpoint), "sha256": file_sha256(checkpoint)} if checkpoint else None,
        "code_version": code_version(),
        "units": UNITS,
    }
    if metrics_uninterpolated is not None:
        record["metrics_uninterpolated"] = metrics_uninterpolated
    if items is not None:
        record["items"] = items
    return record
