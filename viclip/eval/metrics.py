"""Ranks, recall@K and top-k accuracy with one explicit tie rule.

Ranks are 0-based; a query with several ground truths takes its best
(minimum) rank; R@K is the share of queries with rank < K. Ties are broken
pessimistically: every candidate scoring >= the ground truth (other than the
ground truth itself) counts as ahead of it, so a constant model scores at
chance or below, never above (evaluation_protocols.md §5).
"""

from __future__ import annotations

import numpy as np
import torch


def gt_ranks(scores: torch.Tensor, positives: list[list[int]]) -> torch.Tensor:
    """scores: [Q, C] fp32; positives[q]: candidate ids that are correct for q -> [Q] ranks."""
    if scores.shape[0] != len(positives):
        raise ValueError(f"{scores.shape[0]} score rows but {len(positives)} positive lists")
    ranks = torch.empty(len(positives), dtype=torch.long)
    for q, pos in enumerate(positives):
        if not pos:
            raise ValueError(f"query {q} has no ground truth")
        row = scores[q]
        best = None
        for p in pos:
            ahead = int((row >= row[p]).sum()) - 1  # excludes the ground truth itself
            best = ahead if best is None else min(best, ahead)
        ranks[q] = best
    return ranks


def recall_metrics(ranks: torch.Tensor, prefix: str, ks=(1, 5, 10)) -> dict[str, float]:
    out = {f"{prefix}_r{k}": float((ranks < k).float().mean()) for k in ks}
    # 1-based by convention; the median of an even count is the mean of the two
    # middle ranks (CLIP4Clip's np.median), not torch.median's lower one.
    out[f"{prefix}_medr"] = float(np.median(ranks.numpy())) + 1.0
    out[f"{prefix}_meanr"] = float(ranks.float().mean()) + 1.0
    return out


def retrieval_metrics(sim_tv: torch.Tensor, text_to_video: list[int]) -> dict[str, float]:
    """sim_tv: [texts, videos]; text_to_video[i]: the video of text i.

    T2V: each text is a query over videos. V2T: each video is a query over all
    texts, a hit at K if any of its texts ranks < K (UMT/ViCLIP itm_eval).
    """
    sim_tv = sim_tv.float()
    n_videos = sim_tv.shape[1]
    video_texts: list[list[int]] = [[] for _ in range(n_videos)]
    for t, v in enumerate(text_to_video):
        video_texts[v].append(t)
    t2v = gt_ranks(sim_tv, [[v] for v in text_to_video])
    v2t = gt_ranks(sim_tv.t().contiguous(), video_texts)
    return {**recall_metrics(t2v, "t2v"), **recall_metrics(v2t, "v2t")}


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> dict[str, float]:
    """Top-k accuracy with the same pessimistic tie rule as retrieval."""
    ranks = gt_ranks(logits.float(), [[int(y)] for y in labels])
    out = {f"top{k}": float((ranks < k).float().mean()) for k in ks}
    if 1 in ks and 5 in ks:
        out["avg"] = (out["top1"] + out["top5"]) / 2  # ViCLIP's "AVG" column
    return out
