"""The reduced default workflow run that several test files check (one run per session)."""

from __future__ import annotations

import re
import subprocess

import yaml

ARMS = ("baseline", "nomask")


def reduced_config(repo) -> dict:
    cfg = yaml.safe_load((repo / "config.yaml").read_text())
    cfg["seeds"] = [0]
    cfg["corpus"]["n_clips"] = 96
    for b in cfg["benchmarks"].values():
        b["test"] = 12
        if "train" in b:
            b["train"] = 16
    cfg["pretrain"].update(epochs=1, tune_epochs=1, batch_size=16, warmup_steps=1)
    cfg["finetune"].update(epochs=1, batch_size=8, warmup_steps=1)
    for own in (cfg["finetune"].get("tasks") or {}).values():  # a task's own steps would outlast the reduction
        own.update({k: v for k, v in (("epochs", 1), ("batch_size", 8)) if k in own})
    cfg["arms"] = {a: cfg["arms"][a] for a in ARMS}
    return cfg


def smk(snakemake_bin, repo, workdir, *args, check=True) -> subprocess.CompletedProcess:
    cmd = [snakemake_bin, "-s", str(repo / "Snakefile"), "--directory", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def planned_jobs(output: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of each job a dry run lists."""
    jobs, rule = [], None
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
            jobs.append((rule, ""))
        m = re.match(r"^wildcards: (.*)$", line.strip())
        if m and jobs:
            jobs[-1] = (jobs[-1][0], m.group(1))
    return jobs
