"""Benchmark: the README's main job on the embedded default, from a fresh clone.

Measures (and writes to bench/results/default_run.json):
- wall time of `snakemake --cores N` on a fresh `git clone` of HEAD, reusing
  this checkout's .venv (installing is measured apart, it is network-bound);
- that every arm and seed has all metric columns in ablation.csv;
- the baseline's ratio to chance on every metric (chance from each record's n_candidates);
- issue 17's acceptance checks (viclip.report.acceptance): uninformative metrics, fine-tuning
  below zero-shot, slots too easy; and per ablation how many 95% intervals exclude 0, before and
  after Holm's adjustment, and how they were formed (the table's: `report.intervals`, the paired
  bootstrap over seeds and test items by default, viclip.report.bootstrap);
- the report job's own time (benchmarks/report/report.tsv);
- the wall time of the follow-up `snakemake -n` (should say nothing to do);
- which jobs a dry run plans after changing one arm's mask ratio;
- how fast the machine ran just before and after the workflow: the median step of the
  default model (bench/pretrain_step.py, one thread). This shared machine's speed
  changes by the hour (the same records took 404 to 547 s of workflow), so runs of
  different hours compare only next to it.

The workflow imports the clone's `viclip` (PYTHONPATH), not this checkout's, which
the .venv's editable install would otherwise give it.

Usage: .venv/bin/python bench/default_run.py [--cores 2] [--keep DIR]
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

import pandas as pd
import yaml

from viclip.eval.catalog import columns
from viclip.report.ablations import ablations
from viclip.report.acceptance import chance, not_finetuned, too_easy, uninformative
from viclip.report.intervals import Intervals

sys.path.insert(0, str(Path(__file__).parent))
from pretrain_step import measure  # noqa: E402  (bench/pretrain_step.py)

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
CATALOG = {c.key for c in columns()}


def run(cmd: list[str], cwd: Path) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}  # the clone's library, whatever the .venv's editable install points at
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return dt, proc.stdout + proc.stderr


def machine_speed(cfg: dict) -> dict:
    """Median ms of the default model's pretraining step on one thread, with the baseline's mask and without."""
    import torch

    torch.set_num_threads(1)  # as the workflow's pretraining jobs run
    out = measure("machine speed", cfg["model"], cfg["pretrain"]["batch_size"], 10, 3, cfg["pretrain"])
    return {f"step_ms_mask_{r}": out[f"mask_{r}"]["step_ms_median"] for r in (0.9, 0.0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cores", default="2")
    ap.add_argument("--keep", type=Path, help="run in this folder and keep it")
    ap.add_argument("--worktree", action="store_true", help="measure HEAD plus this checkout's uncommitted changes")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "default_run.json")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="viclip-bench-"))
    if work.exists():
        shutil.rmtree(work)
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(work)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True).stdout.strip()
    if args.worktree:  # uncommitted edits and new files of this checkout on top of HEAD
        diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=REPO, capture_output=True, check=True).stdout
        if diff:
            subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=work, input=diff, check=True)
        new = subprocess.run(
            ["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
        ).stdout.split(b"\0")
        for name in filter(None, (n.decode() for n in new)):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, work / name)
        commit += "+worktree"

    cfg = yaml.safe_load((work / "config.yaml").read_text())
    speed_before = machine_speed(cfg)
    wall, _ = run([SNAKEMAKE, "--cores", args.cores], work)
    speed_after = machine_speed(cfg)
    noop, noop_out = run([SNAKEMAKE, "-n"], work)

    arms, seeds = list(cfg["arms"]), cfg["seeds"]
    intervals = Intervals.from_config(cfg["report"])  # the acceptance checks use the table's intervals
    summary = pd.read_csv(work / "results/tables/ablation.csv")
    complete = {arm: int(summary[summary["arm"] == arm]["n_seeds"].min()) == len(seeds) for arm in arms}

    records = [json.loads(f.read_text()) for f in sorted((work / "results/eval").rglob("*.json"))]
    ratios = {}
    for r in records:
        if r["arm"] != "baseline":
            continue
        for metric, ch in chance(r).items():
            if f"{r['benchmark']}/{r['protocol']}/{metric}" in CATALOG:
                ratios.setdefault(f"{r['benchmark']}/{r['protocol']}/{metric}", []).append(r["metrics"][metric] / ch)
    ratio_mean = {k: round(sum(v) / len(v), 2) for k, v in sorted(ratios.items())}
    excluding_zero = {}
    for ab in ablations(cfg["arms"], cfg["report"]["baseline"], cfg["report"].get("ablations")):
        rows = summary[summary["arm"].isin(ab.arms)]
        excludes = (rows["ci_low"] > 0) | (rows["ci_high"] < 0)
        excluding_zero[ab.name] = {
            "arms": list(ab.arms),
            "intervals": int(len(rows)),
            "excluding_0": int(excludes.sum()),
            "excluding_0_after_holm": int((rows["p_holm"] < 0.05).sum()),
            "methods": {str(k): int(v) for k, v in rows["ci_method"].value_counts().items()},
        }
    report_seconds = float(pd.read_csv(work / "benchmarks/report/report.tsv", sep="\t")["s"].iloc[0])

    changed = dict(cfg)
    changed["arms"] = {**cfg["arms"], "nomask": {**cfg["arms"]["nomask"], "mask_ratio": 0.5}}
    (work / "changed.yaml").write_text(yaml.safe_dump(changed))
    _, dry = run([SNAKEMAKE, "-n", "--configfile", "changed.yaml"], work)
    planned = Counter(re.findall(r"^(?:local)?rule (\w+):", dry, flags=re.M))
    planned_arms = sorted(set(re.findall(r"arm=(\w+)", dry)))

    result = {
        "commit": commit,
        "cores": args.cores,
        "cpu_count": os.cpu_count(),
        "wall_seconds": round(wall, 1),
        "machine_speed": {"before": speed_before, "after": speed_after},
        "noop_dry_run_seconds": round(noop, 2),
        "noop_says_nothing_to_do": "Nothing to be done" in noop_out,
        "all_metrics_every_arm_and_seed": all(complete.values()),
        "metric_columns": int(summary.groupby("arm").size().min()),
        "seeds": len(seeds),
        # the arm's metric is its mean over seeds: its worst ratio is the acceptance figure
        "baseline_mean_ratio_to_chance_min": min(ratio_mean.values()),
        "baseline_ratio_to_chance_mean": ratio_mean,
        "baseline_single_seed_ratio_to_chance_min": min(min(v) for v in ratios.values()),
        "uninformative_baseline_metrics": uninformative(records, intervals=intervals),
        "finetuned_not_above_zeroshot": not_finetuned(records, intervals=intervals),
        "too_easy": too_easy(records),
        "intervals": {"method": intervals.method, "resamples": intervals.resamples, "seed": intervals.seed},
        "intervals_excluding_0_per_ablation": excluding_zero,
        "report_job_seconds": round(report_seconds, 2),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "after_changing_nomask_mask_ratio": {"jobs": dict(planned), "arms": planned_arms},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
