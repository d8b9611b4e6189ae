"""A throwaway single-node Slurm cluster and the paper dress rehearsal submitted to it (session fixtures).

.ci/slurm-up.sh starts munged, slurmctld and slurmd with fake GPUs and no
slurmdbd; `slurm_run` submits configs/paper-small.yaml at the rehearsal's
scale (configs/rehearsal.yaml and its inputs, tests/rehearsal_setup.py; one
more overlay gives the training jobs fake GPUs) from a copy of the
repository, through `snakemake --profile slurm` and the real executor plugin,
as a user would after the profile's one-time set-up. During that one run it
interrupts two training jobs once each has written a resume point:

- baseline: `scancel`. Slurm reports CANCELLED, the profile's `retries`
  submit the job again as a new Slurm job, and training resumes;
- nomask: `scontrol requeue`, what preemption or a node failure does under
  the profile's `slurm-requeue`: the same Slurm job runs again and resumes.

tests/test_slurm.py checks the cluster side; tests/test_rehearsal.py checks
the same run's outputs, so the rehearsal runs once per session where Slurm
can start (CI), and locally elsewhere. The daemons are stopped by their PIDs
afterwards, whatever happens. Needs root and Debian's Slurm packages
(`bash install.sh --test` installs them); skips without them unless
VICLIP_REQUIRE_SLURM=1 (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from rehearsal_setup import build

ARMS = ("baseline", "nomask")  # the arms the test interrupts; the paper config trains five
ACTIONS = {"baseline": "cancel", "nomask": "requeue"}
PAPER = ("configs/paper-small.yaml", "configs/rehearsal.yaml")
# The training job's size comes from the config (pretrain.execution), not the profile.
EXECUTION = {
    "gpus": 1,
    "nodes": 1,
    "cpus_per_process": 2,
    "mem_mb": 3000,
    "runtime_min": 30,
    "checkpoint_every": 2,
    "log_every": 1,
}
FINETUNE_EXECUTION = {"gpus": 1, "cpus_per_process": 2, "mem_mb": 2500, "runtime_min": 20}
WORKFLOW_TIMEOUT_S = 1200
DAEMONS = ("slurmd", "slurmctld", "munged")
SLURM_BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")
# What a clone holds: everything but git-ignored outputs and caches (top level, as in .gitignore).
NOT_IN_A_CLONE = {
    ".git",
    ".venv",
    "results",
    "logs",
    "benchmarks",
    ".snakemake",
    ".pytest_cache",
    ".ruff_cache",
    "build",
}


def missing_prerequisite() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the local Slurm cluster needs Linux"
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin"
    missing = [b for b in SLURM_BINARIES if shutil.which(b, path=path) is None]
    if missing:
        return (
            f"Slurm is not installed ({', '.join(missing)} missing); "
            "`bash install.sh --test` installs it as root on Debian/Ubuntu"
        )
    if os.path.exists("/etc/slurm/slurm.conf"):
        return "/etc/slurm/slurm.conf exists: a real Slurm (or another test cluster) runs here"
    return None


@pytest.fixture(scope="session")
def cluster(repo):
    reason = missing_prerequisite()
    if reason:
        if os.environ.get("VICLIP_REQUIRE_SLURM") == "1":
            pytest.fail(f"VICLIP_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    # Short path: munged's socket lives here and Unix socket paths are capped at 108 bytes.
    state = Path(tempfile.mkdtemp(prefix="viclip-slurm-", dir="/tmp"))
    env = {
        **os.environ,
        "SLURM_CTLD_PORT": str(free_port()),
        "SLURMD_PORT": str(free_port()),
        "PATH": os.environ.get("PATH", "") + os.pathsep + "/usr/sbin",
    }
    env.pop("SLURM_CONF", None)
    t0 = time.perf_counter()
    try:
        up = subprocess.run(
            ["bash", str(repo / ".ci/slurm-up.sh"), str(state)], env=env, capture_output=True, text=True, timeout=120
        )
        assert up.returncode == 0, f"slurm-up.sh failed:\n{up.stdout}\n{up.stderr}"
        yield {
            "dir": state,
            "start_s": time.perf_counter() - t0,
            "env": {**env, "SLURM_CONF": str(state / "slurm.conf")},
        }
    finally:
        pids = {name: read_pid(state / "run" / f"{name}.pid") for name in DAEMONS}
        down = subprocess.run(
            ["bash", str(repo / ".ci/slurm-down.sh"), str(state)], env=env, capture_output=True, text=True, timeout=120
        )
        alive = {name: pid for name, pid in pids.items() if pid and pid_alive(pid)}
        if not alive:
            shutil.rmtree(state, ignore_errors=True)
        assert down.returncode == 0 and not alive, f"daemons left running: {alive}\n{down.stdout}\n{down.stderr}"
        assert not os.path.lexists("/etc/slurm/slurm.conf"), "slurm-down.sh left /etc/slurm/slurm.conf behind"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def slurm_overlay(repo) -> dict:
    """Training jobs on fake GPUs, sized by the config's `execution` blocks; nothing else changes."""
    rehearsal = yaml.safe_load((repo / "configs/rehearsal.yaml").read_text())
    return {
        "pretrain": {"execution": {**rehearsal["pretrain"]["execution"], **EXECUTION}},
        "finetune": {"execution": {**rehearsal["finetune"]["execution"], **FINETUNE_EXECUTION}},
    }


