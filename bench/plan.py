"""Benchmark: planning the paper-scale DAGs with no data present (`snakemake -n`).

Writes bench/results/plan.json: per paper config, the wall time of the dry run
(best of --repeat), the number of jobs and the files it names as missing
(the CLIP weights among them). A user plans before fetching anything, so the
plan must be quick and must name everything still to provide.

Usage: .venv/bin/python bench/plan.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
CONFIGS = ("configs/paper.yaml", "configs/paper-small.yaml")


def plan(config: str, work: Path) -> tuple[float, str]:
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(work), "-n", "--configfile", str(REPO / config)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return dt, proc.stdout + proc.stderr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "plan.json")
    args = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    result = {"commit": commit, "cpu_count": os.cpu_count(), "configs": {}}
    for config in CONFIGS:
        work = Path(tempfile.mkdtemp(prefix="viclip-plan-"))
        shutil.copy(REPO / "config.yaml", work / "config.yaml")
        times, out = [], ""
        for _ in range(args.repeat):
            dt, out = plan(config, work)
            times.append(dt)
        jobs = Counter(re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M))
        missing = re.findall(r"^  ([a-z_]+\.[\w.]+): (\S+)$", out, flags=re.M)  # "  key: path" lines
        result["configs"][config] = {
            "dry_run_seconds_best": round(min(times), 2),
            "dry_run_seconds_all": [round(t, 2) for t in times],
            "jobs": sum(jobs.values()),
            "jobs_per_rule": dict(sorted(jobs.items())),
            "missing_files": len(missing),
            "missing_keys": [key for key, _ in missing],
        }
        shutil.rmtree(work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
