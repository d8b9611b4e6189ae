"""Fused captions: one training caption per clip from both scales.

InternVid's released annotation has one caption per clip, and its paper does
not say how the coarse and the fine captions were combined (viclip_spec.md
§4.3 and §8.9; Fig. 2 only shows both scales feeding one box). Two rules,
selected by `captions.fusion`:

- `concat` (default): the coarse caption, then the summary, both verbatim
  ("a man in a kitchen. he cuts a tomato, then ..."). It is the most
  defensible reading for the ablation: the fused caption then holds exactly
  what the coarse-only and the summary-only arms hold, and nothing a third
  model invented.
- `summary_prompted`: the summarizer LLM reads the coarse caption and the
  frame captions together and writes one caption (its `fusion_prompt`),
  the other plausible reading of "a language model combines them". It
  needs a language model (`backend: hf`).
"""

from __future__ import annotations

import pandas as pd

from viclip.captions.base import Summarizer
from viclip.captions.io import caption_table
from viclip.captions.shards import Runner, caption_texts

FUSION_RULES = ("concat", "summary_prompted")


def fuse(coarse: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Rule `concat`: coarse + ". " + summary, in the coarse table's clip order."""
    merged = coarse.merge(summary, on="clip_id", suffixes=("_coarse", "_summary"), validate="one_to_one")
    if len(merged) != len(coarse) or len(merged) != len(summary):
        raise ValueError("coarse and summary captions cover different clips")
    text = [f"{c.rstrip('. ')}. {s}" for c, s in zip(merged["caption_coarse"], merged["caption_summary"])]
    return caption_table(merged["clip_id"], text)


def fuse_prompted(
    coarse: pd.DataFrame, frames: pd.DataFrame, summarizer: Summarizer, run: Runner | None = None
) -> pd.DataFrame:
    """Rule `summary_prompted`: the summarizer writes one caption from the coarse caption and the frame captions."""
    merged = coarse.merge(frames, on="clip_id", validate="one_to_one")
    if len(merged) != len(coarse) or len(merged) != len(frames):
        raise ValueError("coarse and frame captions cover different clips")
    ids, co = merged["clip_id"].tolist(), merged["caption"].tolist()
    caps = [list(c) for c in merged["captions"]]
    texts = caption_texts(
        ids,
        [[c, f] for c, f in zip(co, caps)],
        lambda js: summarizer.fuse_many([ids[j] for j in js], [co[j] for j in js], [caps[j] for j in js]),
        "fusion",
        summarizer.fingerprint("fusion"),
        run or Runner(),
    )
    return caption_table(ids, texts)


def fused_captions(
    rule: str,
    coarse: pd.DataFrame,
    summary: pd.DataFrame | None = None,
    frames: pd.DataFrame | None = None,
    summarizer: Summarizer | None = None,
    run: Runner | None = None,
) -> pd.DataFrame:
    if rule == "concat":
        return fuse(coarse, summary)
    if rule == "summary_prompted":
        if summarizer is None or frames is None:
            raise ValueError("fusion summary_prompted needs the frame captions and a summarizer")
        return fuse_prompted(coarse, frames, summarizer, run)
    raise ValueError(f"captions.fusion: unknown rule {rule!r} (known: {', '.join(FUSION_RULES)})")
