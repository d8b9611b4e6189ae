"""Which pretraining runs diverged or stalled: the report refuses them instead of averaging them in.

Two rules, each on the epoch lines of a run's log.jsonl (viclip.train.observe):

- diverged: the last epoch's loss is not finite, or is above the mean loss of
  the first epoch. A healthy run ends below where it started, even though the
  tuning stage's unmasked loss and a masked stage's are not quite the same
  quantity (unmasked is the easier, so the rule only gets stricter for masked arms).
- stalled: with three or more seeds of an arm, a seed whose final loss is more
  than STALL_RATIO times the median final loss of the arm's seeds. Seeds of an
  arm share the schedule, so one that ends far above its siblings stopped
  learning rather than learned less. Issue 17's same-compute seed is this
  case: its loss fell from 3.76 to 3.3 in its first epochs and stayed there
  (final 3.24, where the baseline's seeds end near 1.4), never above where it began.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from viclip.report.curves import read_log

STALL_RATIO = 1.5


@dataclass(frozen=True)
class Divergence:
    path: str
    first: float  # mean loss of the first epoch
    final: float  # loss of the last epoch line
    reason: str = "diverged"

    def describe(self) -> str:
        return f"{self.path}: {self.reason}: final loss {self.final:.4g} (first-epoch mean loss {self.first:.4g})"


def losses(path: str | os.PathLike) -> tuple[float, float]:
    """(first-epoch mean loss, last epoch's loss) of a log; ValueError for a bad log, naming it."""
    df = read_log(path)
    return float(df["loss"].iloc[0]), float(df["loss"].iloc[-1])


def diverged(path: str | os.PathLike) -> Divergence | None:
    """The run's Divergence if its final loss is not finite or above its first epoch's mean, else None."""
    first, final = losses(path)
    if not math.isfinite(final) or not math.isfinite(first) or final > first:
        return Divergence(str(path), first, final, "diverged (final loss above the first epoch's mean)")
    return None


def stalled(paths: Sequence[str | os.PathLike]) -> list[Divergence]:
    """Seeds of one arm whose final loss is more than STALL_RATIO x the arm's median final loss."""
    if len(paths) < 3:
        return []
    runs = {str(p): losses(p) for p in paths}
    median = float(np.median([final for _, final in runs.values()]))
    return [
        Divergence(p, first, final, f"stalled (final loss above {STALL_RATIO} x its arm's median {median:.4g})")
        for p, (first, final) in runs.items()
        if math.isfinite(final) and final > STALL_RATIO * median
    ]


def check_runs(logs: Mapping[str, Sequence[str | os.PathLike]]) -> None:
    """Raise ValueError naming every diverged or stalled run (arm -> its seeds' log.jsonl files)."""
    bad = [d for paths in logs.values() for d in map(diverged, paths) if d is not None]
    named = {d.path for d in bad}
    bad += [d for paths in logs.values() for d in stalled(paths) if d.path not in named]
    if bad:
        raise ValueError(
            f"{len(bad)} pretraining run(s) diverged or stalled; the report does not average such a run in. "
            "Fix its schedule (docs/ARCHITECTURE.md, diverged and stalled runs) or drop its seed:\n  "
            + "\n  ".join(d.describe() for d in bad)
        )
