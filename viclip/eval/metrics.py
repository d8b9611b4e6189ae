"""Ranks, recall@K and top-k accuracy with one explicit tie rule.

Ranks are 0-based; R@K is the share of queries with rank < K; median and
mean rank are reported 1-based (median + 1, mean + 1; the median of an even
count is the mean of the two middle ranks, not floored as open_clip does).

Tie rule (evaluation_protocols.md §5): pessimistic. A query's rank is the
number of *wrong* candidates scoring at least as high as its best correct
candidate. So every tie is lost, the result never depends on candidate order,
and a collapsed model (all scores equal) scores at or below chance, never
above. With several correct candidates (V2T with many captions per video)
this is the UMT/ViCLIP min-rank rule, with correct candidates never counted
against each other.
"""

from __future__ import annotations

import numpy as np
import torch

TIE_RULE = "pessimistic: wrong candidates scoring >= the best correct one count as ahead"
MEDR_RULE = "1-based; numpy median of the 0-based ranks + 1 (not floored)"


def _positives_mask(positives: list[list[int]], start: int, stop: int, n_candidates: int) -> torch.Tensor:
    mask = torch.zeros(stop - start, n_candidates, dtype=torch.bool)
    for q in range(start, stop):
        pos = positives[q]
        if len(pos) == 0:
            raise ValueError(f"query {q} has no ground truth")
        bad = [p for p in pos if not 0 <= int(p) < n_candidates]
        if bad:
            raise ValueError(f"query {q}: ground truth {bad} outside the {n_candidates} candidates")
        mask[q - start, list(map(int, pos))] = True
    return mask


def gt_ranks(scores: torch.Tensor, positives: list[list[int]], chunk: int = 4096) -> torch.Tensor:
    """scores: [Q, C] (ranked in fp32); positives[q]: the correct candidates of q -> [Q] 0-based ranks."""
    if scores.ndim != 2 or scores.shape[0] != len(positives):
        raise ValueError(f"{tuple(scores.shape)} scores but {len(positives)} positive lists")
    scores = scores.float()
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN; a similarity matrix must be finite to be ranked")
    n_q, n_c = scores.shape
    ranks = torch.empty(n_q, dtype=torch.long)
    for start in range(0, n_q, chunk):  # bounded memory for 27k-caption x 1k-video matrices
        stop = min(start + chunk, n_q)
        block = scores[start:stop]
        correct = _positives_mask(positives, start, stop, n_c)
        best = block.masked_fill(~correct, float("-inf")).amax(dim=1, keepdim=True)
        ranks[start:stop] = ((block >= best) & ~correct).sum(dim=1)
    return ranks


def recall_metrics(ranks: torch.Tensor, prefix: str, ks=(1, 5, 10)) -> dict[str, float]:
    out = {f"{prefix}_r{k}": float((ranks < k).double().mean()) for k in ks}
    out[f"{prefix}_medr"] = float(np.median(ranks.numpy())) + 1.0
    out[f"{prefix}_meanr"] = float(ranks.double().mean()) + 1.0
    return out


def video_texts(text_to_video: list[int], n_videos: int) -> list[list[int]]:
    """Inverse of text_to_video: the text ids of every video (each video needs at least one)."""
    out: list[list[int]] = [[] for _ in range(n_videos)]
    for t, v in enumerate(text_to_video):
        out[v].append(t)
    return out


def retrieval_ranks(sim_tv: torch.Tensor, text_to_video: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """T2V ranks (one query per text) and V2T ranks (best of a video's texts among all texts)."""
    sim_tv = sim_tv.float()
    t2v = gt_ranks(sim_tv, [[v] for v in text_to_video])
    v2t = gt_ranks(sim_tv.t().contiguous(), video_texts(text_to_video, sim_tv.shape[1]))
    return t2v, v2t


def retrieval_metrics(sim_tv: torch.Tensor, text_to_video: list[int], prefix: str = "") -> dict[str, float]:
    """sim_tv: [texts, videos]; text_to_video[i]: the video of text i.

    T2V: each text is a query over videos. V2T: each video is a query over all
    texts, a hit at K if any of its texts ranks < K (UMT/ViCLIP itm_eval).
    """
    t2v, v2t = retrieval_ranks(sim_tv, text_to_video)
    return {**recall_metrics(t2v, f"{prefix}t2v"), **recall_metrics(v2t, f"{prefix}v2t")}


def class_ranks(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """0-based rank of each clip's true class among the classes, with the pessimistic tie rule."""
    return gt_ranks(logits, [[int(y)] for y in labels])


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5), prefix: str = "") -> dict[str, float]:
    """Top-k accuracy with the same pessimistic tie rule as retrieval; "avg" = (top-1 + top-5) / 2."""
    return topk_from_ranks(class_ranks(logits, labels), ks, prefix)


def topk_from_ranks(ranks: torch.Tensor, ks=(1, 5), prefix: str = "") -> dict[str, float]:
    out = {f"{prefix}top{k}": float((ranks < k).double().mean()) for k in ks}
    if 1 in ks and 5 in ks:
        out[f"{prefix}avg"] = (out[f"{prefix}top1"] + out[f"{prefix}top5"]) / 2  # ViCLIP's "AVG" column
    return out


def per_class_accuracy(logits: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict[str, dict]:
    """Top-1/top-5 per class present in the test split: {class: {"n", "top1", "top5"}}."""
    ranks = class_ranks(logits, labels)
    labels = labels.long()
    out = {}
    for c in torch.unique(labels).tolist():
        r = ranks[labels == c]
        out[classes[c]] = {"n": len(r), "top1": float((r < 1).double().mean()), "top5": float((r < 5).double().mean())}
    return out