def repo_copy(repo: Path, dest: Path) -> Path:
    """What a user's clone holds, with the rehearsal's inputs where the paper config looks for them."""
    caches = shutil.ignore_patterns("__pycache__", "*.egg-info")

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = NOT_IN_A_CLONE if Path(folder) == repo else set()
        return set(caches(folder, names)) | (top & set(names))

    shutil.copytree(repo, dest, ignore=ignore, symlinks=True)
    build(dest)  # the files a user provides: metadata, local videos, benchmarks, models, CLIP weights
    return dest


@dataclass
class Interference:
    arm: str
    action: str
    job_id: str
    steps_before: int  # the last optimizer step the run had logged when it was interrupted
    final: str = ""  # `scontrol show job -o` after the workflow ended


@dataclass
class SlurmRun:
    work: Path
    returncode: int
    output: str
    wall_s: float
    jobs: dict[str, str] = field(default_factory=dict)  # Slurm id -> `scontrol show job -o` while it ran
    interferences: dict[str, Interference] = field(default_factory=dict)


def slurm(cluster, *args: str) -> str:
    proc = subprocess.run(list(args), env=cluster["env"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{' '.join(args)}: {proc.stderr}"
    return proc.stdout


def train_log(work: Path, arm: str) -> Path:
    return work / "results/runs" / arm / "seed0/log.jsonl"


def log_records(path: Path) -> list[dict]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written
            break
    return out


def last_step(records: list[dict]) -> int:
    return max((r["step"] for r in records if r.get("kind") == "step"), default=0)


def has_resume_point(run_dir: Path) -> bool:
    return any((run_dir / "resume").glob("step-*.pt"))


def comment_of(rule: str, *wildcards: str) -> str:
    """The plugin's job comment: rule_<rule>_wildcards_<wildcard values joined by _>."""
    return f"rule_{rule}_wildcards_{'_'.join(wildcards)}"


def interfere(cluster, work: Path, arm: str, running: dict[str, str]) -> Interference | None:
    """Cancel or requeue the arm's training job once it has a resume point."""
    job_id = next((j for j, c in running.items() if c == comment_of("pretrain", arm, "0")), None)
    records = log_records(train_log(work, arm))
    if job_id is None or not has_resume_point(train_log(work, arm).parent) or last_step(records) < 2:
        return None
    if ACTIONS[arm] == "cancel":
        slurm(cluster, "scancel", job_id)
    else:
        slurm(cluster, "scontrol", "requeue", job_id)
        # A requeued job may start again only after ~2 min (BeginTime); a real
        # scheduler would wait as long. Let it start now.
        for _ in range(100):
            if "PENDING" in slurm(cluster, "squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"):
                break
            time.sleep(0.2)
        slurm(cluster, "scontrol", "update", f"JobId={job_id}", "StartTime=now")
    return Interference(arm, ACTIONS[arm], job_id, last_step(records))


@pytest.fixture(scope="session")
def slurm_run(cluster, repo, snakemake_bin, tmp_path_factory) -> SlurmRun:
    base = tmp_path_factory.mktemp("slurm")
    work = repo_copy(repo, base / "clone")
    xdg = base / "xdg"
    env = {k: v for k, v in cluster["env"].items() if not k.startswith(("VICLIP_SLURM_", "SNAKEMAKE_PROFILE"))}
    env.update(XDG_CONFIG_HOME=str(xdg), PATH=f"{Path(snakemake_bin).parent}{os.pathsep}{env['PATH']}")
    # The fake node's 32 CPUs run on the box's few real cores, so jobs' threads outnumber them; OpenMP
    # threads that spin while they wait then take the cores from the threads with work. Three zero-shot
    # jobs of 4 threads side by side on 2 cores took 100 s spinning, 36 s sleeping (the same results).
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    setup = subprocess.run(["bash", str(work / "profiles/slurm/install.sh")], env=env, capture_output=True, text=True)
    assert setup.returncode == 0, setup.stderr
    assert (xdg / "snakemake/slurm").resolve() == (work / "profiles/slurm").resolve()

    # The README's command, from the clone's root; the extra flags only poll
    # more often than one should on a shared cluster.
    overlay = base / "slurm.yaml"
    overlay.write_text(yaml.safe_dump(slurm_overlay(repo)))
    cmd = [
        snakemake_bin,
        "--cores",
        "all",
        "--profile",
        "slurm",
        "--configfile",
        *PAPER,
        str(overlay),
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",
        "2",
    ]
    out_path = base / "snakemake.out"
    run = SlurmRun(work, -1, "", 0.0)
    t0 = time.perf_counter()
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None and time.perf_counter() - t0 < WORKFLOW_TIMEOUT_S:
                lines = slurm(cluster, "squeue", "-h", "-t", "running", "-o", "%i %k").splitlines()
                running = dict(line.partition(" ")[::2] for line in lines)
                # A rehearsal training job has a resume point for only 2-4 s, so a poll must stay short on
                # this loaded box: interrupt first, then record all new jobs with one scontrol call (one
                # call per new job, made first, can hold a poll for seconds; the baseline's window was
                # missed once).
                for arm in ARMS:
                    if arm not in run.interferences and (hit := interfere(cluster, work, arm, running)):
                        run.interferences[arm] = hit
                if running.keys() - run.jobs.keys():
                    for info in slurm(cluster, "scontrol", "show", "job", "-o").splitlines():
                        job_id = info.split(" ", 1)[0].removeprefix("JobId=")
                        if job_id in running and job_id not in run.jobs:
                            run.jobs[job_id] = info
                # quick polls only while a training job may still need interrupting: squeue costs CPU too
                time.sleep(0.3 if len(run.interferences) < len(ARMS) else 1.0)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # the plugin cancels its Slurm jobs on SIGINT
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    run.wall_s = time.perf_counter() - t0
    run.returncode, run.output = proc.returncode, out_path.read_text()
    for hit in run.interferences.values():  # the state Slurm ended the job in, restarts included
        hit.final = slurm(cluster, "scontrol", "show", "job", "-o", hit.job_id)
    print(
        f"\nslurm: cluster up in {cluster['start_s']:.1f} s; workflow on Slurm {run.wall_s:.0f} s "
        f"({len(run.jobs)} Slurm jobs)"
    )
    return run


def failure_context(run: SlurmRun) -> str:
    logs = sorted((run.work / ".snakemake/slurm_logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in logs[-3:])
    return f"snakemake output:\n{run.output[-5000:]}\n{tails}"


def jobs_of(run: SlurmRun, rule: str) -> list[str]:
    return [info for info in run.jobs.values() if f"Comment=rule_{rule}_wildcards_" in info]
