"""Zero-shot evaluation of a pretrained model on one benchmark's evaluation split.

Both tasks share one core each (`classify`, `retrieve`) with the fine-tuned
protocol (viclip.eval.finetuned), so the two differ only in their settings.
Similarities are fp32 cosines of L2-normalised embeddings.
"""

from __future__ import annotations

import torch

from viclip.data.benchmarks.load import Benchmark, Split
from viclip.eval import dsl
from viclip.eval.classification import class_scores, prompts
from viclip.eval.embed import embed_texts, tokenizer_with_length
from viclip.eval.items import classification_items, retrieval_items
from viclip.eval.metrics import (
    MEDR_RULE,
    TIE_RULE,
    class_ranks,
    per_class_accuracy,
    recall_metrics,
    retrieval_ranks,
    topk_accuracy,
    topk_from_ranks,
)
from viclip.eval.multiview import Views, embed_video_views
from viclip.eval.protocol import zeroshot_settings
from viclip.eval.queries import flatten_texts, video_queries
from viclip.eval.templates import list_sha256, resolve_templates
from viclip.model.viclip import ViCLIP

SIMILARITY = "fp32 cosine of L2-normalised embeddings"
V2T_RULE = "min rank over all texts of the video (UMT/ViCLIP itm_eval)"


def _check_frames(model: ViCLIP, frames: int) -> None:
    have = model.vision_encoder.temporal_positional_embedding.shape[1]
    if frames > have:
        raise ValueError(
            f"evaluation asks for {frames} frames but the model's temporal table has {have}: "
            f"build or fine-tune the model at {frames} frames (viclip.model.checkpoints.resize_temporal)"
        )


def classify(
    model: ViCLIP,
    tokenizer,
    split: Split,
    meta: dict,
    *,
    ensemble: str = "viclip",
    templates: str = "auto",
    views: Views | None = None,
    use_dsl: bool = False,
) -> tuple[dict, dict, dict]:
    """Zero-shot classification: (metrics, details, protocol settings)."""
    views = views or Views()
    classes = list(meta["classes"])
    set_name, temps = resolve_templates(templates, meta)
    text = embed_texts(model, tokenizer, prompts(classes, temps)).view(len(classes), len(temps), -1)
    video = embed_video_views(model, split.sampler, views)
    scores = class_scores(video, text, ensemble)
    labels = torch.from_numpy(split.labels)
    ranks = class_ranks(scores, labels)
    metrics = topk_from_ranks(ranks)
    if use_dsl:
        metrics.update(topk_accuracy(dsl.dual_softmax(scores), labels, prefix="dsl_"))
    details = {
        "n_queries": len(video),
        "n_candidates": len(classes),
        "templates": temps,
        "per_class": per_class_accuracy(scores, labels, classes),
        "items": classification_items(split, ranks),  # make_record moves it to the record's top level
    }
    settings = {
        "ensemble": ensemble,
        "templates": set_name,
        "templates_sha256": list_sha256(temps),
        "n_templates": len(temps),
        "classes_sha256": list_sha256(classes),
        "views": views.describe(),
        "view_pooling": "mean of normalised view embeddings, re-normalised",
        "frames": split.sampler.num_frames,
        "text_length": tokenizer.context_length,
        "tie_rule": TIE_RULE,
        "similarity": SIMILARITY,
        "dsl": dsl.describe() if use_dsl else False,
    }
    return metrics, details, settings


def retrieve(
    model: ViCLIP,
    split: Split,
    meta: dict,
    *,
    queries: str,
    views: Views | None = None,
    frames: int | None = None,
    text_length: int | None = None,
    use_dsl: bool = False,
) -> tuple[dict, dict, dict]:
    """Retrieval both ways: (metrics, details, protocol settings)."""
    views = views or Views()
    frames = frames or split.sampler.num_frames
    _check_frames(model, frames)
    tokenizer = tokenizer_with_length(model.cfg, text_length)
    paragraph = bool(meta.get("paragraph", False))
    per_video = video_queries(split.sentences if split.sentences is not None else split.texts, paragraph, queries)
    flat, owner = flatten_texts(per_video)
    video = embed_video_views(model, split.sampler, views, frames)
    text = embed_texts(model, tokenizer, flat)
    sim = text.float() @ video.float().t()
    t2v, v2t = retrieval_ranks(sim, owner)
    metrics = {**recall_metrics(t2v, "t2v"), **recall_metrics(v2t, "v2t")}
    if use_dsl:
        dsl_t2v, _ = retrieval_ranks(dsl.dual_softmax(sim), owner)  # queries are texts: softmax over texts
        _, dsl_v2t = retrieval_ranks(dsl.dual_softmax(sim.t()).t(), owner)  # queries are videos: over videos
        metrics.update({**recall_metrics(dsl_t2v, "dsl_t2v"), **recall_metrics(dsl_v2t, "dsl_v2t")})
    details = {
        "n_queries": len(flat),
        "n_candidates": len(video),
        "n_videos": len(video),
        "n_texts": len(flat),
        "items": retrieval_items(split, t2v, v2t, owner),
    }
    settings = {
        "queries": queries if paragraph else "caption",
        "paragraph_benchmark": paragraph,
        "views": views.describe(),
        "view_pooling": "mean of normalised view embeddings, re-normalised",
        "frames": frames,
        "text_length": tokenizer.context_length,
        "v2t_rule": V2T_RULE,
        "tie_rule": TIE_RULE,
        "medr": MEDR_RULE,
        "similarity": SIMILARITY,
        "dsl": dsl.describe() if use_dsl else False,
    }
    return metrics, details, settings


def evaluate_zero_shot(model: ViCLIP, tokenizer, bench: Benchmark, settings: dict | None = None) -> tuple[dict, dict]:
    """Metrics and details (with the protocol under details["settings"]) for the evaluation split.

    `settings` is `viclip.eval.protocol.zeroshot_settings(...)`; None takes the
    paper's zero-shot defaults.
    """
    s = settings if settings is not None else zeroshot_settings({})
    split, views = bench.test, Views.of(s["views"])
    if bench.task == "classification":
        metrics, details, used = classify(
            model,
            tokenizer,
            split,
            bench.meta,
            ensemble=s["ensemble"],
            templates=s["templates"],
            views=views,
            use_dsl=s["dsl"],
        )
    else:
        metrics, details, used = retrieve(model, split, bench.meta, queries=s["queries"], views=views, use_dsl=s["dsl"])
    return metrics, {**details, "settings": used}
