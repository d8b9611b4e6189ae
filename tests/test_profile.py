"""The Slurm profile (profiles/slurm/profile.yaml) parses and plans the workflow.

A dry run with the profile needs no Slurm: Snakemake parses the profile,
validates every `slurm-*` option against the installed executor plugin (an
unknown one fails with "unrecognized arguments") and evaluates the resources,
but a dry run never starts the slurm executor, so sbatch, sinfo and sacct need
not be on PATH. Submitting real jobs is not tested here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

GPU_RULES = ("pretrain", "finetune", "evaluate_zeroshot")


@pytest.fixture(scope="module")
def profile_dir(repo):
    return repo / "profiles" / "slurm"


@pytest.fixture(scope="module")
def profile(profile_dir) -> dict:
    return yaml.safe_load((profile_dir / "profile.yaml").read_text())


def test_profile_parses_with_slurm_executor(profile):
    assert profile["executor"] == "slurm"
    assert int(profile["jobs"]) >= 1
    assert profile["retries"] == 1
    assert profile["slurm-keep-successful-logs"] is True
    # Left at Snakemake's default on purpose: params changes must rerun jobs.
    assert "rerun-triggers" not in profile
    for key in ("slurm_partition", "slurm_account", "runtime", "mem_mb"):
        assert key in profile["default-resources"], key


def test_profile_requests_gpus_for_training_and_evaluation(profile):
    res, threads = profile["set-resources"], profile["set-threads"]
    for rule in GPU_RULES:
        assert res[rule]["gpu"] == 1, rule
        assert threads[rule] >= 1, rule
    for rule in ("pretrain", "finetune"):
        for key in ("cpus_per_task", "mem_mb", "runtime"):
            assert key in res[rule], (rule, key)
        assert threads[rule] == res[rule]["cpus_per_task"], rule


def test_profile_names_only_existing_rules(profile, repo):
    rules = set(re.findall(r"^\s*rule (\w+):", "".join(p.read_text() for p in (repo / "rules").glob("*.smk")), re.M))
    named = set(profile["set-resources"]) | set(profile["set-threads"])
    assert named <= rules, named - rules


def test_dry_run_with_profile(tmp_path, repo, profile_dir, snakemake_bin):
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(repo / name, tmp_path / name)
    for name in ("rules", "scripts", "configs"):
        shutil.copytree(repo / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VICLIP_SLURM_", "SNAKEMAKE_PROFILE"))}
    cmd = [snakemake_bin, "-n", "--profile", str(profile_dir), "--directory", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{out[-4000:]}"
    assert "Using profile" in out and str(profile_dir) in out
    assert "This was a dry-run" in out

    # Each job's block lists "rule <name>:" and later its "resources: ..." line.
    resources: dict[str, list[str]] = {}
    rule = None
    for line in out.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
        elif rule and line.strip().startswith("resources:"):
            resources.setdefault(rule, []).append(line)
            rule = None
    for gpu_rule in GPU_RULES:
        assert resources.get(gpu_rule), f"no {gpu_rule} job planned"
        assert all("gpu=1" in r for r in resources[gpu_rule]), gpu_rule
    assert all("cpus_per_task=8" in r for r in resources["pretrain"])
    # CPU rules keep their own resources and get no GPU.
    assert resources.get("decode_corpus") and all("gpu=" not in r for r in resources["decode_corpus"])
    # The unset placeholder reaches the job literally (so sbatch would reject it, naming the variable).
    assert "slurm_partition=$VICLIP_SLURM_PARTITION" in resources["pretrain"][0]
