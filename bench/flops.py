"""Benchmark: analytic parameters and FLOPs of ViCLIP, masked (0.9) vs unmasked (0.0).

Writes bench/results/flops.json: ViCLIP-B/16, ViCLIP-L/14 and the embedded
tiny default model (config.yaml's `model:` block), each at mask ratio 0.9
and 0.0, with the unmasked/masked ratio of the FLOPs per model. Counting
rules: viclip/model/flops.py (multiply-add = 2 FLOPs, matmuls only, per
clip / caption / pair). No model is built or run; it takes well under a second.

Usage: .venv/bin/python bench/flops.py [--config config.yaml] [--out bench/results/flops.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from viclip.io import atomic_json
from viclip.model import flops

MASKS = (0.9, 0.0)


def entry(cfg, name: str) -> dict:
    rows = {f"mask_{m}": flops.count(cfg, m, name) for m in MASKS}
    masked, unmasked = rows["mask_0.9"], rows["mask_0.0"]
    ratio = lambda k: unmasked[k] / masked[k]
    return {
        "config": cfg.to_dict(),
        **rows,
        "ratio_unmasked_over_masked": {
            "tokens_vision": ratio("tokens_vision"),
            "flops_forward_vision": ratio("flops_forward_vision"),
            "flops_train_step_per_pair": ratio("flops_train_step_per_pair"),
            "flops_train_step_per_pair_kept_embed": ratio("flops_train_step_per_pair_kept_embed"),
            "flops_train_step_per_pair_with_recompute": ratio("flops_train_step_per_pair_with_recompute"),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", type=Path, default=REPO / "config.yaml")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "flops.json")
    args = ap.parse_args()
    models = {name: entry(flops.config_from_name(name), name) for name in ("viclip-b16", "viclip-l14")}
    tiny_cfg, tiny_name = flops.config_from_yaml(args.config)
    models[f"default:{tiny_name}"] = entry(tiny_cfg, tiny_name)
    result = {
        "units": "FLOPs (multiply-add = 2) per clip (vision) / caption (text) / pair; batch 1",
        "rules": "viclip/model/flops.py docstring",
        "masks": list(MASKS),
        "default_config": str(args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config),
        "models": models,
    }
    atomic_json(result, args.out)
    for name, e in models.items():
        m, u = e["mask_0.9"], e["mask_0.0"]
        print(flops.format_table([m, u]))
        r = e["ratio_unmasked_over_masked"]
        print(
            f"{name}: unmasked/masked train-step FLOPs {r['flops_train_step_per_pair']:.2f}x "
            f"(vision forward {r['flops_forward_vision']:.2f}x, tokens {r['tokens_vision']:.2f}x)\n"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
