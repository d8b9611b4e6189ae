"""Benchmark: what more fine-tuning buys, and what it would cost the default (issue 17, items 1 and 2).

From a finished run of the embedded default (`--run DIR`: a checkout where
`snakemake --cores all` ran, e.g. `bench/default_run.py --keep DIR`), each
task is fine-tuned again from every seed's pretrained checkpoint of one arm,
with the config's recipe for that task except the number of epochs (and
any `finetune.tasks.<task>` keys given with --set), and scored on its test
split by the workflow's own code (`viclip.train.finetune.finetune`, on one
thread as its jobs run). For each recipe it records:
- per seed, the headline metrics and the wall seconds of one run (loading
  the checkpoint and benchmark, training, scoring);
- whether issue 17's acceptance checks pass for that task's fine-tuned
  columns (`viclip.report.acceptance`: item 1, informative; item 2, above the
  run's zero-shot records, for retrieval), with the same intervals;
- the job-seconds the recipe would add to the default: (its seconds - the
  config's recipe's seconds) x the default's runs (arms x seeds).
It also checks that the config's own recipe reproduces the run's fine-tuned
record (same metrics), so the grid measures what the workflow would compute.

Writes bench/results/finetune_budget.json: one entry per task, each with its
command, machine and time (a later run replaces the entries of its tasks).

Usage: .venv/bin/python bench/finetune_budget.py --run DIR [--tasks ssv2 msrvtt] [--epochs 8 16 32]
       [--set batch_size=16 lr=3e-3 'crop_scale=[1.0, 1.0]'] [--arm baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import yaml  # noqa: E402

from viclip.eval.protocol import finetuned_settings  # noqa: E402
from viclip.eval.records import make_record  # noqa: E402
from viclip.io import atomic_json  # noqa: E402
from viclip.report.acceptance import not_finetuned, uninformative  # noqa: E402
from viclip.train.finetune import finetune, prepared  # noqa: E402

HEADLINE = {"classification": ("top1", "top5"), "retrieval": ("t2v_r1", "v2t_r1")}


def finetune_once(run: Path, cfg: dict, task: str, arm: str, seed: int, change: dict) -> tuple[dict, float]:
    """(the fine-tuned record, wall seconds) of `task` for one seed, the config's recipe with `change` over it."""
    block = {**cfg["finetune"], "evaluate": finetuned_settings(cfg["evaluate"])}
    block["tasks"] = {**(block.get("tasks") or {}), task: {**((block.get("tasks") or {}).get(task) or {}), **change}}
    train = {k: cfg["pretrain"][k] for k in ("augment", "flip")}
    pretrained, bench_dir = (
        run / f"results/runs/{arm}/seed{seed}/checkpoint.pt",
        run / f"results/data/benchmarks/{task}",
    )
    t0 = time.perf_counter()
    model, tokenizer, bench, recipe = prepared(task, block, pretrained, bench_dir, train)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / arm / f"seed{seed}" / task
        _, metrics, details = finetune(model, tokenizer, bench, recipe, block["evaluate"], seed, out, out / "log.jsonl")
    return make_record(arm, seed, bench, "finetuned", metrics, details), time.perf_counter() - t0


def zero_shot(run: Path, arm: str, seeds: list[int], task: str) -> list[dict]:
    paths = [run / f"results/eval/{arm}/seed{s}/{task}-zeroshot.json" for s in seeds]
    return [json.loads(p.read_text()) for p in paths if p.exists()]


def checks(task: str, arm: str, records: list[dict], zs: list[dict]) -> dict:
    """Issue 17's acceptance checks on this task's fine-tuned columns alone."""
    own = f"{task}/finetuned/"
    out = {"item1_failures": [f for f in uninformative(records, arm) if f.startswith(own)]}
    if zs and records[0]["task"] == "retrieval":
        out["item2_failures"] = [f for f in not_finetuned(records + zs, arm) if f.startswith(own)]
    return out


def measure(run: Path, tasks: list[str], epochs: list[int], arm: str, sets: dict) -> dict:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    seeds = [int(s) for s in cfg["seeds"]]
    n_runs = len(cfg["arms"]) * len(seeds)
    torch.set_num_threads(1)
    results = {}
    for task in tasks:
        zs = zero_shot(run, arm, seeds, task)
        rows, default_s = [], None
        changes = [{}] + [{**sets, "epochs": e} for e in epochs]
        for change in changes:
            runs = [finetune_once(run, cfg, task, arm, s, change) for s in seeds]
            records = [r for r, _ in runs]
            keys = HEADLINE[records[0]["task"]]
            seconds = sum(s for _, s in runs) / len(runs)
            row = {
                "change": change or "the config's recipe",
                "steps": records[0]["details"]["steps"],
                "batch_size": records[0]["settings"]["training"]["batch_size"],
                "lr": records[0]["settings"]["training"]["lr"],
                "metrics": {k: [round(100 * r["metrics"][k], 2) for r in records] for k in keys},
                "mean": {k: round(100 * sum(r["metrics"][k] for r in records) / len(records), 2) for k in keys},
                "seconds_per_run": round(seconds, 2),
                **checks(task, arm, records, zs),
            }
            if not change:
                default_s = seconds
                row["reproduces_the_run"] = all(
                    r["metrics"] == json.loads(p.read_text())["metrics"]
                    for r, p in zip(records, [run / f"results/eval/{arm}/seed{s}/{task}-finetuned.json" for s in seeds])
                )
            else:
                row["added_job_seconds_to_the_default"] = round((seconds - default_s) * n_runs, 1)
            if zs:
                row["zero_shot_mean"] = {
                    k: round(100 * sum(r["metrics"][k] for r in zs) / len(zs), 2) for k in keys if k in zs[0]["metrics"]
                }
            rows.append(row)
            print(json.dumps({"task": task, **row}), flush=True)
        results[task] = rows
    return {"arm": arm, "seeds": seeds, "runs_in_the_default": n_runs, "tasks": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, type=Path, help="a checkout where the default workflow ran")
    ap.add_argument("--tasks", nargs="+", default=["ssv2", "msrvtt"])
    ap.add_argument("--epochs", nargs="+", type=int, default=[8, 16, 32])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="recipe keys of the grid (JSON values)")
    ap.add_argument("--arm", default="baseline")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/finetune_budget.json")
    args = ap.parse_args()
    sets = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set {item}: expected KEY=VALUE")
        try:
            sets[key] = json.loads(value)
        except json.JSONDecodeError:
            ap.error(f"--set {item}: the value is not JSON (numbers, lists, quoted strings)")
    t0 = time.perf_counter()
    result = measure(args.run.resolve(), args.tasks, args.epochs, args.arm, sets)
    how = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "bench_seconds": round(time.perf_counter() - t0, 1),
    }
    # one file for every task measured: a task's entry is replaced, the others' kept (each says how it was made)
    saved = json.loads(args.out.read_text()) if args.out.exists() else {}
    tasks = saved.get("tasks", {})
    for task, rows in result.pop("tasks").items():
        tasks[task] = {**result, **how, "rows": rows}
    atomic_json({"tasks": dict(sorted(tasks.items()))}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
