"""The pretraining-cost block of the report."""

import json

import numpy as np
import pytest
from conftest import compile_latex

from viclip.model.flops import count
from viclip.model.viclip import ViCLIPConfig
from viclip.report.compute import compute_table, measured_seconds, pretraining_flops, render_compute
from viclip.report.table import render_latex, summarise
from viclip.train.pretrain import epoch_steps

MODEL = dict(
    name="tiny",
    image_size=32,
    patch_size=8,
    num_frames=8,
    vision_width=64,
    vision_layers=2,
    vision_heads=4,
    embed_dim=64,
    drop_path=0.0,
    tokenizer="word_hash",
    vocab_size=2048,
    context_length=32,
    text_width=64,
    text_layers=2,
    text_heads=4,
    temp_init=0.07,
    freeze_text=False,
)
TRAIN = {"epochs": 3, "tune_epochs": 0.5, "batch_size": 16, "lr": 1e-3, "tune_lr": 1e-4}


def test_flops_add_up_stage_by_stage():
    cfg = ViCLIPConfig.from_dict(MODEL)
    masked = sum(epoch_steps(100, 3, 16)) * 16 * count(cfg, 0.9)["flops_train_step_per_pair"]
    tune = sum(epoch_steps(100, 0.5, 16)) * 16 * count(cfg, 0.0)["flops_train_step_per_pair"]
    assert pretraining_flops(MODEL, TRAIN, 0.9, 100) == pytest.approx(masked + tune)
    # no masking: both stages at full cost, so strictly more
    assert pretraining_flops(MODEL, TRAIN, 0.0, 100) > masked + tune


def write_log(path, seconds):
    path.write_text("".join(json.dumps({"epoch": i, "seconds": s}) + "\n" for i, s in enumerate(seconds)))
    return str(path)


def test_table_relative_to_baseline(tmp_path):
    logs = {
        "base": [write_log(tmp_path / f"b{i}.jsonl", [1.0, s]) for i, s in enumerate((10.0, 12.0))],
        "full": [write_log(tmp_path / f"f{i}.jsonl", [2.0, s]) for i, s in enumerate((30.0, 33.0))],
    }
    df = compute_table(
        ["base", "full"], "base", MODEL, {"base": TRAIN, "full": TRAIN}, {"base": 0.9, "full": 0.0}, 100, logs
    )
    row = df.set_index("arm")
    assert row.loc["base", "seconds_mean"] == 11.0 and row.loc["full", "seconds_mean"] == 31.5
    assert row.loc["full", "seconds_vs_baseline"] == pytest.approx(31.5 / 11.0)
    assert row.loc["base", "flops_vs_baseline"] == 1.0 and row.loc["full", "flops_vs_baseline"] > 2
    assert np.isclose(row.loc["base", "seconds_std"], np.std([10.0, 12.0], ddof=1))
    block = render_compute(df, {"base": "Base_line", "full": "Full"})
    assert "Base\\_line" in block and ("TFLOPs" in block or "GFLOPs" in block)


def test_bad_log_names_the_file(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.jsonl"):
        measured_seconds(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"epoch": 0}\n')
    with pytest.raises(ValueError, match="bad.jsonl.*seconds"):
        measured_seconds(bad)


def test_table_with_cost_block_compiles(tmp_path):
    from test_report import ARMS, LABELS, make_records  # the report tests' synthetic records

    logs = {arm: [write_log(tmp_path / f"{arm}.jsonl", [5.0])] for arm in ARMS}
    df = compute_table(ARMS, "baseline", MODEL, {a: TRAIN for a in ARMS}, {a: 0.9 for a in ARMS}, 64, logs)
    tex = render_latex(
        summarise(make_records(), ARMS, "baseline"),
        ARMS,
        "baseline",
        LABELS,
        synthetic=True,
        compute=render_compute(df, LABELS),
    )
    assert "Pretraining cost" in tex
    compile_latex(tmp_path, tex)
