"""Released-weights arms (`pretrain: false`): official ViCLIP files evaluated like trained arms.

- The loader reads .pth and .safetensors tensors-only and strictly; bad files
  stop with the file and the config key named. A .pth whose pickle holds a
  config object (as the official training code saves it) is refused, with a
  one-off extraction command that works; a pickle that runs code gets none.
- The import writes the checkpoint a pretraining run would, at its path.
- Config, ablations and the table treat the arm as a reference row: no
  schedule, one run (first seed), no ablation, no difference to the baseline,
  and a measured row beside the published one with the difference to it.
- A reduced default workflow with such an arm (an official-layout export of
  a small model) runs its zero-shot and fine-tuned evaluation and gives it
  its own row in ablation.tex.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import compile_latex
from test_report import make_records
from workflow_run import planned_jobs, reduced_config, smk

from viclip.config import ConfigError, resolve_kinds, validate
from viclip.eval.catalog import columns, finetune_tasks, zeroshot_benchmarks
from viclip.model.checkpoints import (
    TEMPORAL_KEY,
    UnreadableCheckpoint,
    export_official,
    extraction_command,
    load_released,
    save_official,
)
from viclip.model.viclip import ViCLIP, ViCLIPConfig
from viclip.report.ablations import ablations
from viclip.report.html_table import render_html
from viclip.report.published import VICLIP_B16
from viclip.report.table import render_latex, summarise
from viclip.train.arms import arm_schedule, released_arms, released_seed, trained_arms
from viclip.train.checkpoint import import_released, load_model

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "configs" / "schema.yaml"
KEY = "arms.released.checkpoint"
RELEASED = {"label": "Released ViCLIP-B/16 (measured)", "pretrain": False, "checkpoint": "data/viclip/v.pth"}

torch.set_num_threads(1)


@pytest.fixture()
def model_cfg() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())["model"]


def small(model_cfg: dict, seed: int = 7, **over) -> ViCLIP:
    torch.manual_seed(seed)
    return ViCLIP(ViCLIPConfig.from_dict({**model_cfg, **over}))


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- loading released files


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_released_file_loads_bit_exact(tmp_path, model_cfg, suffix):
    source = small(model_cfg)
    path = tmp_path / f"viclip{suffix}"
    save_official(source, path)
    loaded, report = load_released(path, model_cfg, KEY)
    assert same_state(loaded.state_dict(), source.state_dict())
    assert report["adapted"] == {} and report["tensors"] == len(source.state_dict())


def test_training_save_with_ddp_prefix_and_plain_extras_loads(tmp_path, model_cfg):
    """The official trainer's layout: {"model": ..., "epoch": ...}, keys as DDP leaves them."""
    source = small(model_cfg)
    sd = {f"module.{k}": v for k, v in export_official(source)["model"].items()}
    torch.save({"model": sd, "epoch": 9, "global_step": 1234}, tmp_path / "ckpt.pth")
    loaded, _ = load_released(tmp_path / "ckpt.pth", model_cfg, KEY)
    assert same_state(loaded.state_dict(), source.state_dict())


def test_fewer_frames_in_the_file_are_interpolated_as_the_official_loader_does(tmp_path, model_cfg):
    save_official(small(model_cfg, num_frames=4), tmp_path / "v.safetensors")
    loaded, report = load_released(tmp_path / "v.safetensors", model_cfg, KEY)
    assert report["adapted"][TEMPORAL_KEY]["from"][1] == 4 and loaded.cfg.num_frames == model_cfg["num_frames"]


def pickled_config(tmp_path: Path, model_cfg: dict, payload) -> tuple[Path, ViCLIP]:
    source = small(model_cfg)
    path = tmp_path / "ViCLIP-B_InternVid-FLT-10M.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save({"model": export_official(source)["model"], "config": payload, "epoch": 0}, path)
    return path, source


def test_a_pickled_config_object_is_refused_with_a_working_extraction_command(tmp_path, model_cfg):
    path, source = pickled_config(tmp_path, model_cfg, argparse.Namespace(lr=4e-4, model="vit_b16"))
    with pytest.raises(UnreadableCheckpoint) as info:
        load_released(path, model_cfg, KEY)
    message = str(info.value)
    assert KEY in message and str(path) in message and "argparse.Namespace" in message
    command = extraction_command(path)
    assert command in message and f"set {KEY} to {path.with_suffix('.safetensors')}" in message
    # the command, run by hand as the message says, gives a file that loads into the same weights
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"]
    subprocess.run([sys.executable, *argv[1:]], check=True, capture_output=True, timeout=120)
    loaded, _ = load_released(path.with_suffix(".safetensors"), model_cfg, KEY)
    assert same_state(loaded.state_dict(), source.state_dict())


class RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_runs_code_gets_no_extraction_command(tmp_path, model_cfg):
    marker = tmp_path / "the-command-ran"
    path, _ = pickled_config(tmp_path, model_cfg, RunsACommand(marker))
    with pytest.raises(UnreadableCheckpoint) as info:
        load_released(path, model_cfg, KEY)
    message = str(info.value)
    assert KEY in message and "system" in message and "runs code" in message
    assert "weights_only" not in message and "python -c" not in message
    assert not marker.exists()


def test_a_damaged_file_is_named_without_an_extraction_command(tmp_path, model_cfg):
    save_official(small(model_cfg), tmp_path / "v.pth")
    cut = tmp_path / "cut.pth"
    cut.write_bytes((tmp_path / "v.pth").read_bytes()[:300])
    with pytest.raises(UnreadableCheckpoint) as info:
        load_released(cut, model_cfg, KEY)
    assert KEY in str(info.value) and str(cut) in str(info.value) and "python -c" not in str(info.value)


def test_missing_file_names_the_key(tmp_path, model_cfg):
    with pytest.raises(FileNotFoundError, match=f"{KEY}: .*nothere.pth"):
        load_released(tmp_path / "nothere.pth", model_cfg, KEY)


def test_another_architecture_is_refused_naming_the_tensors_and_the_model_keys(tmp_path, model_cfg):
    save_official(small(model_cfg, vision_width=32, text_width=32), tmp_path / "wide.safetensors")
    with pytest.raises(ValueError) as info:
        load_released(tmp_path / "wide.safetensors", model_cfg, KEY)
    message = str(info.value)
    assert message.startswith(f"{KEY}: {tmp_path / 'wide.safetensors'}: does not match the model")
    assert "shape mismatch: vision_encoder.class_embedding checkpoint [32] vs model [64]" in message
    assert "model.*" in message


def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, model_cfg):
    sd = export_official(small(model_cfg))["model"]
    sd["vision_encoder.proj"][0, 0] = float("nan")
    torch.save({"model": sd}, tmp_path / "nan.pth")
    with pytest.raises(ValueError, match=f"{KEY}: .*nan.pth: non-finite .* vision_encoder.proj"):
        load_released(tmp_path / "nan.pth", model_cfg, KEY)


# ---------------------------------------------------------------- the import


def test_import_writes_a_run_checkpoint_and_nothing_on_failure(tmp_path, model_cfg):
    source = small(model_cfg)
    save_official(source, tmp_path / "v.safetensors")
    out = tmp_path / "results/runs/released/seed3/checkpoint.pt"
    released = import_released(tmp_path / "v.safetensors", model_cfg, out, seed=3, key=KEY)
    model, ckpt = load_model(out)
    assert same_state(model.state_dict(), source.state_dict())
    assert ckpt["config"] == ViCLIPConfig.from_dict(model_cfg).to_dict() and ckpt["seed"] == 3
    assert ckpt["released"] == released and len(released["sha256"]) == 64
    # a second import of the same file gives the same bytes (records carry the checkpoint's sha256)
    again = tmp_path / "again.pt"
    import_released(tmp_path / "v.safetensors", model_cfg, again, seed=3, key=KEY)
    assert again.read_bytes() != b"" and again.read_bytes() == out.read_bytes()
    bad = tmp_path / "bad" / "checkpoint.pt"
    save_official(small(model_cfg, embed_dim=32), tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match=KEY):
        import_released(tmp_path / "other.safetensors", model_cfg, bad, seed=3, key=KEY)
    assert not bad.parent.exists() or not any(bad.parent.iterdir())


# ---------------------------------------------------------------- config, schedules, ablations


def with_released(cfg: dict) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg["arms"]["released"] = dict(RELEASED)
    return cfg


def test_schema_accepts_a_released_arm_and_refuses_a_mix(cfg):
    validate(with_released(cfg), SCHEMA)
    mixed = with_released(cfg)
    mixed["arms"]["released"]["mask_ratio"] = 0.9
    with pytest.raises(ConfigError, match="unknown key arms.released.mask_ratio"):
        validate(mixed, SCHEMA)
    unnamed = with_released(cfg)
    del unnamed["arms"]["released"]["checkpoint"]
    with pytest.raises(ConfigError, match="arms.released: 'checkpoint' is a required property"):
        validate(unnamed, SCHEMA)


def test_an_override_that_turns_an_arm_into_released_weights_replaces_it_whole(cfg):
    override = {"arms": {"nomask": dict(RELEASED)}}
    merged = copy.deepcopy(cfg)
    merged["arms"]["nomask"].update(RELEASED)  # what Snakemake's key-by-key merge leaves
    resolved = resolve_kinds(merged, override, SCHEMA)
    assert resolved["arms"]["nomask"] == RELEASED
    validate(resolved, SCHEMA)


