"""Arm schedules: own epochs, or `match_compute` (the masking ablation's same-compute reference arm)."""

import copy
from pathlib import Path

import pytest
import yaml

from viclip.report.ablations import ablations
from viclip.report.compute import pretraining_flops
from viclip.train.arms import arm_schedule, matched_epochs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cfg():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def schedule(cfg, arm):
    return arm_schedule(arm, cfg["arms"], cfg["pretrain"], cfg["model"])


def test_plain_arms_take_the_shared_block_and_their_own_epochs(cfg):
    cfg["arms"]["nomask"]["epochs"] = 3
    base, nomask = schedule(cfg, "baseline"), schedule(cfg, "nomask")
    assert "execution" not in base
    assert base == {k: v for k, v in cfg["pretrain"].items() if k != "execution"}
    assert nomask == {**base, "epochs": 3}


def test_the_same_compute_arm_spends_the_baselines_flops(cfg):
    train = {a: schedule(cfg, a) for a in ("baseline", "samecompute")}
    n_clips = cfg["corpus"]["n_clips"]
    flops = {a: pretraining_flops(cfg["model"], train[a], cfg["arms"][a]["mask_ratio"], n_clips) for a in train}
    # whole steps per (fractional) epoch: equal up to a few steps' worth
    assert flops["samecompute"] == pytest.approx(flops["baseline"], rel=0.03)
    assert 1 < train["samecompute"]["epochs"] < cfg["pretrain"]["epochs"]
    assert train["samecompute"]["tune_epochs"] == train["baseline"]["tune_epochs"]
    share = train["samecompute"]["epochs"] / train["baseline"]["epochs"]  # warmup: the same share of the schedule
    assert train["samecompute"]["warmup_steps"] == round(train["baseline"]["warmup_steps"] * share)
    cfg["pretrain"]["warmup_epochs"] = 0.5
    assert schedule(cfg, "samecompute")["warmup_epochs"] == pytest.approx(0.5 * share, abs=1e-4)


def test_matched_epochs_account_for_a_different_tuning_stage(cfg):
    ref = {"epochs": 8, "tune_epochs": 1}
    same = matched_epochs(cfg["model"], ref, 0.9, 1, 0.0)
    assert matched_epochs(cfg["model"], ref, 0.9, 0, 0.0) == pytest.approx(same + 1, abs=2e-3)  # tuning FLOPs move
    assert matched_epochs(cfg["model"], ref, 0.9, 1, 0.9) == 8  # same mask ratio: same epochs


@pytest.mark.parametrize(
    "change, message",
    [
        ({"match_compute": "nosucharm"}, "'nosucharm' is not another arm"),
        ({"match_compute": "samecompute"}, "'samecompute' is not another arm"),
        ({"match_compute": "baseline", "epochs": 2}, "either its own epochs or match_compute"),
    ],
)
def test_bad_match_compute_names_the_key(cfg, change, message):
    cfg["arms"]["samecompute"].update(change)
    with pytest.raises(ValueError, match=message) as info:
        schedule(cfg, "samecompute")
    assert "arms.samecompute.match_compute" in str(info.value)


def test_matching_a_matched_arm_is_refused(cfg):
    cfg["arms"]["other"] = {**copy.deepcopy(cfg["arms"]["nomask"]), "match_compute": "samecompute"}
    with pytest.raises(ValueError, match="matches another arm's compute itself"):
        schedule(cfg, "other")


def test_a_reference_cheaper_than_the_tuning_stage_is_refused(cfg):
    cfg["arms"]["samecompute"]["tune_epochs"] = 20  # more unmasked tuning than the baseline's whole run
    with pytest.raises(ValueError, match="fewer FLOPs than this arm's tuning stage"):
        schedule(cfg, "samecompute")


def test_the_same_compute_arm_joins_the_masking_ablation(cfg):
    derived = {a.name: a.arms for a in ablations(cfg["arms"], "baseline")}
    assert derived["masking"] == ("nomask", "samecompute")
    assert derived["captions"] == ("fineonly", "coarseonly")
