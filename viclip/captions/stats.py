"""Caption length statistics per variant: a quick check that a captioning run produced sensible text.

Lengths are in words (whitespace-split). The bins are the ones InternVid
reports for its released captions (34% under 10 words, 55% 10-20, 11% over
20; mean 17.6 words, P Tab. 1 and §3.3), which `REFERENCE` carries for
comparison.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REFERENCE = {
    "source": "InternVid (arXiv 2307.06942) Tab. 1 and §3.3, released captions",
    "words_mean": 17.6,
    "share_under_10": 0.34,
    "share_10_to_20": 0.55,
    "share_over_20": 0.11,
}


def length_stats(texts: list[str]) -> dict:
    words = np.array([len(str(t).split()) for t in texts], dtype=float)
    if len(words) == 0:
        return {"n": 0}
    q = np.percentile(words, [10, 50, 90])
    return {
        "n": len(words),
        "words_mean": float(words.mean()),
        "words_std": float(words.std()),
        "words_min": int(words.min()),
        "words_p10": float(q[0]),
        "words_median": float(q[1]),
        "words_p90": float(q[2]),
        "words_max": int(words.max()),
        "chars_mean": float(np.mean([len(str(t)) for t in texts])),
        "share_under_10": float((words < 10).mean()),
        "share_10_to_20": float(((words >= 10) & (words <= 20)).mean()),
        "share_over_20": float((words > 20).mean()),
        "empty": int((words == 0).sum()),
        "distinct_share": float(len(set(texts)) / len(texts)),
    }


def variant_stats(variants: dict[str, pd.DataFrame]) -> dict:
    """{variant: stats}; for `frames`, over every frame caption, plus how varied a clip's frame captions are."""
    out = {}
    for name, df in variants.items():
        if name == "frames":
            caps = [list(c) for c in df["captions"]]
            s = length_stats([t for c in caps for t in c])
            s["clips"] = len(caps)
            s["distinct_per_clip_mean"] = float(np.mean([len(set(c)) for c in caps])) if caps else 0.0
            s["share_clips_all_same"] = float(np.mean([len(set(c)) == 1 for c in caps])) if caps else 0.0
        else:
            s = length_stats(df["caption"].tolist())
            s["clips"] = len(df)
        out[name] = s
    return out


def stats_table(stats: dict) -> pd.DataFrame:
    return pd.DataFrame([{"variant": name, **s} for name, s in stats.items()])