def test_released_arms_have_no_schedule_and_one_seed(cfg):
    cfg = with_released(cfg)
    assert released_arms(cfg["arms"]) == ["released"] and "released" not in trained_arms(cfg["arms"])
    assert released_seed([3, 1, 2]) == 3
    with pytest.raises(ValueError, match="arms.released: a released-weights arm"):
        arm_schedule("released", cfg["arms"], cfg["pretrain"], cfg["model"])
    cfg["arms"]["samecompute"]["match_compute"] = "released"
    with pytest.raises(ValueError, match="arms.samecompute.match_compute: 'released' is a released-weights arm"):
        arm_schedule("samecompute", cfg["arms"], cfg["pretrain"], cfg["model"])


def test_no_ablation_includes_a_released_arm(cfg):
    cfg = with_released(cfg)
    derived = ablations(cfg["arms"], "baseline")
    assert derived == ablations({a: s for a, s in cfg["arms"].items() if a != "released"}, "baseline")
    with pytest.raises(ValueError, match="report.ablations.ref.arms: 'released' is a released-weights arm"):
        ablations(cfg["arms"], "baseline", {"ref": {"arms": ["released"]}})
    with pytest.raises(ValueError, match="report.baseline: 'released' is a released-weights arm"):
        ablations(cfg["arms"], "released")


# ---------------------------------------------------------------- the table


@pytest.fixture()
def summary_with_released() -> pd.DataFrame:
    records = make_records(arms=["baseline", "minus"]) + make_records(arms=["baseline"], seeds=[0])
    for rec in records[-len({(c.benchmark, c.protocol) for c in columns()}) :]:
        rec["arm"] = "released"
    return summarise(records, ["baseline", "released", "minus"], "baseline", released=["released"])


LABELS = {"baseline": "Baseline", "minus": "Minus", "released": "Released ViCLIP-B/16 (measured)"}


def test_the_released_arm_is_summarised_without_a_comparison(summary_with_released):
    rows = summary_with_released[summary_with_released["arm"] == "released"]
    assert len(rows) == 30 and (rows["n_seeds"] == 1).all() and rows["mean"].notna().all()
    assert rows["delta"].isna().all() and (rows["ci_method"] == "").all() and rows["std"].isna().all()
    assert summary_with_released[summary_with_released["arm"] == "minus"]["delta"].notna().all()


def block_lines(tex: str, group: str) -> list[str]:
    """The body rows of one block (below the header)."""
    block = tex.split(f"% {group}\n", 1)[1].split("\\end{tabular}", 1)[0]
    body = block.split("\\midrule\n", 1)[1]
    return [line for line in body.splitlines() if line.endswith("\\\\")]


def test_latex_shows_the_measured_row_beside_the_published_one(summary_with_released, tmp_path):
    arms = ["baseline", "released", "minus"]
    tex = render_latex(
        summary_with_released, arms, "baseline", LABELS, False, reference=VICLIP_B16, released=["released"]
    )
    lines = block_lines(tex, "Zero-shot classification")
    labels = [line.split(" & ", 1)[0] for line in lines]
    # trained arms first (config order otherwise kept), then the published row, the measured row, their difference
    assert labels[:3] == ["Baseline", "Minus", "\\quad $\\Delta$ vs.\\ baseline"]
    assert labels[3].startswith("\\textit{ViCLIP-B/16 published")
    assert labels[4:] == ["Released ViCLIP-B/16 (measured)", "\\quad $\\Delta$ vs.\\ published"]
    k400 = [c for c in columns() if c.group == "Zero-shot classification"][0]
    measured = summary_with_released.query("arm == 'released' and benchmark == @k400.benchmark").iloc[0]["mean"]
    assert lines[5].split(" & ")[1] == f"${measured - VICLIP_B16.values[k400.key]:+.1f}$"
    assert lines[4].split(" & ")[1] == f"{measured:.1f}" and "\\textbf" not in lines[4]  # not in the running
    # a block the sources do not cover: the measured row, no difference row
    ft_cls = [line.split(" & ", 1)[0] for line in block_lines(tex, "Fine-tuned classification")]
    assert ft_cls[-1] == "Released ViCLIP-B/16 (measured)"
    assert "not part of an ablation" in tex and "measured value minus the published one" in tex
    assert "3 seeds" in tex  # the trained arms' seeds; the released run is described on its own
    compile_latex(tmp_path, tex)


