"""Tests for viclip.config against the shipped config.yaml and configs/schema.yaml."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from viclip.config import ConfigError, load, resolve_kinds, validate

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config.yaml"
SCHEMA = ROOT / "configs" / "schema.yaml"


def _error(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate(config, SCHEMA, "test.yaml")
    return str(info.value)


def test_shipped_config_is_valid():
    config = load(CONFIG, SCHEMA)
    assert config["report"]["baseline"] in config["arms"]
    assert validate(copy.deepcopy(config), SCHEMA) == config


def test_unknown_top_level_key(cfg):
    cfg["trainer"] = {}
    msg = _error(cfg)
    assert "unknown key trainer" in msg and "test.yaml" in msg


def test_unknown_nested_key(cfg):
    cfg["model"]["widht"] = 64
    assert "model.widht" in _error(cfg)


def test_unknown_key_inside_an_arm(cfg):
    cfg["arms"]["nomask"]["maskratio"] = 0.5
    assert "arms.nomask.maskratio" in _error(cfg)


def test_wrong_type_names_the_key_path(cfg):
    cfg["pretrain"]["lr"] = "fast"
    msg = _error(cfg)
    assert "pretrain.lr" in msg and "'fast'" in msg


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5])
def test_mask_ratio_out_of_range(cfg, ratio):
    cfg["arms"]["nomask"]["mask_ratio"] = ratio
    assert "arms.nomask.mask_ratio" in _error(cfg)


def test_mask_ratio_bounds_that_are_allowed(cfg):
    cfg["arms"]["nomask"]["mask_ratio"] = 0.0
    cfg["arms"]["baseline"]["mask_ratio"] = 0.99
    validate(cfg, SCHEMA)


def test_missing_required_key(cfg):
    del cfg["world"]["fps"]
    msg = _error(cfg)
    assert "world" in msg and "fps" in msg


def test_benchmark_settings_are_checked(cfg):
    cfg["benchmarks"]["anet"]["events_per_clip"] = 4
    assert "benchmarks.anet.events_per_clip" in _error(cfg)


def test_every_problem_is_listed(cfg):
    cfg["pretrain"]["lr"] = "fast"
    cfg["model"]["widht"] = 1
    cfg["captions"]["noise"]["coarse"] = 2
    msg = _error(cfg)
    for path in ("pretrain.lr", "model.widht", "captions.noise.coarse"):
        assert path in msg


def test_baseline_must_name_an_arm(cfg):
    cfg["report"]["baseline"] = "nosuch"
    msg = _error(cfg)
    assert "report.baseline" in msg and "nosuch" in msg


def test_baseline_follows_renamed_arms(cfg):
    cfg["arms"] = {"other": cfg["arms"]["baseline"]}
    assert "report.baseline" in _error(cfg)
    cfg["report"]["baseline"] = "other"
    validate(cfg, SCHEMA)


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("seeds: [0, 1\nworld: {seed: 7\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load(path, SCHEMA)


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "just a string\n", ""])
def test_non_mapping_file_names_the_file(tmp_path, text):
    path = tmp_path / "list.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="list.yaml"):
        load(path, SCHEMA)


def test_load_names_the_file_on_schema_errors(tmp_path, cfg):
    cfg["model"]["widht"] = 1
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as info:
        load(path, SCHEMA)
    assert str(path) in str(info.value) and "model.widht" in str(info.value)


INTERNVID = {
    "name": "internvid",
    "metadata": "InternVid-10M-FLT.jsonl",
    "subset": {"method": "random", "size": 1000, "seed": 0},
    "download": {"source": "local", "local_dir": "videos", "short_side": 224, "fps": 8},
}
K400 = {"reader": "kinetics400", "video_root": "k400", "annotations": {"val": "validate.csv"}}


def _merged(base: dict, override: dict) -> dict:
    """What Snakemake makes of config.yaml plus --configfile: a key-by-key merge."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_switching_kinds_replaces_the_section_instead_of_mixing(cfg):
    override = {"corpus": INTERNVID, "benchmarks": {"k400": K400, "anet": {"test": 50}}}
    merged = _merged(cfg, override)
    assert "n_clips" in merged["corpus"]  # the mix a plain merge gives
    with pytest.raises(ConfigError):
        validate(copy.deepcopy(merged), SCHEMA)
    fixed = resolve_kinds(merged, override, SCHEMA)
    assert fixed["corpus"] == INTERNVID
    assert fixed["benchmarks"]["k400"] == K400
    # a tweak within a kind still merges key by key
    assert fixed["benchmarks"]["anet"] == {**cfg["benchmarks"]["anet"], "test": 50}
    validate(fixed, SCHEMA)


def test_a_tweak_to_the_synthetic_corpus_still_merges(cfg):
    override = {"corpus": {"n_clips": 100}}
    fixed = resolve_kinds(_merged(cfg, override), override, SCHEMA)
    assert fixed["corpus"] == {**cfg["corpus"], "n_clips": 100}


def test_errors_of_a_section_with_kinds_name_the_nearest_kind_field(cfg):
    cfg["corpus"] = {**INTERNVID, "subset": {"method": "diverse", "size": 10, "seed": 0}}
    msg = _error(cfg)
    assert "corpus.subset.method" in msg and "n_clips" not in msg


def test_a_preset_model_replaces_the_tiny_model_instead_of_mixing(cfg):
    override = {"model": {"name": "viclip-b16", "image_size": 224, "init": "clip"}}
    merged = _merged(cfg, override)
    assert merged["model"]["vision_width"] == cfg["model"]["vision_width"]  # the tiny width a plain merge keeps
    fixed = resolve_kinds(merged, override, SCHEMA)
    assert fixed["model"] == override["model"]  # the preset fills in the architecture
    validate(fixed, SCHEMA)


def test_a_tweak_to_the_tiny_model_still_merges(cfg):
    override = {"model": {"image_size": 64}}
    fixed = resolve_kinds(_merged(cfg, override), override, SCHEMA)
    assert fixed["model"] == {**cfg["model"], "image_size": 64}
