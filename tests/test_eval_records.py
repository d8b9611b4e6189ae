"""Evaluation records: provenance fields, missing-video counts, and WiSE-FT's two results."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from test_eval_zeroshot import TINY, classification_bench, write_benchmark

from viclip.data.benchmarks.load import load_benchmark
from viclip.eval.protocol import zeroshot_settings
from viclip.eval.records import code_version, make_record
from viclip.eval.zeroshot_run import zero_shot_records
from viclip.model.factory import initial_model
from viclip.train.checkpoint import save

REPORT_KEYS = {"arm", "seed", "run", "benchmark", "protocol", "task", "synthetic", "metrics"}


@pytest.fixture()
def checkpoint(tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    save(path, initial_model(TINY, 99))  # stands in for a trained model: other weights than the seed-3 init
    return path


def test_record_fields(tmp_path, checkpoint):
    root = classification_bench(tmp_path / "k400")
    meta = json.loads((root / "meta.json").read_text())
    meta["counts"] = {"test": {"videos_listed": 12, "videos_found": 10, "videos_missing": 2}}
    (root / "meta.json").write_text(json.dumps(meta))
    bench = load_benchmark(root, TINY.num_frames, TINY.image_size)
    rec = make_record(
        "baseline",
        3,
        bench,
        "zeroshot",
        {"top1": 0.5},
        {"n_queries": 10, "settings": {"views": "1x1"}},
        checkpoint=checkpoint,
    )
    assert REPORT_KEYS <= rec.keys() and rec["run"] == "baseline/seed3" and rec["task"] == "classification"
    assert rec["settings"] == {"views": "1x1"} and "settings" not in rec["details"]
    assert rec["checkpoint"]["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert rec["videos"] == {
        "split": "test",
        "used": 10,
        "missing": 2,
        "missing_by_reason": {"not_in_local_copy": 2, "failed_to_decode": 0},
    }
    assert "metrics_uninterpolated" not in rec
    version = rec["code_version"]
    assert version["viclip"] == code_version()["viclip"]
    assert version["git_commit"] == "unknown" or re.fullmatch(r"[0-9a-f]{40}", version["git_commit"])


def test_videos_that_failed_to_decode_count_as_missing(tmp_path):
    root = write_benchmark(tmp_path / "msrvtt", "msrvtt", texts=[["a"], ["b"], ["c"]], undecoded=2)
    bench = load_benchmark(root, TINY.num_frames, TINY.image_size)
    assert bench.test.missing == {"not_in_local_copy": 0, "failed_to_decode": 2}


def test_eval_split_comes_from_meta(tmp_path):
    root = write_benchmark(
        tmp_path / "anet", "anet", texts=[["a", "b"], ["c"]], split="val", meta={"paragraph": True, "eval_split": "val"}
    )
    bench = load_benchmark(root, TINY.num_frames, TINY.image_size)
    assert bench.eval_split == "val" and len(bench.test.sampler) == 2
    bad = load_benchmark(
        write_benchmark(tmp_path / "lsmdc", "lsmdc", texts=[["a"]], split="train"), TINY.num_frames, TINY.image_size
    )
    with pytest.raises(ValueError, match="evaluation split 'test'"):
        _ = bad.test


def test_bad_counts_name_the_file(tmp_path):
    root = classification_bench(tmp_path / "k400")
    meta = json.loads((root / "meta.json").read_text())
    (root / "meta.json").write_text(json.dumps({**meta, "counts": {"test": {"videos_missing": "two"}}}))
    with pytest.raises(ValueError, match=r"meta\.json.*counts"):
        load_benchmark(root, TINY.num_frames, TINY.image_size)


def test_wise_ft_records_both_results(tmp_path, checkpoint):
    dirs = [
        classification_bench(tmp_path / "k400"),
        write_benchmark(
            tmp_path / "didemo",
            "didemo",
            texts=[["a man walks.", "he sits."], ["a dog runs."], ["rain falls."]],
            meta={"paragraph": True},
        ),
    ]
    plain = list(zero_shot_records(checkpoint, dirs, zeroshot_settings({"wise_ft_alpha": 1.0}), "baseline", 3))
    wise = list(zero_shot_records(checkpoint, dirs, zeroshot_settings({"wise_ft_alpha": 0.5}), "baseline", 3))
    for p, w in zip(plain, wise):
        assert "metrics_uninterpolated" not in p and p["settings"]["wise_ft_alpha"] == 1.0
        assert w["metrics_uninterpolated"] == p["metrics"]  # the trained weights' own result, unchanged
        assert w["settings"]["wise_ft_alpha"] == 0.5 and w["settings"]["wise_ft_init"] == "random init, seed 3"
        assert w["checkpoint"]["sha256"] == p["checkpoint"]["sha256"]
    assert [w["benchmark"] for w in wise] == ["k400", "didemo"]
    assert any(w["metrics"] != w["metrics_uninterpolated"] for w in wise)  # the headline is the averaged model
