"""Initialise ViCLIP from an open_clip CLIP model (viclip_spec.md §1.2, §1.3, §1.5, §1.8).

Both towers start from the CLIP model of the same size. The copy is key for
key, because our parameter names are the official ViCLIP (= OpenAI CLIP)
names:

- ``visual.X``  -> ``vision_encoder.X``; the 2-D patch conv ``[W, 3, p, p]``
  is inflated to our Conv3d ``[W, 3, 1, p, p]`` (temporal kernel 1, so the
  "centre slot" is the only slot: ``unsqueeze(2)``);
- ``X`` (CLIP's text tower attributes) -> ``text_encoder.X``; CLIP's 77
  text positions are cut to our context length (the first rows, as the
  official loader does, never interpolated);
- ``vision_encoder.temporal_positional_embedding`` is set to zeros and
  ``temp`` to ``cfg.temp_init``: CLIP has neither (its ``logit_scale`` is
  not used).

Numerical equivalence (checked in tests/test_clip_init.py): with T = 1 our
video tower equals ``clip.encode_image`` and our text tower equals
``clip.encode_text`` (EOT inside our context) in fp32, *provided* the
open_clip model matches ViCLIP's fixed architecture choices:

- activation: ViCLIP always runs QuickGELU (as OpenAI CLIP). open_clip's
  built-in names without ``-quickgelu`` (e.g. ``ViT-B-16``) run ``nn.GELU``.
  Weights trained with QuickGELU (OpenAI's) should be built with the
  ``-quickgelu`` name or ``force_quick_gelu=True``; GELU-trained weights
  (LAION, DataComp) copy fine but then run under a different activation in
  ViCLIP. Either case is noted in the report's ``warnings``, not an error.
- LayerNorm: open_clip's fp32 models use ``LayerNorm`` (eps 1e-5, cast back
  to the input dtype) everywhere; ``LayerNormFp32`` only when built with a
  half-precision ``cast_dtype``. Both equal ours in fp32 (vision: plain
  ``nn.LayerNorm``; text: fp32-casting, as CLIP's). A different eps (via
  ``norm_kwargs``) is reported as a warning.
- layer scale: the built-in ViT-B/16 and ViT-L/14 configs have none
  (``ls_1``/``ls_2`` are ``nn.Identity``, no parameters). Where a config has
  ``ls_init_value``, the ``ls_1.gamma``/``ls_2.gamma`` scales are folded
  exactly into ``attn.out_proj`` and ``mlp.c_proj`` (listed under "folded").
- anything ViCLIP cannot express (custom attention blocks, attentional or
  average pooling, a text projection with bias, a non-causal text tower,
  timm/ResNet/HF towers, different head counts) raises ``ValueError``.

Nothing is logged here; the caller logs the returned report.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from viclip.model.viclip import ViCLIP, ViCLIPConfig

# our keys CLIP cannot fill, and the open_clip keys ViCLIP has no use for
NOT_FROM_CLIP = ("vision_encoder.temporal_positional_embedding", "temp")
UNUSED_CLIP_KEYS = ("logit_scale", "logit_bias")
_EPS = 1e-5  # nn.LayerNorm's default, which all our LayerNorms use


def _source_key(ours: str) -> str | None:
    if ours.startswith("vision_encoder."):
        return "visual." + ours[len("vision_encoder.") :]
    if ours.startswith("text_encoder."):
        return ours[len("text_encoder.") :]
    return None


def _layer_scale(src: dict, ours: str) -> str | None:
    """The open_clip layer-scale key that multiplies the output of `ours`, if any."""
    for leaf, ls in (("attn.out_proj.", "ls_1.gamma"), ("mlp.c_proj.", "ls_2.gamma")):
        if leaf in ours:
            key = _source_key(ours.split(leaf)[0] + ls)
            return key if key in src else None
    return None


def _check_structure(model: ViCLIP, clip) -> list[str]:
    """Architecture differences that carry no parameters (so a shape check cannot see them)."""
    problems = []
    visual = getattr(clip, "visual", None)
    if visual is None or not hasattr(visual, "conv1") or not hasattr(visual, "class_embedding"):
        return [f"open_clip vision tower {type(visual).__name__} is not a ViT (need open_clip's VisionTransformer)"]
    if not hasattr(clip, "token_embedding") or not hasattr(clip, "transformer"):
        return [f"{type(clip).__name__} has no built-in CLIP text tower (need open_clip.model.CLIP)"]
    if getattr(visual, "attn_pool", None) is not None:
        problems.append("visual: attentional pooling is not supported")
    if getattr(visual, "pool_type", "tok") != "tok":
        problems.append(f"visual: pool_type {visual.pool_type!r} (ViCLIP uses the class token, 'tok')")
    if getattr(visual, "final_ln_after_pool", False):
        problems.append("visual: final_ln_after_pool is not supported")
    if isinstance(getattr(visual, "ln_pre", None), nn.Identity):
        problems.append("visual: no ln_pre (ViCLIP has one)")
    if getattr(clip, "text_pool_type", "argmax") != "argmax":
        problems.append(f"text: pool_type {clip.text_pool_type!r} (ViCLIP pools at the EOT = argmax id)")
    if getattr(clip, "attn_mask", None) is None:
        problems.append("text: no causal mask (ViCLIP's text tower is causal)")
    if isinstance(getattr(clip, "text_projection", None), nn.Linear):
        problems.append("text: text_projection is a Linear with bias (ViCLIP: a bias-free matrix)")
    for tower, ours, theirs in (
        ("visual", model.vision_encoder.transformer, visual.transformer),
        ("text", model.text_encoder.transformer, clip.transformer),
    ):
        for i, (a, b) in enumerate(zip(ours.resblocks, theirs.resblocks)):
            if type(b).__name__ != "ResidualAttentionBlock" or not isinstance(
                getattr(b, "attn", None), nn.MultiheadAttention
            ):
                problems.append(f"{tower} block {i}: {type(b).__name__} is not supported")
                break
            if a.attn.num_heads != b.attn.num_heads:
                problems.append(f"{tower} block {i}: {a.attn.num_heads} heads here, {b.attn.num_heads} in open_clip")
                break
    return problems


def _warnings(clip) -> list[str]:
    out = []
    gelu = clip.visual.transformer.resblocks[0].mlp.gelu if len(clip.visual.transformer.resblocks) else None
    if gelu is not None and type(gelu).__name__ != "QuickGELU":
        out.append(
            f"open_clip model runs {type(gelu).__name__}, ViCLIP runs QuickGELU: fine for QuickGELU-trained "
            "(OpenAI) weights, a changed activation for GELU-trained (LAION/DataComp) weights"
        )
    eps = sorted({m.eps for m in clip.modules() if isinstance(m, nn.LayerNorm) and m.eps != _EPS})
    if eps:
        out.append(f"open_clip LayerNorm eps {eps} differs from ViCLIP's {_EPS}")
    return out


def init_from_open_clip(model: ViCLIP, clip) -> dict:
    """Copy every tower weight of an open_clip ``CLIP`` into `model` (in place).

    Shapes (and parameter-free architecture choices) are verified before
    anything is written; every problem is listed in one ``ValueError``.
    ``temporal_positional_embedding`` is reset to zeros and ``temp`` to the
    configured ``temp_init``. Works on any device (``meta`` included) and
    keeps `model`'s dtypes and ``requires_grad`` flags.

    Returns ``{"copied": [our keys], "not_initialised": [our keys not taken
    from CLIP], "ignored": [open_clip keys not used], "folded": [open_clip
    layer-scale keys multiplied into out_proj/c_proj], "warnings": [str]}``.
    """
    problems = _check_structure(model, clip)
    src = clip.state_dict()
    ours = dict(model.named_parameters())
    ours.update(model.named_buffers())

    plan: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    folded: list[str] = []
    for key, dst in ours.items():
        if key in NOT_FROM_CLIP:
            continue
        skey = _source_key(key)
        if skey is None or skey not in src:
            problems.append(f"{key}: no open_clip tensor {skey!r}")
            continue
        value = src[skey]
        used.add(skey)
        if key == "vision_encoder.conv1.weight" and value.ndim == 4 and dst.ndim == 5:
            value = value.unsqueeze(2)  # inflate: temporal kernel 1, the 2-D kernel is its centre slot
        if key == "text_encoder.positional_embedding" and value.ndim == 2 and value.shape[0] > dst.shape[0]:
            value = value[: dst.shape[0]]  # CLIP's 77 positions cut to our context
        ls = _layer_scale(src, key)
        if ls is not None:
            used.add(ls)
            folded.append(ls)
            gamma = src[ls]
            if gamma.shape != value.shape[:1]:
                problems.append(f"{ls}: shape {list(gamma.shape)} does not scale {skey} {list(value.shape)}")
                continue
            value = value * (gamma[:, None] if value.ndim == 2 else gamma)
        if tuple(value.shape) != tuple(dst.shape):
            problems.append(f"{key}: {list(dst.shape)} here, {list(value.shape)} from open_clip {skey!r}")
            continue
        plan[key] = value

    ignored = sorted(k for k in src if k not in used and k in UNUSED_CLIP_KEYS)
    extra = sorted(k for k in src if k not in used and k not in UNUSED_CLIP_KEYS)
    problems += [f"open_clip {k!r} {list(src[k].shape)}: no ViCLIP counterpart" for k in extra]
    if problems:
        raise ValueError(
            f"cannot initialise ViCLIP from {type(clip).__name__} ({len(problems)} problems):\n  "
            + "\n  ".join(problems)
        )

    with torch.no_grad():
        for key, value in plan.items():
            ours[key].copy_(value)
        if "vision_encoder.temporal_positional_embedding" in ours:
            ours["vision_encoder.temporal_positional_embedding"].zero_()
        if "temp" in ours:
            ours["temp"].fill_(model.cfg.temp_init)

    return {
        "copied": list(plan),
        "not_initialised": [k for k in ours if k in NOT_FROM_CLIP],
        "ignored": ignored,
        "folded": sorted(set(folded)),
        "warnings": _warnings(clip),
    }


def _registered_name(open_clip, name: str) -> str:
    """`name` itself, or the stem of a model config JSON after registering it with open_clip."""
    if not name.endswith(".json"):
        return name
    path = Path(name).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model.clip_name: open_clip model config {str(path)!r} not found")
    open_clip.add_model_config(path)
    return path.stem


def build_open_clip(
    name: str,
    pretrained: str | os.PathLike | None,
    context_length: int | None = None,
    *,
    force_quick_gelu: bool = False,
):
    """An open_clip model in fp32 on the CPU, in eval mode.

    `name` is an open_clip model name, or the path of a model config JSON in
    open_clip's format (``ViT-B-16-quickgelu.json``), which is registered under
    its file stem first: the same loader then serves a custom or tiny CLIP.

    `pretrained`:
    - ``None``: random initialisation (no network, no file);
    - a path to a local weights file (``.pt``/``.pth``/``.bin``/``.safetensors``
      in open_clip or OpenAI format): loaded; ``FileNotFoundError`` names it
      if it is missing;
    - an open_clip pretrained tag for `name` (e.g. ``"openai"``,
      ``"datacomp_xl_s13b_b90k"``): passed to open_clip, which downloads it
      from the Hugging Face hub or its URL. This works only where the machine
      reaches the hub (or the file is already in open_clip's cache).
    A string that is neither a known tag nor an existing file raises
    ``FileNotFoundError``.

    `context_length` cuts the text tower to its first positions (rows of the
    positional table and of the causal mask), as ViCLIP's loader does; it is
    applied after loading, so checkpoint positions are cut, never resized.
    `force_quick_gelu` builds the QuickGELU variant (the activation OpenAI
    CLIP was trained with, and the one ViCLIP uses); names ending in
    ``-quickgelu`` already have it.
    """
    import open_clip  # lazy: importing it takes seconds

    name = _registered_name(open_clip, name)
    if pretrained is not None:
        pretrained = os.fspath(pretrained)
        tags = open_clip.list_pretrained_tags_by_model(name.replace("/", "-"))
        if pretrained.lower() not in {t.lower() for t in tags}:
            path = Path(pretrained).expanduser()
            if not path.is_file():
                raise FileNotFoundError(
                    f"open_clip weights file {str(path)!r} not found (and {pretrained!r} is not an open_clip "
                    f"tag for {name}; known tags: {sorted(tags)})"
                )
            pretrained = str(path)
    clip = open_clip.create_model(
        name, pretrained=pretrained, force_quick_gelu=force_quick_gelu, precision="fp32", device="cpu"
    )
    if context_length is not None:
        full = clip.positional_embedding.shape[0]
        if not 0 < context_length <= full:
            raise ValueError(f"context_length {context_length}: open_clip {name} has {full} text positions")
        with torch.no_grad():
            clip.positional_embedding = nn.Parameter(clip.positional_embedding[:context_length].clone())
        clip.attn_mask = clip.attn_mask[:context_length, :context_length].clone()
        clip.context_length = context_length
    return clip.eval()


def viclip_from_clip(
    cfg: ViCLIPConfig, name: str, pretrained: str | os.PathLike | None, *, force_quick_gelu: bool = False
) -> tuple[ViCLIP, dict]:
    """A ViCLIP built from `cfg` with both towers initialised from open_clip `name`/`pretrained`.

    Returns the model and the report of ``init_from_open_clip``.
    """
    clip = build_open_clip(name, pretrained, force_quick_gelu=force_quick_gelu)
    model = ViCLIP(cfg)
    report = init_from_open_clip(model, clip)
    return model, report
