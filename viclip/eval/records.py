"""Evaluation records: one JSON per (run, benchmark, protocol); the report reads only these."""

from __future__ import annotations

from viclip.data.benchmarks.load import Benchmark


def make_record(arm: str, seed: int, bench: Benchmark, protocol: str, metrics: dict, details: dict) -> dict:
    return {
        "arm": arm,
        "seed": seed,
        "run": f"{arm}/seed{seed}",
        "benchmark": bench.name,
        "protocol": protocol,
        "task": bench.task,
        "synthetic": bool(bench.meta.get("synthetic", False)),
        "metrics": metrics,
        "details": details,
        "units": "fractions in [0, 1]; medr/meanr are 1-based ranks",
    }
