"""Paragraph vs sentence queries on a DiDeMo-format fixture, multi-caption retrieval, and the synthetic stand-ins."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_eval_zeroshot import TINY, write_benchmark

from viclip.config import ConfigError, validate
from viclip.data.benchmarks.load import load_benchmark
from viclip.data.benchmarks.synthetic import retrieval_texts
from viclip.data.world import ClipSpec
from viclip.eval.embed import embed_texts, embed_videos, tokenizer_with_length
from viclip.eval.metrics import retrieval_metrics
from viclip.eval.protocol import zeroshot_settings
from viclip.eval.queries import flatten_texts, video_queries
from viclip.eval.zeroshot import evaluate_zero_shot
from viclip.model.factory import initial_model
from viclip.model.tokenizer import tokenizer_for

SENTENCES = [  # DiDeMo-style: each video's sentences in temporal order
    ["a man walks in.", "he sits down."],
    ["the dog runs.", "it jumps over a fence.", "it barks."],
    ["a car passes by."],
    ["someone opens a door.", "the light turns on."],
]


@pytest.fixture()
def didemo(tmp_path):
    return write_benchmark(tmp_path / "didemo", "didemo", texts=SENTENCES, meta={"paragraph": True})


def test_video_queries_join_or_keep_sentences():
    assert video_queries(SENTENCES, True, "paragraph")[1] == ["the dog runs. it jumps over a fence. it barks."]
    assert video_queries(SENTENCES, True, "sentence") == SENTENCES
    assert video_queries(SENTENCES, False, "paragraph") == SENTENCES  # MSVD-like captions are never joined
    with pytest.raises(ValueError, match="query mode"):
        video_queries(SENTENCES, True, "document")
    with pytest.raises(ValueError, match="video 1"):
        flatten_texts([["a"], []])


def test_load_benchmark_keeps_sentences_and_builds_the_queries(didemo):
    para = load_benchmark(didemo, TINY.num_frames, TINY.image_size)  # paragraph by default, as fine-tuning trains
    sent = load_benchmark(didemo, TINY.num_frames, TINY.image_size, queries="sentence")
    assert [len(t) for t in para.test.texts] == [1, 1, 1, 1]
    assert sent.test.texts == SENTENCES and para.test.sentences == SENTENCES


def test_paragraph_vs_sentence_mode_changes_the_query_count(didemo):
    bench = load_benchmark(didemo, TINY.num_frames, TINY.image_size)
    model, tok = initial_model(TINY, 0), tokenizer_for(TINY)
    counts = {}
    for mode in ("paragraph", "sentence"):
        metrics, details = evaluate_zero_shot(model, tok, bench, zeroshot_settings({"zeroshot": {"queries": mode}}))
        counts[mode] = details["n_queries"]
        assert details["n_candidates"] == 4 and details["settings"]["queries"] == mode
        assert set(metrics) == {f"{d}_{m}" for d in ("t2v", "v2t") for m in ("r1", "r5", "r10", "medr", "meanr")}
    assert counts == {"paragraph": 4, "sentence": 8}


def test_sentence_mode_scores_every_sentence_against_the_whole_video(didemo):
    bench = load_benchmark(didemo, TINY.num_frames, TINY.image_size)
    model = initial_model(TINY, 1)
    metrics, _ = evaluate_zero_shot(
        model, tokenizer_for(TINY), bench, zeroshot_settings({"zeroshot": {"queries": "sentence"}})
    )
    flat, owner = flatten_texts(SENTENCES)
    assert owner == [0, 0, 1, 1, 1, 2, 3, 3]
    sim = embed_texts(model, tokenizer_for(TINY), flat) @ embed_videos(model, bench.test.sampler).t()
    assert metrics == pytest.approx(retrieval_metrics(sim, owner), abs=1e-7)


def test_text_length_cuts_long_paragraphs_only(didemo):
    model = initial_model(TINY, 0)
    short = tokenizer_with_length(TINY, 4)
    assert short.context_length == 4 and tokenizer_with_length(TINY, 500).context_length == TINY.context_length
    texts = ["a car passes by", "the dog runs it jumps over a fence it barks"]
    full, cut = (
        embed_texts(model, tokenizer_for(TINY), texts),
        embed_texts(model, tokenizer_with_length(TINY, 6), texts),
    )
    assert torch.allclose(full[0], cut[0], atol=1e-5)  # fits in 6 tokens (with SOT/EOT): the same embedding
    assert not torch.allclose(full[1], cut[1], atol=1e-3)


def test_msvd_style_several_captions_per_video(tmp_path):
    captions = [["a cat sleeps", "a cat is sleeping", "the cat naps"], ["a bird sings"], ["two men talk", "men chat"]]
    root = write_benchmark(tmp_path / "msvd", "msvd", texts=captions, meta={"paragraph": False})
    bench = load_benchmark(root, TINY.num_frames, TINY.image_size)
    _, details = evaluate_zero_shot(
        initial_model(TINY, 0), tokenizer_for(TINY), bench, zeroshot_settings({"zeroshot": {"queries": "paragraph"}})
    )
    assert details["n_queries"] == 6 and details["settings"]["queries"] == "caption"


def test_synthetic_didemo_and_anet_store_sentences_whose_join_is_the_old_paragraph():
    # the paragraphs the stand-ins produced before they stored sentences (same specs, same generator seed)
    cases = [
        (
            "didemo",
            ClipSpec(
                "didemo-test-00000",
                "square",
                "blue",
                "striped",
                "large",
                "grey",
                ("change colour", "move down"),
                12,
                new_colour="green",
                seed=1467448874,
            ),
            "the blue square turns green. then it moves down.",
        ),
        (
            "anet",
            ClipSpec(
                "anet-test-00000",
                "square",
                "blue",
                "striped",
                "large",
                "grey",
                ("change colour", "move down", "move right"),
                12,
                new_colour="purple",
                seed=4138360849,
            ),
            "the blue square turns purple. then it moves down. finally it moves to the right.",
        ),
    ]
    for slot, spec, old in cases:
        sentences = retrieval_texts(slot, spec, np.random.default_rng(5), 1)
        assert len(sentences) == len(spec.events)
        assert video_queries([sentences], True, "paragraph") == [[old]]


def test_the_schema_checks_the_evaluate_keys():
    root = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((root / "config.yaml").read_text())
    for path, bad in (
        (("zeroshot", "queries"), "document"),
        (("finetuned", "input"), "huge"),
        (("templates",), "imagenet"),
    ):
        broken = copy.deepcopy(cfg)
        where = broken["evaluate"]
        for key in path[:-1]:
            where = where[key]
        where[path[-1]] = bad
        with pytest.raises(ConfigError, match=r"evaluate\." + r"\.".join(path)):
            validate(broken, root / "configs" / "schema.yaml")
