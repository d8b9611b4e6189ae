"""The analytic counter (viclip/model/flops.py) against real modules.

Parameters: modules built on the meta device. FLOPs: torch's FlopCounterMode
on a real tiny model. FlopCounterMode counts mm/addmm/bmm/convolution (and
their backward) and the CUDA SDPA kernels, but on CPU nn.MultiheadAttention
dispatches to ``_scaled_dot_product_flash_attention_for_cpu``, which it does
not register: the attention scores/AV there go uncounted. So each check is
made twice: (a) the default CPU kernel, where the measured total must equal
the analytic count minus the attention part exactly (and adding torch's own
SDPA formulas for that op through ``custom_mapping`` must give the full
count); (b) SDPA forced to the math backend, where attention runs as plain
bmm's and the measured total must equal the full analytic count. torch's
formula for a flash SDPA backward also counts the recomputed Q K^T (+0.5x the
attention forward); the counter reports that apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import (
    FlopCounterMode,
    sdpa_backward_flop_count,
    sdpa_flop_count,
)

from viclip.model import flops
from viclip.model.viclip import ViCLIP, ViCLIPConfig

REPO = Path(__file__).resolve().parents[1]
aten = torch.ops.aten

TINY = ViCLIPConfig(
    image_size=32,
    patch_size=8,
    num_frames=4,
    vision_width=64,
    vision_layers=2,
    vision_heads=4,
    embed_dim=32,
    drop_path=0.0,
    vocab_size=100,
    context_length=16,
    text_width=48,
    text_layers=2,
    text_heads=4,
    freeze_text=False,
    tokenizer="word_hash",
)
B = 2  # clips / captions per measured batch

CPU_SDPA = {
    aten._scaled_dot_product_flash_attention_for_cpu: lambda q, k, v, *a, **kw: sdpa_flop_count(q, k, v),
    aten._scaled_dot_product_flash_attention_for_cpu_backward: lambda g, q, k, v, *a, **kw: sdpa_backward_flop_count(
        g, q, k, v
    ),
}


def default_config() -> ViCLIPConfig:
    return flops.config_from_yaml(REPO / "config.yaml")[0]


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", ["tiny-test", "default", "viclip-b16", "viclip-l14"])
def test_params_match_real_modules(name):
    cfg = {"tiny-test": TINY, "default": None}.get(name) or (
        default_config() if name == "default" else flops.config_from_name(name)
    )
    with torch.device("meta"):
        model = ViCLIP(cfg)
    c = flops.count(cfg, 0.9, name)
    assert c["params_total"] == n_params(model)
    assert c["params_vision"] == n_params(model.vision_encoder)
    assert c["params_text"] == n_params(model.text_encoder)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert c["params_trainable"] == trainable
    expected = {"viclip-b16": 149_603_841, "viclip-l14": 427_590_145}
    if name in expected:
        assert c["params_total"] == expected[name]


def _tiny_model() -> ViCLIP:
    torch.manual_seed(0)
    return ViCLIP(TINY).train()


def _video() -> torch.Tensor:
    return torch.randn(
        B, TINY.num_frames, 3, TINY.image_size, TINY.image_size, generator=torch.Generator().manual_seed(1)
    )


def _ids() -> torch.Tensor:
    ids = torch.randint(1, TINY.vocab_size - 1, (B, TINY.context_length), generator=torch.Generator().manual_seed(2))
    ids[:, 5] = TINY.vocab_size - 1  # EOT: the largest id
    return ids


def _keep(ratio: float) -> torch.Tensor | None:
    if ratio == 0.0:
        return None
    from viclip.model.masking import random_keep_indices

    n = flops.vision_tokens(TINY, ratio)["patch_tokens"]
    return random_keep_indices(B, n, ratio, torch.Generator().manual_seed(3))


def _measure(fn, math: bool, custom: bool = False) -> dict:
    fc = FlopCounterMode(display=False, custom_mapping=CPU_SDPA if custom else None)
    if math:
        with sdpa_kernel(SDPBackend.MATH), fc:
            fn()
    else:
        with fc:
            fn()
    counts = {str(k): v for k, v in fc.get_flop_counts()["Global"].items()}
    return {"total": fc.get_total_flops(), **counts}


@pytest.mark.parametrize("ratio", [0.0, 0.5])
def test_vision_forward_flops(ratio):
    model, video, keep = _tiny_model(), _video(), _keep(ratio)
    c = flops.count(TINY, ratio)
    if keep is not None:
        assert keep.shape[1] == c["kept_patches"]
    fwd = lambda: model.vision_encoder(video, keep=keep)
    with torch.no_grad():
        default, custom, math = _measure(fwd, False), _measure(fwd, False, True), _measure(fwd, True)
    attn = B * c["flops_vision_attn"]
    assert default["total"] == B * c["flops_forward_vision"] - attn  # CPU flash attention is not counted
    assert default["aten.convolution"] == B * c["flops_patch_embed_all"]
    assert custom["total"] == B * c["flops_forward_vision"]
    assert math["total"] == B * c["flops_forward_vision"]
    assert math["aten.bmm"] == attn


def test_text_forward_flops():
    model, ids = _tiny_model(), _ids()
    c = flops.count(TINY, 0.0)
    fwd = lambda: model.text_encoder(ids)
    with torch.no_grad():
        default, custom, math = _measure(fwd, False), _measure(fwd, False, True), _measure(fwd, True)
    attn = B * c["flops_text_attn"]  # the causal mask is an additive mask: full L x L is computed
    assert default["total"] == B * c["flops_forward_text"] - attn
    assert custom["total"] == B * c["flops_forward_text"]
    assert math["total"] == B * c["flops_forward_text"]
    assert math["aten.bmm"] == attn


@pytest.mark.parametrize("ratio", [0.0, 0.5])
def test_vision_backward_flops(ratio):
    """Weights require grad, the video does not: conv backward is its weight gradient only (1x)."""
    model, video, keep = _tiny_model(), _video(), _keep(ratio)
    c = flops.count(TINY, ratio)
    assert not video.requires_grad

    def step():
        model.zero_grad(set_to_none=True)
        model.vision_encoder(video, keep=keep).sum().backward()

    default, custom, math = _measure(step, False), _measure(step, False, True), _measure(step, True)
    fwd_bwd = B * (c["flops_forward_vision"] + c["flops_backward_vision"])
    assert math["total"] == fwd_bwd
    # torch's formula for a fused (flash) SDPA backward adds the recomputed Q K^T: +0.5x attention forward.
    assert custom["total"] == fwd_bwd + B * c["flops_attn_recompute_flash_vision"]
    assert c["flops_attn_recompute_flash_vision"] * 2 == c["flops_vision_attn"]
    assert default["total"] == fwd_bwd - 3 * B * c["flops_vision_attn"]  # forward 1x + backward 2x uncounted
    assert math["aten.convolution_backward"] == B * c["flops_patch_embed_all"]
    assert c["flops_backward_vision"] == 2 * c["flops_forward_vision"] - c["flops_patch_embed_all"]


@pytest.mark.parametrize("freeze_text", [True, False])
def test_train_step_flops(freeze_text):
    """A whole step (both towers, InfoNCE loss): the frozen text tower has no backward at all."""
    cfg = ViCLIPConfig.from_dict({**TINY.to_dict(), "freeze_text": freeze_text})
    torch.manual_seed(0)
    model, video, ids, keep = ViCLIP(cfg).train(), _video(), _ids(), _keep(0.5)
    c = flops.count(cfg, 0.5)

    def step():
        model.loss(model.encode_video(video, keep=keep), model.encode_text(ids)).backward()

    math = _measure(step, True)
    d = cfg.embed_dim
    # The loss's B x B similarity matmul (not in the per-pair counts): forward 2*B*B*D, backward the
    # gradient of each side that requires one.
    loss = 2 * B * B * d * (1 + 1 + (0 if freeze_text else 1))
    assert math["total"] == B * c["flops_train_step_per_pair"] + loss
    assert (c["flops_backward_text"] == 0) == freeze_text


def test_b16_masked_vs_unmasked_ratio():
    cfg = flops.config_from_name("viclip-b16")
    m, u = flops.count(cfg, 0.9), flops.count(cfg, 0.0)
    assert (m["kept_patches"], m["tokens_vision"]) == (157, 158)
    assert (u["kept_patches"], u["tokens_vision"]) == (1568, 1569)

    # From the token counts alone: W=768, 12 layers, p=16, D=512; text W=512, 12 layers, L=32, frozen.
    def body(s):
        return 12 * (24 * s * 768**2 + 4 * s * s * 768) + 2 * 768 * 512

    embed = 2 * 1568 * 3 * 16 * 16 * 768
    text = 12 * (24 * 32 * 512**2 + 4 * 32 * 32 * 512) + 2 * 512 * 512

    def step(s):
        return (embed + body(s)) + (embed + 2 * body(s)) + text

    assert m["flops_forward_vision"] == embed + body(158)
    assert u["flops_forward_vision"] == embed + body(1569)
    assert m["flops_forward_text"] == text and m["flops_backward_text"] == 0
    assert m["flops_train_step_per_pair"] == step(158)
    assert u["flops_train_step_per_pair"] == step(1569)
    ratio = u["flops_train_step_per_pair"] / m["flops_train_step_per_pair"]
    assert ratio == pytest.approx(step(1569) / step(158))
    assert ratio > 5
    # The blocks alone scale between the token ratio and its square.
    blocks = (u["flops_forward_vision"] - embed) / (m["flops_forward_vision"] - embed)
    assert 1569 / 158 < blocks < (1569 / 158) ** 2


def test_cli_json(tmp_path, capsys):
    out = tmp_path / "f.json"
    flops.main(["--config", str(REPO / "config.yaml"), "--mask", "0.9", "--mask", "0.0", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "MFLOPs" in printed and "tiny" in printed
    data = json.loads(out.read_text())
    assert [r["mask_ratio"] for r in data["results"]] == [0.9, 0.0]
    assert data["results"][0] == flops.count(default_config(), 0.9, data["model"])
    flops.main(["--model", "viclip-b16", "--mask", "0.9"])
    assert "GFLOPs" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        flops.main(["--model", "nope"])
