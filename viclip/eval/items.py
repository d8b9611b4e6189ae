"""Per-item outcomes of one evaluation, kept in its record for the report's bootstrap over test items.

A record's `items` block holds the test clips' ids in evaluation order and
the 0-based ranks the headline metrics come from, as ints: for
classification the rank of each clip's true class (`rank.class`; top-k is
rank < k), for retrieval the T2V rank of each text query (`rank.t2v`, in
video order, `queries` per video) and the V2T rank of each video
(`rank.v2t`). They are the same ranks the metrics are computed from (one
tie rule, one multi-caption rule), so the mean of rank < 1 is the record's
R@1 or top-1 exactly.

Ids: the benchmark's clip ids (`clip_id` of its frame cache). A cache
written without them names its clips by content instead: a short digest of
each clip's cached frames, as good for checking that two records scored the
same clips in the same order.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from viclip.data.benchmarks.load import Split


def item_ids(split: Split) -> list[str]:
    """The split's clip ids in evaluation order."""
    if split.ids:
        return list(split.ids)
    frames = split.sampler.frames
    return [
        "sha:" + hashlib.blake2b(np.ascontiguousarray(frames[i]).data, digest_size=6).hexdigest()
        for i in range(len(frames))
    ]


def classification_items(split: Split, ranks: torch.Tensor) -> dict:
    return {"ids": item_ids(split), "rank": {"class": ranks.tolist()}}


def retrieval_items(split: Split, t2v: torch.Tensor, v2t: torch.Tensor, text_to_video: list[int]) -> dict:
    """`text_to_video` is video-major (viclip.eval.queries.flatten_texts), so `queries` places every T2V rank."""
    queries = np.bincount(np.asarray(text_to_video), minlength=len(v2t))
    return {"ids": item_ids(split), "queries": queries.tolist(), "rank": {"t2v": t2v.tolist(), "v2t": v2t.tolist()}}
