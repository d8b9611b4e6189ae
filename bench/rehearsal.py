"""Benchmark: the paper dress rehearsal from a fresh clone (configs/paper-small.yaml + configs/rehearsal.yaml).

Measures (and writes to bench/results/rehearsal.json): the set-up time
(tests/rehearsal_setup.py), the wall time of
`snakemake --cores N --configfile configs/paper-small.yaml configs/rehearsal.yaml`
on a `git clone` of HEAD (reusing this checkout's .venv), the jobs per rule,
and the summed job seconds per rule from Snakemake's benchmark files, so a
slow step is visible.

Usage: .venv/bin/python bench/rehearsal.py [--cores 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
CONFIGS = ["--configfile", "configs/paper-small.yaml", "configs/rehearsal.yaml"]


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return dt, proc.stdout + proc.stderr


def seconds_per_rule(work: Path) -> dict[str, float]:
    """Summed wall seconds of each step's jobs, from the benchmark files (benchmarks/<stage>/<step>-<wildcards>.tsv;
    fine-tuning and evaluation name theirs by run, so they count by stage)."""
    totals: dict[str, float] = defaultdict(float)
    for tsv in [*work.glob("benchmarks/**/*.tsv"), *work.glob("results/runs/*/*/benchmark.tsv")]:
        stage = tsv.parent.name
        if tsv.name == "benchmark.tsv":
            rule = "pretrain"
        elif stage in ("finetune", "evaluate"):
            rule = stage
        else:
            rule = f"{stage}/{tsv.stem.split('-')[0]}"
        totals[rule] += float(pd.read_csv(tsv, sep="\t")["s"].iloc[-1])
    return {k: round(v, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cores", default="2")
    ap.add_argument("--keep", type=Path, help="run in this folder and keep it")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "rehearsal.json")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="viclip-rehearsal-"))
    if work.exists():
        shutil.rmtree(work)
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(work)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True).stdout.strip()
    setup, _ = timed([sys.executable, "tests/rehearsal_setup.py", "."], work)
    wall, out = timed([SNAKEMAKE, "--cores", args.cores, *CONFIGS], work)
    jobs = Counter(line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith(("rule ", "localrule ")))
    result = {
        "commit": commit,
        "cores": args.cores,
        "cpu_count": os.cpu_count(),
        "setup_seconds": round(setup, 1),
        "wall_seconds": round(wall, 1),
        "jobs": sum(jobs.values()),
        "jobs_per_rule": dict(sorted(jobs.items())),
        "job_seconds_per_rule": seconds_per_rule(work),
        "table_rows": int(len(pd.read_csv(work / "results/tables/ablation.csv"))),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
