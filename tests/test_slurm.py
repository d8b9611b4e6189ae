"""The workflow on a real single-node Slurm cluster, through `snakemake --profile slurm`.

The cluster and the run are the session fixtures of tests/slurm_cluster.py:
the paper configuration users submit (configs/paper-small.yaml) at the dress
rehearsal's scale, with per-task fine-tuning jobs, one training job cancelled
and one requeued mid-run.
"""

from __future__ import annotations

import re
import subprocess

import pandas as pd
import pytest
import yaml
from slurm_cluster import ARMS, PAPER, SlurmRun, failure_context, jobs_of, last_step, log_records, train_log

pytestmark = pytest.mark.slow


def test_profile_found_by_name_and_table_appears(slurm_run):
    assert slurm_run.returncode == 0, failure_context(slurm_run)
    assert "Using profile slurm" in slurm_run.output
    assert r"\toprule" in (slurm_run.work / "results/tables/ablation.tex").read_text()
    summary = pd.read_csv(slurm_run.work / "results/tables/ablation.csv")
    assert set(ARMS) < set(summary["arm"])
    assert summary["mean"].notna().all()


def test_status_polling_works_without_slurmdbd(slurm_run, cluster):
    """sacct fails on this cluster (no accounting), which hangs the plugin's default; squeue does not."""
    sacct = subprocess.run(["sacct", "-X"], env=cluster["env"], capture_output=True, text=True)
    assert sacct.returncode != 0 and "accounting storage is disabled" in sacct.stdout + sacct.stderr
    assert slurm_run.returncode == 0, failure_context(slurm_run)


def test_every_rule_ran_as_slurm_jobs(slurm_run):
    rules = {p.name.removeprefix("rule_") for p in (slurm_run.work / ".snakemake/slurm_logs").iterdir()}
    assert {
        "internvid_metadata",
        "download_clips",
        "gather_downloads",
        "caption_coarse",
        "fuse",
        "prepare_benchmark",
        "pretrain",
        "import_released",
        "evaluate_zeroshot",
        "finetune",
        "report",
    } <= rules
    per_task = [p for p in (slurm_run.work / ".snakemake/slurm_logs/rule_finetune").iterdir()]
    # seed 0 of the five trained arms and the released arm's one run, one job per task
    assert len(per_task) == (5 + 1) * 7, per_task
    assert all(re.search(r"\bRequeue=1\b", info) for info in slurm_run.jobs.values())  # slurm-requeue


def test_jobs_get_their_gpus_cpus_memory_and_time(slurm_run):
    """pretrain and finetune sized by the config's `execution` blocks, the GPU evaluation rule by the profile."""
    expected = {  # rule: (CPUs, memory, time limit, GPUs)
        "pretrain": (2, "3000M", "00:30:00", 1),
        "finetune": (2, "2500M", "00:20:00", 1),
        "evaluate_zeroshot": (4, "16000M", "02:00:00", 1),
        "prepare_benchmark": (1, None, None, 0),
    }
    for rule, (cpus, mem, limit, gpus) in expected.items():
        infos = jobs_of(slurm_run, rule)
        assert infos, f"no {rule} job seen running"
        for info in infos:
            assert re.search(rf"\bNumCPUs={cpus}\b", info), info
            assert mem is None or f"mem={mem}" in info, info
            assert limit is None or f"TimeLimit={limit}" in info, info
            # Seen RUNNING, so Slurm granted what the job asked for.
            asked = re.search(r"TresPerJob=gres:gpu:(\d+)", info)
            assert (int(asked.group(1)) if asked else 0) == gpus, info


def assert_resumed(run: SlurmRun, arm: str) -> None:
    """The attempt after the interruption resumed from the resume point written when Slurm stopped it."""
    hit = run.interferences.get(arm)
    assert hit is not None, f"the {arm} training job was never interrupted\n{failure_context(run)}"
    assert run.returncode == 0, failure_context(run)
    text = (run.work / f"logs/pretrain/{arm}-seed0.log").read_text()  # the last attempt's log
    resumed = re.findall(r"resuming from \S*step-(\d+)\.pt", text)
    assert resumed, f"{arm}: the rerun started from scratch:\n{text[-3000:]}"
    records = log_records(train_log(run.work, arm))
    total = last_step(records)
    # The rerun continued from the newest step the first attempt reached (it
    # saves on SIGTERM), not from an earlier resume point, and had work left.
    assert hit.steps_before <= int(resumed[0]) < total, (hit.steps_before, resumed, total)
    epochs = [(r["stage"], r["epoch"]) for r in records if r.get("kind") == "epoch"]
    first = "masked" if arm == "baseline" else "unmasked"
    n_epochs = yaml.safe_load((run.work / PAPER[1]).read_text())["pretrain"]["epochs"]
    assert epochs == [(first, e) for e in range(n_epochs)] + [("tune", 0)], epochs
    assert (run.work / "results/runs" / arm / "seed0/checkpoint.pt").exists()


def test_cancelled_training_job_is_resubmitted_and_resumes(slurm_run):
    assert_resumed(slurm_run, "baseline")
    hit = slurm_run.interferences["baseline"]
    assert "JobState=CANCELLED" in hit.final, hit.final
    attempts = [p.stem for p in (slurm_run.work / ".snakemake/slurm_logs/rule_pretrain/baseline_0").glob("*.log")]
    assert hit.job_id in attempts and len(attempts) == 2, f"expected the cancelled job and its resubmission: {attempts}"


def test_requeued_training_job_resumes_under_the_same_job(slurm_run):
    assert_resumed(slurm_run, "nomask")
    hit = slurm_run.interferences["nomask"]
    assert "JobState=COMPLETED" in hit.final and "Restarts=1" in hit.final, hit.final
    attempts = [p.stem for p in (slurm_run.work / ".snakemake/slurm_logs/rule_pretrain/nomask_0").glob("*.log")]
    assert attempts == [hit.job_id], attempts
