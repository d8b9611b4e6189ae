"""Summarised fine captions: the summariser turns each clip's per-frame captions into one text."""

from __future__ import annotations

import pandas as pd

from viclip.captions.base import Summarizer
from viclip.captions.io import caption_table
from viclip.captions.shards import Runner, caption_texts


def summary_captions(frames: pd.DataFrame, summarizer: Summarizer, run: Runner | None = None) -> pd.DataFrame:
    ids = frames["clip_id"].tolist()
    caps = [list(c) for c in frames["captions"]]
    texts = caption_texts(
        ids,
        caps,
        lambda js: summarizer.summarize_many([ids[j] for j in js], [caps[j] for j in js]),
        "summary",
        summarizer.fingerprint("summary"),
        run or Runner(),
    )
    return caption_table(ids, texts)
