"""The Slurm profile (profiles/slurm/) parses, installs, and plans the workflow.

A dry run with the profile needs no Slurm: Snakemake parses the profile
(YTE templating included), validates every `slurm-*` option against the
installed executor plugin (an unknown one fails with "unrecognized
arguments") and evaluates the resources, but never starts the slurm executor,
so sbatch and squeue need not be on PATH. Real submissions are tested on a
local cluster in test_slurm.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

GPU_RULES = ("evaluate_zeroshot",)  # pretrain and finetune size themselves from their `execution` blocks


@pytest.fixture(scope="module")
def profile_dir(repo):
    return repo / "profiles" / "slurm"


@pytest.fixture(scope="module")
def profile(profile_dir) -> dict:
    """The profile as Snakemake reads it (after YTE), with no VICLIP_SLURM_* set."""
    import yte

    env = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("VICLIP_SLURM_")}
    try:
        with open(profile_dir / "profile.yaml") as f:
            return yte.process_yaml(f, require_use_yte=True)
    finally:
        os.environ.update(env)


def test_profile_keys(profile):
    assert profile["executor"] == "slurm"
    assert int(profile["jobs"]) >= 1
    assert profile["retries"] >= 1  # resubmit cancelled / timed-out / failed jobs
    assert profile["slurm-requeue"] is True  # preempted jobs go back to the queue
    assert profile["slurm-status-command"] == "squeue"  # sacct hangs the plugin without slurmdbd
    assert profile["slurm-keep-successful-logs"] is True
    assert "rerun-triggers" not in profile  # params changes must rerun jobs
    assert "cores" not in profile
    assert {"runtime", "mem_mb", "cpus_per_task"} <= set(profile["default-resources"])
    # Unset VICLIP_SLURM_*: no partition or account, so the cluster's defaults apply.
    assert not {"slurm_partition", "slurm_account", "slurm_extra"} & set(profile["default-resources"])


def test_partition_account_and_extra_come_from_the_environment(profile_dir, monkeypatch):
    import yte

    monkeypatch.setenv("VICLIP_SLURM_PARTITION", "gpu")
    monkeypatch.setenv("VICLIP_SLURM_ACCOUNT", "proj42")
    monkeypatch.setenv("VICLIP_SLURM_EXTRA", "--qos=normal")
    with open(profile_dir / "profile.yaml") as f:
        res = yte.process_yaml(f, require_use_yte=True)["default-resources"]
    # Quoted, so Snakemake evaluates each to a string, not a Python name.
    assert (res["slurm_partition"], res["slurm_account"], res["slurm_extra"]) == ("'gpu'", "'proj42'", "'--qos=normal'")


def test_gpu_rules_sized_in_the_profile_pretrain_by_the_config(profile):
    res, threads = profile["set-resources"], profile["set-threads"]
    assert "pretrain" not in res and "pretrain" not in threads
    for rule in GPU_RULES:
        assert res[rule]["gpu"] == 1, rule
        for key in ("cpus_per_task", "mem_mb", "runtime"):
            assert key in res[rule], (rule, key)
        assert threads[rule] == res[rule]["cpus_per_task"], rule


def test_profile_names_only_existing_rules(profile, repo):
    rules = set(re.findall(r"^\s*rule (\w+):", "".join(p.read_text() for p in (repo / "rules").glob("*.smk")), re.M))
    named = set(profile["set-resources"]) | set(profile["set-threads"])
    assert named <= rules, named - rules


def run_install(repo, xdg, *args):
    env = {**os.environ, "XDG_CONFIG_HOME": str(xdg)}
    return subprocess.run(
        ["bash", str(repo / "profiles/slurm/install.sh"), *args], env=env, capture_output=True, text=True, timeout=30
    )


def test_install_links_the_profile_once(tmp_path, repo, profile_dir):
    dest = tmp_path / "snakemake/slurm"
    first = run_install(repo, tmp_path)
    assert first.returncode == 0, first.stderr
    assert dest.is_symlink() and dest.resolve() == profile_dir.resolve()
    again = run_install(repo, tmp_path)
    assert again.returncode == 0 and "already links" in again.stdout


def test_install_keeps_a_users_own_profile(tmp_path, repo, profile_dir):
    dest = tmp_path / "snakemake/slurm"
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text("executor: slurm\n")
    refused = run_install(repo, tmp_path)
    assert refused.returncode != 0 and "--force" in refused.stderr
    assert (dest / "config.yaml").exists() and not dest.is_symlink()
    forced = run_install(repo, tmp_path, "--force")
    assert forced.returncode == 0, forced.stderr
    assert dest.resolve() == profile_dir.resolve()
    backups = list(tmp_path.glob("snakemake/slurm.bak.*"))
    assert len(backups) == 1 and (backups[0] / "config.yaml").exists()


def test_dry_run_as_typed_from_the_repo_root(tmp_path, repo, snakemake_bin):
    """`snakemake --cores all --profile slurm` after the set-up step, in a copy of the repository root."""
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(repo / name, clone / name)
    for name in ("rules", "scripts", "configs", "profiles", "report"):
        if (repo / name).exists():
            shutil.copytree(repo / name, clone / name, ignore=shutil.ignore_patterns("__pycache__"))
    xdg = tmp_path / "xdg"
    assert run_install(clone, xdg).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VICLIP_SLURM_", "SNAKEMAKE_PROFILE"))}
    env.update(XDG_CONFIG_HOME=str(xdg), VICLIP_SLURM_PARTITION="gpu")
    cmd = [snakemake_bin, "--cores", "all", "--profile", "slurm", "-n"]
    proc = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{out[-4000:]}"
    assert "Using profile slurm" in out and "This was a dry-run" in out

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
    # pretrain and finetune: the embedded default trains on the CPU (execution.gpus: 0)
    for rule in ("pretrain", "finetune"):
        cfg = yaml.safe_load((repo / "config.yaml").read_text())[rule].get("execution", {})
        assert all(f"gpu={cfg.get('gpus', 0)}" in r for r in resources[rule]), rule
        assert all(f"runtime={cfg.get('runtime_min', 120)}" in r for r in resources[rule]), rule
    # CPU rules keep their own resources and get no GPU; every job gets the partition.
    assert resources.get("decode_corpus") and all("gpu=" not in r for r in resources["decode_corpus"])
    assert all("slurm_partition=gpu" in r for rs in resources.values() for r in rs)
