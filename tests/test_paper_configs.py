"""The paper-scale configs plan their whole DAG before any data exists (no job runs, no network)."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
from workflow_run import planned_jobs, smk

from viclip.eval.catalog import finetune_tasks, zeroshot_benchmarks


@pytest.mark.parametrize("name", ["paper.yaml", "paper-small.yaml"])
def test_paper_config_plans_the_whole_dag(tmp_path, repo, snakemake_bin, name):
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    proc = smk(snakemake_bin, repo, tmp_path, "-n", "--configfile", str(repo / "configs" / name))
    jobs = Counter(rule for rule, _ in planned_jobs(proc.stdout))
    runs = 4 * 3  # arms x seeds
    for rule in ("internvid_metadata", "select_subset", "download_clips", "report", "all"):
        assert jobs[rule] == 1, (rule, jobs)
    assert jobs["prepare_benchmark"] == jobs["decode_benchmark"] == 9
    assert jobs["pretrain"] == jobs["evaluate_zeroshot"] == runs
    assert jobs["finetune"] == runs * len(finetune_tasks())  # per_task on a cluster
    assert not jobs["render_corpus"] and not jobs["render_benchmark"]  # nothing synthetic is left
    assert len(zeroshot_benchmarks()) == 8
    # every file the user still has to provide is named, with its config key
    err = proc.stdout + proc.stderr
    assert "corpus.metadata: data/internvid/InternVid-10M-FLT.jsonl does not exist yet" in err
    assert "benchmarks.k400.annotations.val" in err
    assert not (tmp_path / "results").exists()
