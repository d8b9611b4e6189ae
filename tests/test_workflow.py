"""The workflow end to end through Snakemake, on a reduced config.

One session-scoped run (`default_run`, tests/workflow_run.py; a few minutes on
2 cores) backs several checks: the table appears with every metric, a second
dry run has nothing to do, and a change to one arm reruns only that arm's
jobs and the report.
"""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
import yaml
from workflow_run import ARMS, planned_jobs, reduced_config, smk

from viclip.eval.catalog import columns


@pytest.fixture()
def finished(default_run):
    return default_run


def test_table_has_every_metric_for_every_arm(finished):
    tex = (finished / "results/tables/ablation.tex").read_text()
    assert "booktabs" in tex or r"\toprule" in tex
    assert "synthetic" in tex.lower()
    summary = pd.read_csv(finished / "results/tables/ablation.csv")
    assert set(summary["arm"]) == set(ARMS)
    for arm in ARMS:
        rows = summary[summary["arm"] == arm]
        assert len(rows) == len(columns()) == 30
        assert rows["mean"].notna().all()
    assert (finished / "results/figures/ablation_deltas.png").stat().st_size > 0
    cost = pd.read_csv(finished / "results/tables/compute.csv").set_index("arm")
    assert cost.loc["nomask", "flops"] > cost.loc["baseline", "flops"]  # masking 90% of tokens is cheaper
    assert "Pretraining cost" in tex
    for log in ("logs/pretrain/baseline-seed0.log", "results/runs/baseline/seed0/benchmark.tsv"):
        assert (finished / log).stat().st_size > 0


def test_second_dry_run_has_nothing_to_do(finished, repo, snakemake_bin):
    t0 = time.perf_counter()
    out = smk(snakemake_bin, repo, finished, "-n").stdout
    assert "Nothing to be done" in out, out[-2000:]
    assert time.perf_counter() - t0 < 30  # the 3 s target is measured by bench/, not here


def test_changing_one_arm_reruns_only_that_arm(finished, repo, snakemake_bin):
    cfg = yaml.safe_load((finished / "config.yaml").read_text())
    cfg["arms"]["nomask"]["mask_ratio"] = 0.5
    changed = finished / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    out = smk(snakemake_bin, repo, finished, "-n", "--configfile", str(changed)).stdout
    jobs = planned_jobs(out)
    rules = {r for r, _ in jobs}
    assert rules == {"pretrain", "evaluate_zeroshot", "finetune_run", "report", "all"}, jobs
    for rule, wc in jobs:
        if rule in ("pretrain", "evaluate_zeroshot", "finetune_run"):
            assert "arm=nomask" in wc, (rule, wc)
    assert sum(r == "finetune_run" for r, _ in jobs) == 1  # per_run: one job fine-tunes the run's 7 tasks


def test_changing_the_intervals_reruns_only_the_report(finished, repo, snakemake_bin):
    """report.intervals and report.bootstrap reach the report through its params, and nothing else."""
    cfg = yaml.safe_load((finished / "config.yaml").read_text())
    for change in ({"intervals": "t"}, {"bootstrap": {"resamples": 1000, "seed": 1}}):
        changed = finished / "intervals.yaml"
        changed.write_text(yaml.safe_dump({**cfg, "report": {**cfg["report"], **change}}))
        jobs = planned_jobs(smk(snakemake_bin, repo, finished, "-n", "--configfile", str(changed)).stdout)
        assert {r for r, _ in jobs} == {"report", "all"}, (change, jobs)


def test_changing_coarse_detail_reruns_the_coarse_captions_and_what_reads_them(finished, repo, snakemake_bin):
    cfg = yaml.safe_load((finished / "config.yaml").read_text())
    cfg["captions"]["coarse_detail"] = 0.5
    changed = finished / "coarse.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(smk(snakemake_bin, repo, finished, "-n", "--configfile", str(changed)).stdout)
    rules = {r for r, _ in jobs}
    assert {"caption_coarse", "fuse", "pretrain"} <= rules, jobs
    assert not rules & {"caption_frames", "summarize", "render_corpus", "decode_corpus", "render_benchmark"}, jobs


