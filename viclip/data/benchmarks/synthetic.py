"""Synthetic stand-ins for the nine benchmark slots.

| slot | stands in for | what it asks |
|---|---|---|
| k400 / k600 / k700 | Kinetics zero-shot | name the clip among classes at three granularities: colour+shape, colour+texture+shape, colour+texture+shape+event |
| ssv2 | Something-Something V2 | the event only; appearance is random and carries no signal |
| msrvtt | MSR-VTT | one caption per video |
| lsmdc | LSMDC | one movie-description-style caption, partial attributes |
| msvd | MSVD | several captions per video |
| didemo | DiDeMo | two events per video, one sentence each (paragraph or sentence queries) |
| anet | ActivityNet Captions | three events per video, one sentence each (paragraph or sentence queries) |

All clips use held-out (colour, shape) pairs and seeds of their own.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from viclip.data.language import article, gerund, noun_phrase, present, texture_word
from viclip.data.synthetic import pair_pool, render_dataset, sample_specs, sub_seed
from viclip.data.world import COLOURS, SHAPES, TEXTURES, ClipSpec, allowed_events
from viclip.io import atomic_json, atomic_parquet

CLASSIFICATION = ("k400", "k600", "k700", "ssv2")
RETRIEVAL = ("msrvtt", "lsmdc", "didemo", "msvd", "anet")

# Prompts in the register of the training captions, as CLIP's prompt
# engineering matches its captions; the tiny text tower knows no other words.
TEMPLATES = ("a {}.", "{}", "there is a {}.", "the {}.")
SSV2_TEMPLATES = ("something {}.", "a video of something {}.")


def class_names(slot: str) -> list[str]:
    """Every class of a slot, in a fixed sorted order (stable across runs)."""
    if slot == "k400":
        names = [f"{c} {s}" for c in COLOURS for s in SHAPES]
    elif slot == "k600":
        names = [noun_phrase(c, texture_word(t), s) for c, t, s in itertools.product(COLOURS, TEXTURES, SHAPES)]
    elif slot == "k700":
        names = [
            noun_phrase(c, texture_word(t), s, gerund(e))
            for c, t, s in itertools.product(COLOURS, TEXTURES, SHAPES)
            for e in allowed_events(s)
        ]
    elif slot == "ssv2":
        names = sorted({gerund(e) for s in SHAPES for e in allowed_events(s)})
    else:
        raise ValueError(f"{slot} is not a classification slot")
    return sorted(names)


def class_of(slot: str, spec: ClipSpec) -> str:
    e = gerund(spec.events[0])
    return {
        "k400": f"{spec.colour} {spec.shape}",
        "k600": noun_phrase(spec.colour, texture_word(spec.texture), spec.shape),
        "k700": noun_phrase(spec.colour, texture_word(spec.texture), spec.shape, e),
        "ssv2": e,
    }[slot]


def _thing(spec: ClipSpec, rng: np.random.Generator, p_colour: float = 1.0, p_texture: float = 0.5) -> str:
    colour = spec.colour if rng.random() < p_colour else ""
    texture = texture_word(spec.texture) if rng.random() < p_texture else ""
    return noun_phrase(colour, texture, spec.shape)


def retrieval_texts(slot: str, spec: ClipSpec, rng: np.random.Generator, captions_per_video: int) -> list[str]:
    """Query texts of one video, in the style of the slot's real benchmark."""
    ev = spec.events
    if slot == "msrvtt":
        where = f" on a {spec.background} background" if rng.random() < 0.5 else ""
        return [f"{article(_thing(spec, rng))} {present(ev[0], spec)}{where}"]
    if slot == "lsmdc":
        return [f"someone watches as the {_thing(spec, rng, p_colour=0.6, p_texture=0.3)} {present(ev[0], spec)}"]
    if slot == "msvd":
        forms = (
            lambda: f"{article(_thing(spec, rng))} {present(ev[0], spec)}",
            lambda: f"the {spec.shape} is {gerund(ev[0])}",
            lambda: f"there is {article(_thing(spec, rng, p_texture=1.0))} {gerund(ev[0])}",
            lambda: f"{article(spec.colour + ' shape')} {present(ev[0], spec)}",
            lambda: f"{article(_thing(spec, rng))} on a {spec.background} background {present(ev[0], spec)}",
        )
        return [forms[rng.integers(len(forms))]() for _ in range(captions_per_video)]
    if slot in ("didemo", "anet"):
        first = f"the {_thing(spec, rng)} {present(ev[0], spec)}."
        last = len(ev) - 2
        rest = [
            f"{'finally it' if i == last and i > 0 else 'then it'} {present(e, spec)}." for i, e in enumerate(ev[1:])
        ]
        return [first, *rest]  # sentences in temporal order; paragraph mode joins them with spaces
    raise ValueError(f"{slot} is not a retrieval slot")


def build_benchmark(slot: str, settings: dict, world: dict, out_dir: str | Path) -> Path:
    """Render one slot's clips and write manifest.parquet and meta.json."""
    out_dir = Path(out_dir)
    pairs = pair_pool(world, heldout=True)
    n_events = settings.get("events_per_clip", 1)
    rows = []
    for split in ("train", "test"):
        n = settings.get(split, 0)
        if n == 0:
            continue
        seed = sub_seed(settings["seed"], f"{slot}/{split}")
        specs = sample_specs(n, seed, f"{slot}-{split}-", pairs, n_events, settings["frames_per_event"])
        df = render_dataset(specs, out_dir, world, desc=f"{slot}/{split}")
        df["split"] = split
        rng = np.random.default_rng(sub_seed(seed, "texts"))
        if slot in CLASSIFICATION:
            index = {name: i for i, name in enumerate(class_names(slot))}
            df["label"] = [index[class_of(slot, s)] for s in specs]
        else:
            df["texts"] = [retrieval_texts(slot, s, rng, settings.get("captions_per_video", 1)) for s in specs]
        rows.append(df)
    manifest = pd.concat(rows, ignore_index=True)
    meta = {
        "name": slot,
        "task": "classification" if slot in CLASSIFICATION else "retrieval",
        "synthetic": True,
        "paragraph": slot in ("didemo", "anet"),
        "multi_caption_rule": "min-rank over all captions (UMT/ViCLIP itm_eval)",
    }
    if slot in CLASSIFICATION:
        meta["classes"] = class_names(slot)
        meta["templates"] = list(SSV2_TEMPLATES if slot == "ssv2" else TEMPLATES)
    atomic_parquet(manifest, out_dir / "manifest.parquet")
    atomic_json(meta, out_dir / "meta.json")
    return out_dir / "manifest.parquet"
