"""Evaluation of fine-tuned models: K400/SSv2 classification and the five retrieval sets.

Classification scores the fine-tuned head over multi-view testing (mean
per-view softmax, as UMT merges its views). Retrieval ranks the fine-tuned
dual encoder's cosine similarities, with each dataset's frame count and text
length when `input` is "paper" (viclip.eval.protocol). The paper's fine-tuned
retrieval also trains a video-text matching head (viclip_spec.md §5.3) whose
re-ranking we do not build: our fine-tuned retrieval is dual-encoder only.
"""

from __future__ import annotations

import torch

from viclip.data.benchmarks.load import Benchmark
from viclip.eval import dsl
from viclip.eval.items import classification_items
from viclip.eval.metrics import TIE_RULE, class_ranks, per_class_accuracy, topk_accuracy, topk_from_ranks
from viclip.eval.multiview import Views, classify_views
from viclip.eval.protocol import PLAIN_FINETUNED, finetuned_input
from viclip.eval.zeroshot import retrieve
from viclip.model.viclip import ViCLIP


def classify_finetuned(
    classifier, bench: Benchmark, views: Views | None = None, use_dsl: bool = False
) -> tuple[dict, dict, dict]:
    """classifier(video) -> logits; (metrics, details, protocol settings) on the evaluation split."""
    views = views or Views()
    split, classes = bench.test, list(bench.meta["classes"])
    classifier.eval()
    scores = classify_views(classifier, split.sampler, views)
    labels = torch.from_numpy(split.labels)
    ranks = class_ranks(scores, labels)
    metrics = topk_from_ranks(ranks)
    if use_dsl:
        metrics.update(topk_accuracy(dsl.dual_softmax(scores), labels, prefix="dsl_"))
    details = {
        "n_queries": len(scores),
        "n_candidates": len(classes),
        "per_class": per_class_accuracy(scores, labels, classes),
        "items": classification_items(split, ranks),
    }
    settings = {
        "views": views.describe(),
        "frames": split.sampler.num_frames,
        "tie_rule": TIE_RULE,
        "view_pooling": "logits for one view; mean of per-view softmax for several (UMT merge)",
        "dsl": dsl.describe() if use_dsl else False,
    }
    return metrics, details, settings


def evaluate_finetuned(
    classifier, model: ViCLIP, tokenizer, bench: Benchmark, settings: dict | None = None, size: dict | None = None
) -> tuple[dict, dict]:
    """Metrics and details (protocol under details["settings"]) of a fine-tuned model on bench's evaluation split.

    `classifier` is the fine-tuned head module for classification (ignored for
    retrieval); `settings` is `viclip.eval.protocol.finetuned_settings(...)`,
    None for one view, paragraph queries and the model's own input sizes.
    `size` ({"frames", "text_length"}) is what the model was fine-tuned at
    (its recipe); without it, the sizes `settings` name for the dataset.
    """
    s = settings if settings is not None else PLAIN_FINETUNED
    if bench.task == "classification":
        views = Views.of(s["views"].get(bench.name))
        metrics, details, used = classify_finetuned(classifier, bench, views, s["dsl"])
    else:
        if size is None:
            size = finetuned_input(bench.name, s, model.cfg.num_frames, model.cfg.context_length)
        metrics, details, used = retrieve(
            model,
            bench.test,
            bench.meta,
            queries=s["queries"],
            frames=size["frames"],
            text_length=size["text_length"],
            use_dsl=s["dsl"],
        )
        used["text_length_requested"] = size.get("text_length_requested", size["text_length"])
        used["input"] = s["input"]
        used["reranking_head"] = "none (dual encoder only; the paper's VTM head is not built)"
    return metrics, {**details, "settings": used}