def test_adding_the_same_compute_arm_plans_only_its_jobs(finished, repo, snakemake_bin):
    """A match_compute arm runs as its own arm; the baseline's schedule (and every other job) stays."""
    cfg = yaml.safe_load((finished / "config.yaml").read_text())
    default = yaml.safe_load((repo / "config.yaml").read_text())
    cfg["arms"]["samecompute"] = default["arms"]["samecompute"]
    changed = finished / "samecompute.yaml"
    changed.write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = planned_jobs(smk(snakemake_bin, repo, finished, "-n", "--configfile", str(changed)).stdout)
    assert {r for r, _ in jobs} == {"pretrain", "evaluate_zeroshot", "finetune_run", "report", "all"}, jobs
    assert all("arm=samecompute" in wc for r, wc in jobs if r in ("pretrain", "evaluate_zeroshot", "finetune_run"))
    bad = finished / "bad.yaml"
    cfg["arms"]["samecompute"]["match_compute"] = "nosucharm"
    bad.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = smk(snakemake_bin, repo, finished, "-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0 and "arms.samecompute.match_compute" in proc.stdout + proc.stderr


def test_key_order_of_the_config_does_not_matter(finished, repo, snakemake_bin):
    """The same settings in another key order (another YAML dump) must not rerun anything."""

    def reorder(value):
        if isinstance(value, dict):
            keys = list(value)
            # keep arm order: it is the table's row order, a real change
            keys = keys if "baseline" in value else keys[::-1]
            return {k: reorder(value[k]) for k in keys}
        return value

    cfg = yaml.safe_load((finished / "config.yaml").read_text())
    shuffled = finished / "shuffled.yaml"
    shuffled.write_text(yaml.safe_dump(reorder(cfg), sort_keys=False))
    out = smk(snakemake_bin, repo, finished, "-n", "--configfile", str(shuffled)).stdout
    assert "Nothing to be done" in out, out[-3000:]


def test_per_task_jobs_split_fine_tuning(tmp_path, repo, snakemake_bin):
    cfg = reduced_config(repo)
    cfg["finetune"]["jobs"] = "per_task"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(smk(snakemake_bin, repo, tmp_path, "-n").stdout)
    finetunes = [wc for r, wc in jobs if r == "finetune"]
    assert len(finetunes) == len(ARMS) * 7
    assert all("task=" in wc for wc in finetunes)


def test_malformed_config_stops_before_any_job(tmp_path, repo, snakemake_bin):
    cfg = reduced_config(repo)
    cfg["arms"]["nomask"]["mask_ratio"] = 1.0
    cfg["pretrain"]["learning_rate"] = 0.1
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = smk(snakemake_bin, repo, tmp_path, "--cores", "1", check=False)
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    assert "arms.nomask.mask_ratio" in err
    assert "pretrain.learning_rate" in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("flag", ["--dag", "--rulegraph"])
def test_graphs_render_as_dot(finished, repo, snakemake_bin, flag):
    out = smk(snakemake_bin, repo, finished, flag, "--forceall").stdout
    assert out.lstrip().startswith("digraph")
    for rule in ("pretrain", "finetune_run", "evaluate_zeroshot", "report", "fuse"):
        assert rule in out


def test_summary_lists_every_output(finished, repo, snakemake_bin):
    out = smk(snakemake_bin, repo, finished, "--summary").stdout
    assert "results/tables/ablation.tex" in out
    assert "results/runs/nomask/seed0/checkpoint.pt" in out
    assert "no update" in out and "update pending" not in out


def test_same_config_gives_the_same_table(finished, tmp_path, repo, snakemake_bin):
    """A second run from scratch reproduces every number (seeded data, videos, training, evaluation)."""
    (tmp_path / "config.yaml").write_text((finished / "config.yaml").read_text())
    smk(snakemake_bin, repo, tmp_path, "--cores", "2")
    first = (finished / "results/tables/ablation.csv").read_text()
    assert (tmp_path / "results/tables/ablation.csv").read_text() == first
    # and byte-identical checkpoints: a record's checkpoint.sha256 names the weights, not when they were made
    records = sorted((finished / "results/eval").rglob("*.json"))
    assert records
    for path in records:
        again = tmp_path / path.relative_to(finished)
        sha = [(json.loads(p.read_text())["checkpoint"] or {}).get("sha256") for p in (path, again)]
        assert sha[0] is not None and sha[0] == sha[1], path.relative_to(finished)
