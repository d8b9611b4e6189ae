"""Zero-shot classification: hand-checked metrics on known embeddings, templates, and a tiny model end to end.

The helpers at the top (a tiny model config, a benchmark written straight to
the standard layout) are shared by the other tests/test_eval_*.py files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from tiny_model import tiny

from viclip.data.benchmarks.load import load_benchmark
from viclip.data.video import write_mp4
from viclip.eval.classification import class_scores, prompts, zero_shot_accuracy
from viclip.eval.embed import embed_texts, embed_videos
from viclip.eval.metrics import per_class_accuracy, topk_accuracy
from viclip.eval.protocol import zeroshot_settings
from viclip.eval.templates import (
    CLIP_K700,
    SETS,
    VICLIP,
    VICLIP28,
    list_sha256,
    resolve_templates,
)
from viclip.eval.zeroshot import evaluate_zero_shot
from viclip.model.factory import initial_model
from viclip.model.tokenizer import tokenizer_for
from viclip.model.viclip import ViCLIPConfig

TINY = ViCLIPConfig.from_dict(tiny(context_length=12))


def write_benchmark(
    root: Path,
    name: str,
    *,
    labels=None,
    texts=None,
    meta: dict | None = None,
    n_frames: int = 12,
    size: tuple[int, int] = (16, 16),
    split: str = "test",
    undecoded: int = 0,
    seed: int = 0,
) -> Path:
    """A benchmark in the standard layout with random frames; `undecoded` manifest rows never reach the cache."""
    n = len(labels) if labels is not None else len(texts)
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, n_frames, *size, 3), dtype=np.uint8)
    rows = pd.DataFrame(
        {
            "clip_id": [f"{name}-{i}" for i in range(n)],
            "path": [f"videos/{i}.mp4" for i in range(n)],
            "split": split,
            "n_frames": n_frames,
        }
    )
    if labels is not None:
        rows["label"] = np.asarray(labels, dtype=np.int64)
    else:
        rows["texts"] = texts
    lost = rows.iloc[:undecoded].assign(clip_id=lambda d: d.clip_id + "-lost")
    root.mkdir(parents=True, exist_ok=True)
    pd.concat([rows, lost], ignore_index=True).to_parquet(root / "manifest.parquet", index=False)
    rows.to_parquet(root / "frames.parquet", index=False)
    np.save(root / "frames.npy", frames)
    if not (meta or {}).get("synthetic", True):  # a real benchmark's views beyond the cache come from its files
        (root / "videos").mkdir(exist_ok=True)
        for i, path in enumerate(rows["path"]):
            write_mp4(root / path, frames[i])
    task = "classification" if labels is not None else "retrieval"
    (root / "meta.json").write_text(json.dumps({"name": name, "task": task, "synthetic": True, **(meta or {})}))
    return root


def classification_bench(root: Path, n: int = 10, synthetic: bool = True, seed: int = 0) -> Path:
    classes = ["red circle", "blue square", "green star", "red square", "blue circle", "green circle", "red star"]
    labels = [i % len(classes) for i in range(n)]
    meta = {"classes": classes, "templates": ["a {}.", "{}"], "synthetic": synthetic}
    return write_benchmark(root, "k400", labels=labels, meta=meta, seed=seed)


# ------------------------------------------------------------------ known embeddings


def _e(i: int, dim: int = 7) -> torch.Tensor:
    v = torch.zeros(dim)
    v[i] = 1.0
    return v


def test_zero_shot_classification_on_known_embeddings_hand_checked():
    # class c's two prompts are e_c +/- 0.5 e_6 (normalised): their mean points along e_c, so the
    # class embedding is e_c and a video's score for class c is its c-th coordinate
    prompt = torch.stack(
        [
            torch.stack([F.normalize(_e(c) + 0.5 * _e(6), dim=0), F.normalize(_e(c) - 0.5 * _e(6), dim=0)])
            for c in range(6)
        ]
    )
    video = F.normalize(
        torch.stack(
            [
                _e(0),  # label 0: rank 0
                torch.tensor([0.9, 0.5, 0.3, 0.2, 0.1, 0.05, 0.0]),  # label 2: two classes ahead -> rank 2
                torch.tensor([0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]),  # label 5: rank 5
                _e(3) + _e(4),  # label 3: tied with class 4 -> rank 1
            ]
        ),
        dim=-1,
    )
    labels = torch.tensor([0, 2, 5, 3])
    acc = zero_shot_accuracy(video, prompt, labels, "clip")
    assert acc["top1"] == pytest.approx(1 / 4)  # video 0
    assert acc["top5"] == pytest.approx(3 / 4)  # videos 0, 1, 3
    assert acc["avg"] == pytest.approx(1 / 2)
    scores = class_scores(video, prompt, "clip")
    assert torch.allclose(scores[0], _e(0)[:6], atol=1e-6)
    # ViCLIP's mean of cosines scales every score by cos(angle to e_c) here: the same ranking
    assert zero_shot_accuracy(video, prompt, labels, "viclip") == acc
    per = per_class_accuracy(scores, labels, [f"c{i}" for i in range(6)])
    assert per["c2"] == {"n": 1, "top1": 0.0, "top5": 1.0} and per["c5"] == {"n": 1, "top1": 0.0, "top5": 0.0}


# ------------------------------------------------------------------ templates


def test_template_sets():
    assert len(VICLIP) == 16 and len(set(VICLIP)) == 16
    assert len(VICLIP28) == 28 and len(set(VICLIP28)) == 28
    assert (
        len(CLIP_K700) == 28
        and CLIP_K700[0] == "a photo of {}."
        and CLIP_K700[-1] == "a demonstration of a person practicing {}."
    )
    assert all(t.count("{}") == 1 for s in SETS.values() for t in s)
    assert "Can you recognize the action of {}?" in VICLIP and "{}" in VICLIP


def test_resolve_templates():
    synthetic = {"name": "k400", "synthetic": True, "templates": ["a {}."]}
    real = {"name": "k400", "synthetic": False, "classes": ["abseiling"]}
    assert resolve_templates("auto", synthetic) == ("benchmark:k400", ["a {}."])
    assert resolve_templates("auto", real) == ("viclip", list(VICLIP))
    assert resolve_templates("clip_k700", synthetic)[1] == list(CLIP_K700)
    with pytest.raises(ValueError, match="no 'templates'"):
        resolve_templates("benchmark", real)
    with pytest.raises(ValueError, match="unknown template set"):
        resolve_templates("imagenet", real)
    assert list_sha256(["a", "b"]) != list_sha256(["b", "a"])


# ------------------------------------------------------------------ a tiny model end to end


def test_evaluate_zero_shot_classification_matches_the_direct_computation(tmp_path):
    bench = load_benchmark(classification_bench(tmp_path / "k400"), TINY.num_frames, TINY.image_size)
    model, tok = initial_model(TINY, 0), tokenizer_for(TINY)
    settings = zeroshot_settings({"ensemble": "clip", "wise_ft_alpha": 1.0, "dsl": True})
    metrics, details = evaluate_zero_shot(model, tok, bench, settings)
    classes, temps = bench.meta["classes"], bench.meta["templates"]
    text = embed_texts(model, tok, prompts(classes, temps)).view(len(classes), len(temps), -1)
    direct = topk_accuracy(
        class_scores(embed_videos(model, bench.test.sampler), text, "clip"), torch.from_numpy(bench.test.labels)
    )
    assert {k: metrics[k] for k in direct} == pytest.approx(direct, abs=1e-7)
    assert {"dsl_top1", "dsl_top5", "dsl_avg"} <= metrics.keys()
    assert details["n_queries"] == 10 and details["n_candidates"] == 7
    assert sum(c["n"] for c in details["per_class"].values()) == 10
    s = details["settings"]
    assert s["templates"] == "benchmark:k400" and s["views"] == {"clips": 1, "crops": 1}
    assert s["classes_sha256"] == list_sha256(classes) and s["dsl"]["temperature"] == 1.0
    # the headline does not move when DSL is switched off
    plain, _ = evaluate_zero_shot(model, tok, bench, {**settings, "dsl": False})
    assert plain == {k: v for k, v in metrics.items() if not k.startswith("dsl_")}


def test_real_kinetics_gets_viclip_templates_and_several_views(tmp_path):
    bench = load_benchmark(classification_bench(tmp_path / "k400", synthetic=False), TINY.num_frames, TINY.image_size)
    model, tok = initial_model(TINY, 0), tokenizer_for(TINY)
    settings = zeroshot_settings({"zeroshot": {"views": {"clips": 2, "crops": 3}}})
    metrics, details = evaluate_zero_shot(model, tok, bench, settings)
    assert details["settings"]["templates"] == "viclip" and details["settings"]["n_templates"] == 16
    assert details["settings"]["views"] == {"clips": 2, "crops": 3}
    assert 0.0 <= metrics["top1"] <= metrics["top5"] <= 1.0 and math.isclose(
        metrics["avg"], (metrics["top1"] + metrics["top5"]) / 2
    )
