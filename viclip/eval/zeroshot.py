"""Zero-shot evaluation of a pretrained model on one benchmark's test split."""

from __future__ import annotations

import torch

from viclip.data.benchmarks.load import Benchmark, Split
from viclip.eval.classification import prompts, zero_shot_accuracy
from viclip.eval.embed import embed_texts, embed_videos
from viclip.eval.metrics import retrieval_metrics
from viclip.model.viclip import ViCLIP


def flatten_texts(texts: list[list[str]]) -> tuple[list[str], list[int]]:
    flat, owner = [], []
    for v, ts in enumerate(texts):
        flat.extend(ts)
        owner.extend([v] * len(ts))
    return flat, owner


def evaluate_retrieval(model: ViCLIP, tokenizer, split: Split) -> tuple[dict, dict]:
    video = embed_videos(model, split.sampler)
    flat, owner = flatten_texts(split.texts)
    text = embed_texts(model, tokenizer, flat)
    sizes = {"n_videos": len(video), "n_texts": len(flat)}
    return retrieval_metrics(text @ video.t(), owner), sizes


def evaluate_zero_shot(model: ViCLIP, tokenizer, bench: Benchmark, ensemble: str) -> tuple[dict, dict]:
    """Metrics and protocol details for the test split."""
    split = bench.splits["test"]
    if bench.task == "classification":
        classes, templates = bench.meta["classes"], bench.meta["templates"]
        text = embed_texts(model, tokenizer, prompts(classes, templates)).view(len(classes), len(templates), -1)
        video = embed_videos(model, split.sampler)
        metrics = zero_shot_accuracy(video, text, torch.from_numpy(split.labels), ensemble)
        details = {"n_queries": len(video), "n_candidates": len(classes), "ensemble": ensemble,
                   "templates": templates}
        return metrics, details
    metrics, sizes = evaluate_retrieval(model, tokenizer, split)
    details = {"n_queries": sizes["n_texts"], "n_candidates": sizes["n_videos"], **sizes,
               "paragraph": bench.meta.get("paragraph", False), "v2t_rule": "min rank over all texts",
               "ties": "pessimistic"}
    return metrics, details
