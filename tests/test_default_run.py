"""Issue 17's acceptance: the embedded default (config.yaml, unchanged) as a faithful miniature.

One full run of the default per session (`full_default_run`, at most 8 minutes on 2 cores, measured by
bench/default_run.py) and checks on its records: every metric informative for the baseline (chance from
each record's n_candidates), fine-tuning above zero-shot, no diverged run, no slot trivially easy.
A change that silences a metric or hides a divergence fails here. What issue 17 leaves open is named
(OPEN_UNINFORMATIVE; fine-tuned retrieval as a strict xfail, which fails once it passes). The checks
themselves are tested on records made here, so they are known to fail when they should. CI cost: one
more run of the default, 7.5 to 9 minutes on 2 cores (456 and 547 s of fixture set-up in two CI runs half an hour apart).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from workflow_run import smk

from viclip.eval.catalog import columns
from viclip.report.acceptance import chance, not_finetuned, target, too_easy, uninformative
from viclip.report.divergence import check_runs


@pytest.fixture(scope="session")
def full_default_run(tmp_path_factory, repo, snakemake_bin) -> Path:
    work = tmp_path_factory.mktemp("full_default")
    (work / "config.yaml").write_text((repo / "config.yaml").read_text())
    smk(snakemake_bin, repo, work, "--cores", "2")
    return work


def read_records(work: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((work / "results/eval").rglob("*.json"))]


# Columns issue 17 leaves open (docs/ARCHITECTURE.md): LSMDC's partial captions leave zero-shot T2V R@1 at
# 1.5-4% of 200, and with 3 seeds its t-interval reached below chance; the paired bootstrap, now the default,
# puts its low end at 0.67% against chance 0.5% (2, 4 and 1.5% over the seeds): too close to call
# informative, so it stays. SSv2 fine-tuned left this list when its recipe grew to 384 steps of 16 clips
# without crops (35% top-1, 82% top-5; 12 steps left it at chance, bench/results/finetune_budget.json), and
# retrieval fine-tuned at lr 1e-4 keeps its zero-shot level with seeds that agree, so LSMDC, MSVD V2T and ANet
# T2V fine-tuned left it too. Any other column that falls to chance fails this test.
OPEN_UNINFORMATIVE = {"lsmdc/zeroshot/t2v_r1"}


def test_every_metric_is_informative_for_the_baseline(full_default_run):
    failing = {f.split(":")[0] for f in uninformative(read_records(full_default_run))}
    assert failing <= OPEN_UNINFORMATIVE, sorted(failing - OPEN_UNINFORMATIVE)


def test_fine_tuned_k400_beats_zero_shot(full_default_run):
    assert not [f for f in not_finetuned(read_records(full_default_run)) if f.startswith("k400/")]


@pytest.mark.xfail(
    strict=True,
    reason="issue 17 item 2 open: 12-192 fine-tuning steps on 192 train clips leave retrieval R@1 near zero-shot; "
    "1,920 clips and 240 steps lift 7 of 10 columns but cost more than the default's whole 8-minute budget",
)
def test_fine_tuned_retrieval_beats_zero_shot(full_default_run):
    assert not_finetuned(read_records(full_default_run)) == []


def test_no_slot_is_trivially_easy(full_default_run):
    assert too_easy(read_records(full_default_run)) == []


def test_no_run_diverged_and_the_report_was_written(full_default_run):
    logs: dict[str, list[Path]] = {}
    for path in sorted((full_default_run / "results/runs").glob("*/seed*/log.jsonl")):
        logs.setdefault(path.parts[-3], []).append(path)  # stalls are judged within an arm's seeds
    cfg = yaml.safe_load((full_default_run / "config.yaml").read_text())
    assert {a: len(p) for a, p in logs.items()} == {a: len(cfg["seeds"]) for a in cfg["arms"]}
    check_runs(logs)
    assert (full_default_run / "results/tables/ablation.tex").stat().st_size > 0


# --------------------------------------------------------------------------- the checks on made-up records


def record(arm, seed, bench, protocol, metrics, n=100, task="retrieval"):
    return {
        "arm": arm,
        "seed": seed,
        "benchmark": bench,
        "protocol": protocol,
        "task": task,
        "metrics": metrics,
        "details": {"n_candidates": n},
    }


def healthy(seeds=(0, 1, 2), scale=1.0) -> list[dict]:
    """Baseline records clearly above chance on every column, fine-tuned above zero-shot."""
    recs = []
    for s in seeds:
        jitter = 0.01 * s
        for col in columns():
            task = "classification" if col.metric in ("top1", "top5", "avg") else "retrieval"
            n = 9 if col.benchmark == "ssv2" else 100
            base = {"top1": 0.4, "top5": 0.95, "avg": 0.7}.get(col.metric, 0.3)
            if col.protocol == "finetuned" and task == "retrieval" or col.key == "k400/finetuned/top1":
                base += 0.1
            metrics = {col.metric: scale * base + jitter}
            recs.append(record("baseline", s, col.benchmark, col.protocol, metrics, n, task))
    return recs


def test_chance_comes_from_n_candidates():
    c = chance(record("b", 0, "ssv2", "finetuned", {}, n=9, task="classification"))
    assert c == pytest.approx({"top1": 1 / 9, "top5": 5 / 9, "avg": 1 / 3})
    assert chance(record("b", 0, "msvd", "zeroshot", {}, n=200)) == pytest.approx({"t2v_r1": 0.005, "v2t_r1": 0.005})
    assert target("top1", 0.1) == pytest.approx(0.3)
    assert target("top5", 5 / 9) == pytest.approx(7 / 9)  # 3x chance is out of reach: halfway to 100%


def test_checks_pass_healthy_records_and_catch_a_silenced_metric():
    recs = healthy()
    assert uninformative(recs) == [] and not_finetuned(recs) == [] and too_easy(recs) == []
    for r in recs:
        if r["benchmark"] == "ssv2":
            r["metrics"] = {k: (1 / 9 if k == "top1" else 5 / 9) for k in r["metrics"]}  # at chance, as issue 17 found
    failures = uninformative(recs)
    assert [f.split(":")[0] for f in failures] == ["ssv2/finetuned/top1", "ssv2/finetuned/top5"]


def test_checks_catch_fine_tuning_that_does_not_fine_tune_and_an_easy_slot():
    recs = healthy()
    for r in recs:
        if r["benchmark"] == "lsmdc" and r["protocol"] == "finetuned":
            r["metrics"] = {k: v - 0.12 for k, v in r["metrics"].items()}  # below zero-shot, as issue 17 found
    assert [f.split(":")[0] for f in not_finetuned(recs)] == ["lsmdc/finetuned/t2v_r1", "lsmdc/finetuned/v2t_r1"]
    for r in recs:
        if r["benchmark"] == "k400" and r["protocol"] == "zeroshot" and "top1" in r["metrics"]:
            r["metrics"] = {"top1": 0.95}
    assert too_easy(recs) and "90%" in too_easy(recs)[0]
