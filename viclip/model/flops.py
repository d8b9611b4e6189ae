"""Analytic parameter and FLOP counts for a ViCLIP config and a mask ratio.

Everything here is arithmetic on a `ViCLIPConfig`; no module is built.
`tests/test_flops.py` checks the parameter counts against real modules (on
the meta device) and the FLOP counts against `torch.utils.flop_counter`.

Conventions
-----------
* A multiply-add is 2 FLOPs. Counts are **per clip** for the vision tower
  and **per caption** for the text tower (batch size 1; everything scales
  linearly with the batch).
* Only matmul-like ops are counted: the patch-embedding Conv3d, the packed
  QKV projection, attention scores ``Q K^T`` and ``A V``, the attention
  output projection, the two MLP linears (hidden 4W) and the final
  projection (``proj`` / ``text_projection``, applied to one token).
  Not counted (stated, not forgotten): LayerNorm, softmax, QuickGELU,
  bias/residual/positional adds, the attention scaling, drop-path, the
  token gather of masking, the embedding lookup of the text tower, the L2
  normalisation, and the InfoNCE similarity matrix (``2*B*D`` FLOPs per
  pair for a batch B, i.e. batch-dependent and negligible).
* Vision tower: the sequence is ``S = kept + 1`` tokens, with
  ``kept = T*N - int(ratio*T*N)`` (`masking.kept_count`) plus one class
  token. Per layer: QKV ``2*S*W*3W``, scores ``2*S*S*W``, AV ``2*S*S*W``,
  out-proj ``2*S*W*W``, MLP ``2*S*W*4W*2``; i.e. ``24*S*W^2 + 4*S^2*W``.
  The final projection touches only the class token: ``2*W*D``.
* Patch embedding is reported two ways. ``flops_patch_embed_all``
  (``2*T*N*3p^2*W``) embeds every patch that exists before masking, as our
  straightforward `VisionTransformer` (and the official code) do: the
  headline ``flops_forward_vision`` uses it. ``flops_patch_embed_kept``
  embeds only the kept patches, as a fused masked kernel would; the keys
  with the suffix ``_kept_embed`` use it instead.
* Text tower: all ``L = context_length`` positions are processed whatever
  the caption length (padding included), and causal attention is counted
  as full ``L x L`` (what dense kernels and FlopCounterMode do);
  ``flops_text_attn_causal`` gives the attention cost if a causal kernel
  skipped the masked upper triangle exactly (``L*(L+1)/2`` pairs).
* Backward: 2x forward for each matmul (one matmul for the input gradient,
  one for the weight gradient), with two exceptions:
  - the patch embedding's input is data, so only its weight gradient is
    computed: 1x its forward (this is what autograd does and what
    FlopCounterMode counts for ``convolution_backward`` with
    ``output_mask=[False, True]``). In the straightforward implementation
    the weight gradient runs over all T*N patches (the gradient of dropped
    patches is zero but the conv is dense), so it is 1x
    ``flops_patch_embed_all``; with a fused kernel, 1x the kept count;
  - with ``cfg.freeze_text`` no gradient flows into the text tower (its
    parameters do not require grad and its input is token ids), so its
    backward is 0. Otherwise it is 2x its forward (the first block's input
    gradient is needed for the token and position embeddings).
  Attention scores/AV backward: 4 batched matmuls for 2 in the forward,
  i.e. 2x as well (what the math SDPA path executes). Flash-style kernels
  do not keep the score matrix and recompute ``Q K^T`` in the backward:
  +0.5x the attention forward, reported apart as
  ``flops_attn_recompute_flash_{vision,text}`` (torch's FlopCounterMode
  formula for the flash/efficient/cuDNN backward includes it).
* ``flops_train_step_per_pair`` = forward + backward of both towers for one
  (clip, caption) pair: the model FLOPs, with no recomputation.
  ``cfg.grad_checkpointing`` checkpoints every vision block, so the
  blocks' forward runs again in the backward: ``flops_recompute_vision``
  (the vision blocks' forward, or 0) and
  ``flops_train_step_per_pair_with_recompute`` (what is executed) say so.

CLI: ``python -m viclip.model.flops --model viclip-b16 --mask 0.9 --mask 0.0
[--json out.json]`` or ``--config config.yaml`` (the ``model:`` block).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from viclip.model.config import PRESETS, ViCLIPConfig, kept_count

GIGA = 1e9


# ---------------------------------------------------------------- parameters
def _block_params(width: int) -> int:
    """One pre-LN block: packed in_proj (3W^2+3W), out_proj (W^2+W), ln_1, ln_2 (4W), c_fc (4W^2+4W), c_proj (4W^2+W)."""
    return 12 * width * width + 13 * width


def params_vision(cfg: ViCLIPConfig) -> int:
    w, p = cfg.vision_width, cfg.patch_size
    n = (cfg.image_size // p) ** 2
    return (
        3 * p * p * w  # conv1, no bias
        + w  # class_embedding
        + (n + 1) * w  # positional_embedding
        + cfg.num_frames * w  # temporal_positional_embedding
        + 2 * w  # ln_pre
        + cfg.vision_layers * _block_params(w)
        + 2 * w  # ln_post
        + w * cfg.embed_dim  # proj
    )


def params_text(cfg: ViCLIPConfig) -> int:
    w = cfg.text_width
    return (
        cfg.vocab_size * w  # token_embedding
        + cfg.context_length * w  # positional_embedding
        + cfg.text_layers * _block_params(w)
        + 2 * w  # ln_final
        + w * cfg.embed_dim  # text_projection
    )


def params(cfg: ViCLIPConfig) -> dict[str, int]:
    v, t = params_vision(cfg), params_text(cfg)
    total = v + t + 1  # + temp
    return {
        "params_total": total,
        "params_vision": v,
        "params_text": t,
        "params_temp": 1,
        "params_trainable": total - t if cfg.freeze_text else total,
    }


# --------------------------------------------------------------------- FLOPs
def _layer_flops(seq: int, width: int) -> dict[str, int]:
    """Forward FLOPs of one block over `seq` tokens (batch 1)."""
    return {
        "qkv": 2 * seq * width * 3 * width,
        "attn": 2 * seq * seq * width + 2 * seq * seq * width,  # Q K^T and A V, all heads together
        "out_proj": 2 * seq * width * width,
        "mlp": 2 * seq * width * 4 * width * 2,
    }


def vision_tokens(cfg: ViCLIPConfig, mask_ratio: float) -> dict[str, int]:
    n = (cfg.image_size // cfg.patch_size) ** 2
    patches = cfg.num_frames * n
    kept = kept_count(patches, mask_ratio)
    return {"patches_per_frame": n, "patch_tokens": patches, "kept_patches": kept, "tokens_vision": kept + 1}


def count(cfg: ViCLIPConfig, mask_ratio: float = 0.0, name: str | None = None) -> dict:
    """Flat, JSON-able parameter and FLOP counts (see the module docstring for the rules)."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    tok = vision_tokens(cfg, mask_ratio)
    s, w, p = tok["tokens_vision"], cfg.vision_width, cfg.patch_size
    embed_all = 2 * tok["patch_tokens"] * 3 * p * p * w
    embed_kept = 2 * tok["kept_patches"] * 3 * p * p * w
    vl = {k: v * cfg.vision_layers for k, v in _layer_flops(s, w).items()}
    v_proj = 2 * w * cfg.embed_dim
    v_body = sum(vl.values()) + v_proj  # everything after the patch embedding

    L, wt = cfg.context_length, cfg.text_width
    tl = {k: v * cfg.text_layers for k, v in _layer_flops(L, wt).items()}
    t_proj = 2 * wt * cfg.embed_dim
    fwd_text = sum(tl.values()) + t_proj
    bwd_text = 0 if cfg.freeze_text else 2 * fwd_text

    fwd_vision = embed_all + v_body
    recompute = sum(vl.values()) if getattr(cfg, "grad_checkpointing", False) else 0
    bwd_vision = embed_all + 2 * v_body  # patch embedding: weight gradient only
    fwd_vision_k = embed_kept + v_body
    bwd_vision_k = embed_kept + 2 * v_body

    out = {
        "model": name,
        "mask_ratio": mask_ratio,
        "freeze_text": cfg.freeze_text,
        "frames": cfg.num_frames,
        **tok,
        "tokens_text": L,
    }
    out.update(params(cfg))
    out.update(
        {
            "flops_patch_embed_all": embed_all,
            "flops_patch_embed_kept": embed_kept,
            "flops_vision_qkv": vl["qkv"],
            "flops_vision_attn": vl["attn"],
            "flops_vision_out_proj": vl["out_proj"],
            "flops_vision_mlp": vl["mlp"],
            "flops_vision_proj": v_proj,
            "flops_text_qkv": tl["qkv"],
            "flops_text_attn": tl["attn"],
            "flops_text_attn_causal": cfg.text_layers * 4 * (L * (L + 1) // 2) * wt,
            "flops_text_out_proj": tl["out_proj"],
            "flops_text_mlp": tl["mlp"],
            "flops_text_proj": t_proj,
            "flops_forward_vision": fwd_vision,
            "flops_forward_text": fwd_text,
            "flops_backward_vision": bwd_vision,
            "flops_backward_text": bwd_text,
            "flops_forward_per_pair": fwd_vision + fwd_text,
            "flops_train_step_per_pair": fwd_vision + bwd_vision + fwd_text + bwd_text,
            "flops_recompute_vision": recompute,
            "flops_attn_recompute_flash_vision": vl["attn"] // 2,
            "flops_attn_recompute_flash_text": 0 if cfg.freeze_text else tl["attn"] // 2,
            "flops_train_step_per_pair_with_recompute": fwd_vision + bwd_vision + fwd_text + bwd_text + recompute,
            "flops_forward_vision_kept_embed": fwd_vision_k,
            "flops_backward_vision_kept_embed": bwd_vision_k,
            "flops_train_step_per_pair_kept_embed": fwd_vision_k + bwd_vision_k + fwd_text + bwd_text,
        }
    )
    return out


# ----------------------------------------------------------------------- CLI
def config_from_yaml(path: str | Path) -> tuple[ViCLIPConfig, str]:
    """The `model:` block of a workflow config."""
    import yaml

    with open(path) as f:
        block = (yaml.safe_load(f) or {}).get("model")
    if not isinstance(block, dict):
        raise TypeError(f"{path}: no `model:` block (a mapping) to count")
    return ViCLIPConfig.from_dict(block), str(block.get("name") or Path(path).stem)


def config_from_name(name: str) -> ViCLIPConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; presets: {sorted(PRESETS)}")
    return ViCLIPConfig.from_dict({"name": name})


def format_table(rows: list[dict]) -> str:
    big = max(r["flops_train_step_per_pair"] for r in rows) >= GIGA
    scale, unit = (GIGA, "GFLOPs") if big else (1e6, "MFLOPs")
    cols = [
        ("tokens (vis)", "tokens_vision", None),
        ("fwd vision", "flops_forward_vision", scale),
        ("fwd text", "flops_forward_text", scale),
        ("bwd vision", "flops_backward_vision", scale),
        ("bwd text", "flops_backward_text", scale),
        ("train step", "flops_train_step_per_pair", scale),
        ("step (kept embed)", "flops_train_step_per_pair_kept_embed", scale),
    ]
    head = ["model", "mask"] + [c[0] for c in cols]
    lines = [head]
    for r in rows:
        lines.append(
            [str(r["model"]), f"{r['mask_ratio']:g}"]
            + [str(r[k]) if scale is None else f"{r[k] / scale:.3f}" for _, k, scale in cols]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    fmt = lambda line: "  ".join(x.rjust(wd) for x, wd in zip(line, widths))
    r0 = rows[0]
    text = [
        (
            f"{r0['model']}: params total {r0['params_total']:,} (vision {r0['params_vision']:,}, "
            f"text {r0['params_text']:,}, temp 1); freeze_text={r0['freeze_text']}"
        ),
        (
            f"{unit} per clip / caption / pair (multiply-add = 2 FLOPs, matmuls only; "
            "'kept embed': only kept patches embedded, as a fused kernel would)"
        ),
        fmt(head),
        fmt(["-" * wd for wd in widths]),
    ]
    text += [fmt(line) for line in lines[1:]]
    if any(r["flops_recompute_vision"] for r in rows):
        text.append(
            "grad checkpointing recomputes the vision blocks: executed train step "
            + ", ".join(f"{r['flops_train_step_per_pair_with_recompute'] / scale:.3f}" for r in rows)
            + f" {unit}"
        )
    return "\n".join(text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m viclip.model.flops", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--model", help=f"preset name: {', '.join(sorted(PRESETS))} (default viclip-b16)")
    src.add_argument("--config", help="workflow config YAML; its `model:` block is counted")
    ap.add_argument("--mask", type=float, action="append", help="mask ratio (repeatable; default 0.9 and 0.0)")
    ap.add_argument("--json", help="also write the counts here (atomic)")
    args = ap.parse_args(argv)
    try:
        if args.config:
            cfg, name = config_from_yaml(args.config)
        else:
            name = args.model or "viclip-b16"
            cfg = config_from_name(name)
        rows = [count(cfg, m, name) for m in (args.mask or [0.9, 0.0])]
    except (ValueError, TypeError, OSError) as e:
        sys.exit(f"error: {e}")
    print(format_table(rows))
    if args.json:
        from viclip.io import atomic_json

        atomic_json({"model": name, "config": cfg.to_dict(), "results": rows}, args.json)


if __name__ == "__main__":
    main()
