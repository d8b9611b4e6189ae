"""Summarised fine captions: the summariser turns per-frame captions into one text."""

from __future__ import annotations

import pandas as pd
from tqdm import tqdm

from viclip.captions.base import Summarizer


def summary_captions(frames: pd.DataFrame, summarizer: Summarizer) -> pd.DataFrame:
    rows = [
        {"clip_id": cid, "caption": summarizer.summarize(cid, list(caps))}
        for cid, caps in tqdm(zip(frames["clip_id"], frames["captions"]), total=len(frames), desc="summary", mininterval=2.0)
    ]
    return pd.DataFrame(rows)
