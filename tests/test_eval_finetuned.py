"""Fine-tuned evaluation: multi-view classification, per-dataset input sizes for retrieval, settings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_eval_queries import SENTENCES
from test_eval_zeroshot import TINY, classification_bench, write_benchmark

from viclip.data.benchmarks.load import load_benchmark
from viclip.eval.finetuned import evaluate_finetuned
from viclip.eval.protocol import PAPER_FINETUNED_VIEWS, PAPER_RETRIEVAL_INPUT, finetuned_input, finetuned_settings
from viclip.model.checkpoints import resize_temporal
from viclip.model.factory import initial_model
from viclip.model.tokenizer import tokenizer_for
from viclip.model.viclip import ViCLIPConfig
from viclip.train.finetune import Classifier


def test_settings_default_to_the_paper_and_follow_the_config():
    paper = finetuned_settings({})
    assert paper["views"] == PAPER_FINETUNED_VIEWS and paper["queries"] == "paragraph" and paper["input"] == "paper"
    ours = finetuned_settings({"finetuned": {"views": {"k400": {"clips": 2, "crops": 1}}, "input": "model"}})
    assert ours["views"] == {"k400": {"clips": 2, "crops": 1}} and ours["input"] == "model"
    with pytest.raises(ValueError, match="finetuned.input"):
        finetuned_settings({"finetuned": {"input": "huge"}})
    assert finetuned_input("anet", paper, 8, 32) == {"frames": 12, "text_length_requested": 150, "text_length": 32}
    assert finetuned_input("anet", ours, 8, 32) == {"frames": 8, "text_length_requested": 32, "text_length": 32}
    assert finetuned_input("k400", paper, 8, 32)["frames"] == 8  # classification keeps the model's frames
    assert {k: v["text_length"] for k, v in PAPER_RETRIEVAL_INPUT.items()} == {
        "msrvtt": 32,
        "lsmdc": 96,
        "didemo": 64,
        "msvd": 64,
        "anet": 150,
    }


def test_classification_with_views_records_them(tmp_path):
    bench = load_benchmark(classification_bench(tmp_path / "k400"), TINY.num_frames, TINY.image_size)
    model = initial_model(TINY, 0)
    emb = F.normalize(
        torch.randn(len(bench.meta["classes"]), TINY.embed_dim, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    head = Classifier(model, emb)
    settings = finetuned_settings({"finetuned": {"views": {"k400": {"clips": 2, "crops": 3}}, "input": "model"}})
    metrics, details = evaluate_finetuned(head, model, tokenizer_for(TINY), bench, settings)
    assert set(metrics) == {"top1", "top5", "avg"}
    assert details["settings"]["views"] == {"clips": 2, "crops": 3}
    assert sum(c["n"] for c in details["per_class"].values()) == 10
    plain, plain_details = evaluate_finetuned(head, model, tokenizer_for(TINY), bench, None)
    assert plain.keys() == metrics.keys() and plain_details["settings"]["views"] == {"clips": 1, "crops": 1}


def test_retrieval_with_the_papers_frames_needs_a_model_built_for_them(tmp_path):
    root = write_benchmark(tmp_path / "didemo", "didemo", texts=SENTENCES, meta={"paragraph": True}, n_frames=24)
    bench = load_benchmark(root, TINY.num_frames, TINY.image_size)
    model = initial_model(TINY, 0)
    paper = finetuned_settings({})
    with pytest.raises(ValueError, match="12 frames but the model's temporal table has 4"):
        evaluate_finetuned(None, model, tokenizer_for(TINY), bench, paper)
    # a model with 12 temporal positions (as fine-tuning at 12 frames builds it) is evaluated on 12 frames
    wide = initial_model(ViCLIPConfig.from_dict({**TINY.to_dict(), "num_frames": 12}), 0)
    state = model.state_dict()
    state["vision_encoder.temporal_positional_embedding"] = resize_temporal(
        state["vision_encoder.temporal_positional_embedding"], 12
    )
    wide.load_state_dict(state)
    metrics, details = evaluate_finetuned(None, wide, tokenizer_for(wide.cfg), bench, paper)
    s = details["settings"]
    assert s["frames"] == 12 and s["text_length_requested"] == 64 and s["text_length"] == TINY.context_length
    assert s["queries"] == "paragraph" and details["n_queries"] == 4 and "reranking_head" in s
    assert {"t2v_r1", "v2t_r1"} <= metrics.keys()
