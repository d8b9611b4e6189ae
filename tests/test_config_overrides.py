"""Nested `--config` values: Snakemake leaves their leaves strings; the workflow types them by the schema.

Snakemake 9 types a top-level `--config key=value` itself but reads a nested
value (`--config "arms={nomask: {mask_ratio: 0.5}}"`) with YAML's base
loader, so every leaf arrives as a string; dotted keys
(`arms.nomask.mask_ratio=0.5`) it refuses outright.
"""

from __future__ import annotations

import copy
import shutil

import pytest
from snakemake.cli import parse_config
from test_config import SCHEMA
from workflow_run import planned_jobs, smk

from viclip.config import ConfigError, resolve_kinds, validate


def merged(base: dict, override: dict) -> dict:
    """What Snakemake makes of config.yaml plus the command line: a key-by-key merge."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def resolved(base: dict, *entries: str) -> dict:
    override = parse_config(list(entries))  # exactly what Snakemake hands the workflow
    return resolve_kinds(merged(base, override), override, SCHEMA)


def test_snakemake_leaves_nested_numbers_strings():
    assert parse_config(["arms={nomask: {mask_ratio: 0.5}}"]) == {"arms": {"nomask": {"mask_ratio": "0.5"}}}
    assert parse_config(["arms={'nomask': {'mask_ratio': 0.5}}"]) == {"arms": {"nomask": {"mask_ratio": "0.5"}}}
    with pytest.raises(ValueError, match="valid identifier"):  # dotted keys never reach the workflow
        parse_config(["arms.nomask.mask_ratio=0.5"])


@pytest.mark.parametrize("entry", ["arms={nomask: {mask_ratio: 0.5}}", "arms={'nomask': {'mask_ratio': 0.5}}"])
def test_a_nested_number_is_typed(cfg, entry):
    out = resolved(cfg, entry)
    assert out["arms"]["nomask"]["mask_ratio"] == 0.5 and isinstance(out["arms"]["nomask"]["mask_ratio"], float)
    assert out["arms"]["nomask"]["label"] == cfg["arms"]["nomask"]["label"]  # the rest of the arm is kept
    assert out["arms"].keys() == cfg["arms"].keys()
    validate(out, SCHEMA)


def test_integers_booleans_nulls_and_lists_are_typed(cfg):
    out = resolved(
        cfg,
        "pretrain={epochs: 3, lr: 1e-3, warmup_epochs: null, execution: {deterministic: true, keep: 4}}",
        "seeds=[0, 1, 2]",
    )
    p = out["pretrain"]
    assert (p["epochs"], p["lr"], p["warmup_epochs"]) == (3, 1e-3, None)
    assert p["execution"]["deterministic"] is True and p["execution"]["keep"] == 4
    assert out["seeds"] == [0, 1, 2]
    assert p["batch_size"] == cfg["pretrain"]["batch_size"]
    validate(out, SCHEMA)


def test_a_string_the_schema_wants_stays_a_string(cfg):
    out = resolved(cfg, "arms={nomask: {label: 1}}", "corpus={name: 2024}")
    assert out["arms"]["nomask"]["label"] == "1"
    assert out["corpus"]["name"] == "2024"
    validate(out, SCHEMA)


def test_an_out_of_range_number_is_reported_as_such(cfg):
    out = resolved(cfg, "arms={nomask: {mask_ratio: 1.0}}")
    assert out["arms"]["nomask"]["mask_ratio"] == 1.0
    with pytest.raises(ConfigError) as info:
        validate(out, SCHEMA)
    assert "arms.nomask.mask_ratio" in str(info.value) and "not of type" not in str(info.value)


def test_a_word_that_is_not_a_number_is_still_refused(cfg):
    out = resolved(cfg, "arms={nomask: {mask_ratio: half}}")
    with pytest.raises(ConfigError, match=r"arms.nomask.mask_ratio: 'half' is not of type 'number'"):
        validate(out, SCHEMA)


def test_config_file_values_are_left_alone(cfg):
    """Values of a --configfile are typed by YAML already; nothing changes them."""
    override = {"arms": {"nomask": {"mask_ratio": 0.25, "label": "no mask"}}}
    out = resolve_kinds(merged(cfg, override), override, SCHEMA)
    assert out["arms"]["nomask"] == {**cfg["arms"]["nomask"], **override["arms"]["nomask"]}


def test_dry_run_with_a_nested_number_plans(tmp_path, repo, snakemake_bin):
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    proc = smk(snakemake_bin, repo, tmp_path, "-n", "--config", "arms={nomask: {mask_ratio: 0.5}}", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "not of type" not in out
    assert any(rule == "pretrain" and "arm=nomask" in wc for rule, wc in planned_jobs(proc.stdout))