def test_html_shows_the_measured_row(summary_with_released):
    page = render_html(
        summary_with_released,
        ["baseline", "released", "minus"],
        "baseline",
        LABELS,
        False,
        VICLIP_B16,
        None,
        ["released"],
    )
    assert page.count('<tr class="released" data-arm="released">') == 4  # one per catalog group
    assert page.count("<th>Δ vs. published</th>") == len(VICLIP_B16.groups())
    assert '<tr class="delta" data-arm="released"><th>Δ vs. baseline' not in page


# ---------------------------------------------------------------- the workflow


def released_config(repo: Path, checkpoint: str, seeds=(0,)) -> dict:
    cfg = reduced_config(repo)
    cfg["seeds"] = list(seeds)
    cfg["arms"] = {"baseline": cfg["arms"]["baseline"], "released": {**RELEASED, "checkpoint": checkpoint}}
    cfg["arms"]["released"]["label"] = "Released tiny ViCLIP (measured)"
    return cfg


def test_plan_imports_once_under_the_first_seed_and_names_a_missing_file(tmp_path, repo, snakemake_bin):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(released_config(repo, "data/viclip/tiny.pth", (3, 4))))
    proc = smk(snakemake_bin, repo, tmp_path, "-n")
    jobs = planned_jobs(proc.stdout)
    assert [w for r, w in jobs if r == "import_released"] == ["arm=released, seed=3"]
    assert sorted(w for r, w in jobs if r == "pretrain") == ["arm=baseline, seed=3", "arm=baseline, seed=4"]
    assert sorted(w for r, w in jobs if r == "evaluate_zeroshot") == [
        "arm=baseline, seed=3",
        "arm=baseline, seed=4",
        "arm=released, seed=3",
    ]
    assert "  arms.released.checkpoint: data/viclip/tiny.pth" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def released_run(tmp_path_factory, repo, snakemake_bin) -> Path:
    """Baseline and a released arm whose file is an official-layout export of a small model of the config's."""
    work = tmp_path_factory.mktemp("released")
    cfg = released_config(repo, "data/viclip/tiny-viclip.safetensors")
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    torch.manual_seed(11)
    save_official(ViCLIP(ViCLIPConfig.from_dict(cfg["model"])), work / "data/viclip/tiny-viclip.safetensors")
    smk(snakemake_bin, repo, work, "--cores", "2")
    return work


@pytest.mark.slow
def test_released_arm_runs_zero_shot_and_fine_tuned_and_has_its_own_row(released_run):
    work = released_run
    ckpt = torch.load(work / "results/runs/released/seed0/checkpoint.pt", weights_only=True)
    assert ckpt["released"]["path"] == "data/viclip/tiny-viclip.safetensors"
    assert not (work / "results/runs/released/seed0/log.jsonl").exists()  # not trained here
    for bench in zeroshot_benchmarks():
        rec = json.loads((work / f"results/eval/released/seed0/{bench}-zeroshot.json").read_text())
        assert rec["arm"] == "released" and rec["protocol"] == "zeroshot" and rec["metrics"]
    for task in finetune_tasks():
        rec = json.loads((work / f"results/eval/released/seed0/{task}-finetuned.json").read_text())
        assert rec["arm"] == "released" and rec["protocol"] == "finetuned" and rec["metrics"]
    tex = (work / "results/tables/ablation.tex").read_text()
    rows = [line for line in tex.splitlines() if line.startswith("Released tiny ViCLIP (measured) & ")]
    assert len(rows) == 4  # one row in each block
    summary = pd.read_csv(work / "results/tables/ablation.csv")
    assert set(summary["arm"]) == {"baseline", "released"}
    assert summary.query("arm == 'released'")["delta"].isna().all()
    compute = pd.read_csv(work / "results/tables/compute.csv")
    assert list(compute["arm"]) == ["baseline"]  # no pretraining cost for weights trained elsewhere
    assert not list((work / "results/figures/ablations").glob("*released*"))


@pytest.mark.slow
def test_pointing_the_arm_at_another_file_reruns_only_its_jobs(released_run, repo, snakemake_bin):
    work = released_run
    again = smk(snakemake_bin, repo, work, "-n").stdout
    assert "Nothing to be done" in again, again[-3000:]
    shutil.copy(work / "data/viclip/tiny-viclip.safetensors", work / "data/viclip/copy.safetensors")
    proc = smk(
        snakemake_bin, repo, work, "-n", "--config", "arms={released: {checkpoint: data/viclip/copy.safetensors}}"
    )
    jobs = planned_jobs(proc.stdout)
    assert {r for r, _ in jobs} == {"import_released", "evaluate_zeroshot", "finetune_run", "report", "all"}, jobs
    assert all("arm=released" in w for r, w in jobs if r not in ("report", "all"))
