"""How the report forms its arm - baseline intervals: config `report.intervals` and `report.bootstrap`.

Apart from the bootstrap itself (viclip.report.bootstrap) because the
workflow reads these settings in every Snakemake process, and the statistics
modules import scipy.stats, which took 0.7 s of each such start.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

METHODS = ("bootstrap", "t")


@dataclass(frozen=True)
class Intervals:
    """How the report forms its intervals: config `report.intervals` and `report.bootstrap`."""

    method: str = "bootstrap"  # or "t": Student-t over seeds (viclip.report.stats)
    resamples: int = 4000
    seed: int = 0
    level: float = 0.95

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"report.intervals must be one of {METHODS}, got {self.method!r}")
        if self.resamples < 100:
            raise ValueError(f"report.bootstrap.resamples must be at least 100, got {self.resamples}")

    @classmethod
    def from_config(cls, report: dict) -> Intervals:
        boot = report.get("bootstrap") or {}
        return cls(
            report.get("intervals", cls.method), boot.get("resamples", cls.resamples), boot.get("seed", cls.seed)
        )

    def generator(self, *names: str) -> np.random.Generator:
        """A stream of its own per comparison: one interval does not move when arms or columns are added."""
        return np.random.default_rng([self.seed, *(zlib.crc32(n.encode()) for n in names)])
