"""Per-item outcomes in evaluation records (viclip.eval.items): they reproduce the record's metrics exactly.

The report's bootstrap (viclip.report.bootstrap) resamples these outcomes, so
the mean of rank < K over the items must be the record's R@K or top-K: the
same tie rule, the same multi-caption rule (MSVD's several captions per
video, a paragraph benchmark queried by sentence or by paragraph), zero-shot
and fine-tuned alike.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from test_eval_queries import SENTENCES
from test_eval_zeroshot import TINY, classification_bench, write_benchmark

from viclip.data.benchmarks.load import load_benchmark
from viclip.eval.finetuned import evaluate_finetuned
from viclip.eval.items import classification_items, retrieval_items
from viclip.eval.metrics import class_ranks, retrieval_metrics, retrieval_ranks, topk_accuracy
from viclip.eval.protocol import finetuned_settings, zeroshot_settings
from viclip.eval.records import make_record
from viclip.eval.zeroshot import evaluate_zero_shot
from viclip.model.factory import initial_model
from viclip.model.tokenizer import tokenizer_for
from viclip.report.outcomes import item_hits
from viclip.train.finetune import Classifier

CAPTIONS = [["a cat sleeps", "a cat is sleeping", "the cat naps"], ["a bird sings"], ["two men talk", "men chat"]]


def reproduced(record: dict) -> dict[str, float]:
    """Every headline rate of the record, recomputed from its items."""
    out = {}
    for metric in record["metrics"]:
        pair = item_hits(record, metric)
        if pair is not None:
            hits, queries = pair
            out[metric] = hits.sum() / queries.sum()
    return out


def assert_reproduces(record: dict, metrics: tuple[str, ...]) -> None:
    again = reproduced(record)
    assert set(metrics) <= set(again)
    for m in metrics:
        if m == "avg":  # (top-1 + top-5) / 2 of the record and the mean of per-clip halves round apart
            assert again[m] == pytest.approx(record["metrics"][m], abs=1e-15), m
        else:
            assert again[m] == record["metrics"][m], m  # exactly: the same ranks, counted the same way


def fake_split(n: int):
    """What item_ids reads of a split: its clip ids."""
    return SimpleNamespace(ids=[f"clip{i}" for i in range(n)])


def test_ties_and_several_captions_per_video_on_crafted_scores():
    """Scores from {0, 1, 2}: ties everywhere, lost by the pessimistic rule; 1 to 4 captions per video."""
    rng = np.random.default_rng(0)
    per_video = [1, 4, 2, 3, 1, 2, 1, 3, 2, 1]
    owner = [v for v, k in enumerate(per_video) for _ in range(k)]
    sim = rng.integers(0, 3, (len(owner), len(per_video))).astype(np.float32)
    sim[np.arange(len(owner)), owner] += rng.integers(0, 2, len(owner))  # some queries win, some tie, some lose
    sim = torch.from_numpy(sim)
    t2v, v2t = retrieval_ranks(sim, owner)
    record = {"metrics": retrieval_metrics(sim, owner), "items": retrieval_items(fake_split(10), t2v, v2t, owner)}
    assert record["items"]["queries"] == per_video and len(record["items"]["rank"]["t2v"]) == len(owner)
    assert_reproduces(record, ("t2v_r1", "t2v_r5", "t2v_r10", "v2t_r1", "v2t_r5", "v2t_r10"))
    assert 0 < record["metrics"]["t2v_r1"] < 1 and 0 < record["metrics"]["v2t_r1"] < 1  # not a vacuous check

    logits = torch.from_numpy(rng.integers(0, 3, (40, 9)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 9, 40))
    record = {
        "metrics": topk_accuracy(logits, labels),
        "items": classification_items(fake_split(40), class_ranks(logits, labels)),
    }
    assert_reproduces(record, ("top1", "top5", "avg"))
    assert all(isinstance(r, int) for r in record["items"]["rank"]["class"])


def test_zero_shot_classification_records_reproduce_top1_top5_avg(tmp_path):
    bench = load_benchmark(classification_bench(tmp_path / "k400"), TINY.num_frames, TINY.image_size)
    metrics, details = evaluate_zero_shot(initial_model(TINY, 0), tokenizer_for(TINY), bench)
    record = make_record("baseline", 0, bench, "zeroshot", metrics, details)
    assert "items" not in record["details"] and len(record["items"]["ids"]) == 10
    assert_reproduces(record, ("top1", "top5", "avg"))
    assert record["items"]["ids"] == [f"k400-{i}" for i in range(10)]  # the frame cache's clip ids


def test_a_cache_without_clip_ids_names_its_clips_by_content(tmp_path):
    def bench(root):
        root = classification_bench(root)
        rows = pd.read_parquet(root / "frames.parquet")
        rows.drop(columns="clip_id").to_parquet(root / "frames.parquet")
        return load_benchmark(root, TINY.num_frames, TINY.image_size)

    ids = classification_items(bench(tmp_path / "k400").test, torch.zeros(10, dtype=torch.long))["ids"]
    assert len(set(ids)) == 10 and all(i.startswith("sha:") for i in ids)
    again = classification_items(bench(tmp_path / "again").test, torch.zeros(10, dtype=torch.long))["ids"]
    assert again == ids  # same clips, same ids


def test_real_benchmark_items_carry_its_clip_ids(tmp_path):
    bench = load_benchmark(classification_bench(tmp_path / "k400", synthetic=False), TINY.num_frames, TINY.image_size)
    metrics, details = evaluate_zero_shot(initial_model(TINY, 0), tokenizer_for(TINY), bench)
    assert details["items"]["ids"] == [f"k400-{i}" for i in range(10)]


@pytest.mark.parametrize("mode,dsl", [("sentence", False), ("paragraph", False), ("paragraph", True)])
def test_zero_shot_retrieval_records_reproduce_r1_msvd_and_paragraphs(tmp_path, mode, dsl):
    model, tok = initial_model(TINY, 1), tokenizer_for(TINY)
    msvd = load_benchmark(
        write_benchmark(tmp_path / "msvd", "msvd", texts=CAPTIONS, meta={"paragraph": False}),
        TINY.num_frames,
        TINY.image_size,
    )
    didemo = load_benchmark(
        write_benchmark(tmp_path / "didemo", "didemo", texts=SENTENCES, meta={"paragraph": True}),
        TINY.num_frames,
        TINY.image_size,
    )
    settings = zeroshot_settings({"zeroshot": {"queries": mode}, "dsl": dsl})  # items stay the headline's ranks
    for bench, queries in ((msvd, [3, 1, 2]), (didemo, [2, 3, 1, 2] if mode == "sentence" else [1, 1, 1, 1])):
        metrics, details = evaluate_zero_shot(model, tok, bench, settings)
        record = make_record("baseline", 0, bench, "zeroshot", metrics, details)
        assert record["items"]["queries"] == queries, bench.name  # MSVD's captions are never joined
        assert_reproduces(record, ("t2v_r1", "t2v_r5", "v2t_r1", "v2t_r5"))
        for side in ("t2v", "v2t"):  # every rank is the headline's, not a re-ranked one's
            assert np.mean(record["items"]["rank"][side]) + 1 == pytest.approx(metrics[f"{side}_meanr"])


def test_fine_tuned_records_reproduce_their_metrics(tmp_path):
    bench = load_benchmark(classification_bench(tmp_path / "k400"), TINY.num_frames, TINY.image_size)
    model = initial_model(TINY, 0)
    emb = F.normalize(torch.randn(7, TINY.embed_dim, generator=torch.Generator().manual_seed(0)), dim=-1)
    settings = finetuned_settings({"finetuned": {"views": {"k400": {"clips": 2, "crops": 1}}, "input": "model"}})
    metrics, details = evaluate_finetuned(Classifier(model, emb), model, tokenizer_for(TINY), bench, settings)
    assert_reproduces(make_record("baseline", 0, bench, "finetuned", metrics, details), ("top1", "top5", "avg"))

    anet = load_benchmark(
        write_benchmark(tmp_path / "anet", "anet", texts=SENTENCES, meta={"paragraph": True}),
        TINY.num_frames,
        TINY.image_size,
    )
    metrics, details = evaluate_finetuned(None, model, tokenizer_for(TINY), anet, settings)
    record = make_record("baseline", 0, anet, "finetuned", metrics, details)
    assert record["items"]["queries"] == [1, 1, 1, 1]  # fine-tuned retrieval queries paragraphs
    assert_reproduces(record, ("t2v_r1", "v2t_r1"))
