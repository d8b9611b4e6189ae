"""Zero-shot evaluation of one pretrained checkpoint on several benchmarks, with WiSE-FT.

The headline result is the model the paper evaluates: alpha x trained +
(1 - alpha) x init (viclip.model.wise_ft). With alpha < 1 the trained
weights are scored as well and kept in `metrics_uninterpolated`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import torch

from viclip.data.benchmarks.load import load_benchmark
from viclip.eval.records import make_record
from viclip.eval.zeroshot import evaluate_zero_shot
from viclip.model.factory import initial_model
from viclip.model.tokenizer import tokenizer_for
from viclip.model.wise_ft import init_source, interpolate
from viclip.runtime import as_json
from viclip.train.checkpoint import load_model

log = logging.getLogger("viclip")


def zero_shot_records(
    checkpoint: str | Path,
    bench_dirs: list[str | Path],
    settings: dict,
    arm: str,
    seed: int,
    device: torch.device | str = "cpu",
) -> Iterator[dict]:
    """One record per benchmark directory, in order."""
    model, _ = load_model(checkpoint)
    alpha = float(settings["wise_ft_alpha"])
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    variants = {"trained": trained}
    if alpha < 1.0:
        init = initial_model(model.cfg, seed).state_dict()
        variants = {"wise_ft": interpolate(init, trained, alpha), "trained": trained}
        log.info(
            "WiSE-FT: headline = %.2f x trained + %.2f x init (%s)", alpha, 1 - alpha, init_source(model.cfg, seed)
        )
    model.to(device)
    tokenizer = tokenizer_for(model.cfg)
    wise = {"wise_ft_alpha": alpha, "wise_ft_init": init_source(model.cfg, seed) if alpha < 1.0 else None}
    for bench_dir in bench_dirs:
        bench = load_benchmark(bench_dir, model.cfg.num_frames, model.cfg.image_size)
        results = {}
        for name, state in variants.items():
            model.load_state_dict(state)
            results[name] = evaluate_zero_shot(model, tokenizer, bench, settings)
        metrics, details = results["wise_ft" if alpha < 1.0 else "trained"]
        plain = results["trained"][0] if alpha < 1.0 else None
        log.info("%s: %s", bench.name, as_json({k: round(v, 4) for k, v in metrics.items()}))
        yield make_record(
            arm,
            seed,
            bench,
            "zeroshot",
            metrics,
            details,
            settings=wise,
            checkpoint=checkpoint,
            metrics_uninterpolated=plain,
        )
