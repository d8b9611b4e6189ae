"""Fused captions: the coarse caption followed by the summary, as InternVid trains on.

InternVid fuses the two scales with an LLM; the paper does not give the rule
(viclip_spec.md §8.9). Concatenation keeps both parts verbatim, which is what
the coarse-caption ablation needs to compare against.
"""

from __future__ import annotations

import pandas as pd


def fuse(coarse: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    merged = coarse.merge(summary, on="clip_id", suffixes=("_coarse", "_summary"), validate="one_to_one")
    if len(merged) != len(coarse) or len(merged) != len(summary):
        raise ValueError("coarse and summary captions cover different clips")
    text = merged["caption_coarse"].str.rstrip(".") + ". " + merged["caption_summary"]
    return pd.DataFrame({"clip_id": merged["clip_id"], "caption": text})
