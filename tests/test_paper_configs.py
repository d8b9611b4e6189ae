"""The paper-scale configs plan their whole DAG before any data exists (no job runs, no network)."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
import yaml
from snakemake.utils import update_config
from workflow_run import planned_jobs, smk

from viclip.config import resolve_kinds
from viclip.eval.catalog import finetune_tasks, zeroshot_benchmarks
from viclip.eval.protocol import finetuned_settings, zeroshot_settings
from viclip.model.config import ViCLIPConfig
from viclip.report.compute import pretraining_flops
from viclip.train.arms import arm_schedule


@pytest.mark.parametrize("name", ["paper.yaml", "paper-small.yaml"])
def test_paper_config_plans_the_whole_dag(tmp_path, repo, snakemake_bin, name):
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    proc = smk(snakemake_bin, repo, tmp_path, "-n", "--configfile", str(repo / "configs" / name))
    jobs = Counter(rule for rule, _ in planned_jobs(proc.stdout))
    config = yaml.safe_load((repo / "configs" / name).read_text())
    runs = len(config["arms"]) * len(config["seeds"])
    for rule in ("internvid_metadata", "select_subset", "download_clips", "report", "all"):
        assert jobs[rule] == 1, (rule, jobs)
    assert jobs["prepare_benchmark"] == jobs["decode_benchmark"] == 9
    assert jobs["pretrain"] == jobs["evaluate_zeroshot"] == runs
    assert jobs["finetune"] == runs * len(finetune_tasks())  # per_task on a cluster
    assert not jobs["render_corpus"] and not jobs["render_benchmark"]  # nothing synthetic is left
    assert len(zeroshot_benchmarks()) == 8
    # every file the user still has to provide is named, with its config key
    err = proc.stdout + proc.stderr
    missing = [line.strip() for line in err.splitlines() if line.startswith("  ") and ": data/" in line]
    assert "corpus.metadata: data/internvid/InternVid-10M-FLT.jsonl" in missing
    assert "model.clip_pretrained: data/clip/ViT-B-16-openai.bin" in missing
    assert "benchmarks.k400.annotations.val: data/benchmarks/kinetics400/validate.csv" in missing
    assert "benchmarks.ssv2.video_root: data/benchmarks/ssv2/20bn-something-something-v2" in missing
    assert sum(".video_root: " in line for line in missing) == 9
    assert not (tmp_path / "results").exists()


def as_snakemake_loads(repo, name: str) -> dict:
    """config.yaml with --configfile configs/<name> merged by Snakemake's own function, then resolved."""
    config = yaml.safe_load((repo / "config.yaml").read_text())
    override = yaml.safe_load((repo / "configs" / name).read_text())
    update_config(config, override)
    return resolve_kinds(config, override, repo / "configs" / "schema.yaml")


@pytest.mark.parametrize("name", ["paper.yaml", "paper-small.yaml"])
def test_paper_configs_train_the_published_architecture(repo, name):
    """ViCLIP-B/16 as released, with none of the embedded default's tiny model keys mixed in."""
    cfg = ViCLIPConfig.from_dict(as_snakemake_loads(repo, name)["model"])
    assert (cfg.image_size, cfg.patch_size, cfg.num_frames) == (224, 16, 8)
    assert (cfg.vision_width, cfg.vision_layers, cfg.vision_heads, cfg.embed_dim) == (768, 12, 12, 512)
    assert (cfg.text_width, cfg.text_layers, cfg.text_heads, cfg.context_length) == (512, 12, 8, 32)
    assert cfg.freeze_text and cfg.init == "clip" and cfg.temp_init == 0.01


@pytest.mark.parametrize("name", ["paper.yaml", "paper-small.yaml"])
def test_the_same_compute_arm_spends_the_baselines_flops(repo, name):
    config = as_snakemake_loads(repo, name)
    model, arms = config["model"], config["arms"]
    train = {a: arm_schedule(a, arms, config["pretrain"], model) for a in ("baseline", "samecompute", "nomask")}
    n_clips = config["corpus"]["subset"]["size"] or 10_000_000  # InternVid-10M-FLT: about 10.6M clips
    flops = {a: pretraining_flops(model, train[a], arms[a]["mask_ratio"], n_clips) for a in train}
    assert flops["samecompute"] == pytest.approx(flops["baseline"], rel=0.01)
    assert flops["nomask"] > 5 * flops["baseline"]  # what the same-compute arm saves against plain no masking
    assert train["samecompute"]["epochs"] < config["pretrain"]["epochs"]


@pytest.mark.parametrize("name", ["paper.yaml", "paper-small.yaml"])
def test_paper_configs_evaluate_with_the_papers_protocol(repo, name):
    """None of config.yaml's tiny-model evaluation or fine-tuning settings carry over to paper scale."""
    config = as_snakemake_loads(repo, name)
    assert zeroshot_settings(config["evaluate"]) == {**zeroshot_settings({}), "wise_ft_alpha": 0.5}
    assert finetuned_settings(config["evaluate"]) == finetuned_settings({})  # the protocol's defaults
    default = yaml.safe_load((repo / "config.yaml").read_text())["finetune"]
    recipe = {k: v for k, v in config["finetune"].items() if k not in ("jobs", "execution")}
    assert all(recipe[k] != default[k] for k in ("epochs", "batch_size", "lr", "weight_decay"))
