"""Tests for viclip.model.clip_init: copying open_clip CLIP towers into ViCLIP (random weights, offline, CPU)."""

from __future__ import annotations

import json

import pytest
import torch

from viclip.model.clip_init import (
    build_open_clip,
    init_from_open_clip,
    viclip_from_clip,
)
from viclip.model.viclip import ViCLIP, ViCLIPConfig

open_clip = pytest.importorskip("open_clip")

torch.set_num_threads(2)

EOT = 999  # the largest id of the small vocabulary, as CLIP's EOT is
SMALL_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 1000, "width": 64, "heads": 2, "layers": 2},
}
SMALL = {
    "image_size": 32,
    "patch_size": 8,
    "num_frames": 8,
    "vision_width": 64,
    "vision_layers": 2,
    "vision_heads": 2,
    "embed_dim": 32,
    "drop_path": 0.0,
    "vocab_size": 1000,
    "context_length": 32,
    "text_width": 64,
    "text_layers": 2,
    "text_heads": 2,
    "freeze_text": True,
    "temp_init": 0.01,
}
NOT_FROM_CLIP = {"vision_encoder.temporal_positional_embedding", "temp"}


def small_clip(seed: int = 0, **over):
    torch.manual_seed(seed)
    cfg = {**SMALL_CLIP, "quick_gelu": True, **over}
    return open_clip.CLIP(**cfg).eval()


def small_viclip(seed: int = 1, **over) -> ViCLIP:
    torch.manual_seed(seed)
    return ViCLIP(ViCLIPConfig(**{**SMALL, **over})).eval()


def text_ids(eot_at=(3, 17, 31), length=77) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    ids = torch.zeros(len(eot_at), length, dtype=torch.long)
    for row, pos in enumerate(eot_at):
        ids[row, 0] = EOT - 1  # a stand-in for SOT
        ids[row, 1:pos] = torch.randint(1, EOT - 1, (pos - 1,), generator=g)
        ids[row, pos] = EOT
    return ids


def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# ---------------------------------------------------------------- small model: exact equivalence


def test_small_equivalence_and_report():
    clip, model = small_clip(), small_viclip()
    with torch.no_grad():
        model.temp.fill_(0.5)
        model.vision_encoder.temporal_positional_embedding.normal_()
    report = init_from_open_clip(model, clip)

    assert set(report["not_initialised"]) == NOT_FROM_CLIP
    assert report["ignored"] == ["logit_scale"]
    assert report["folded"] == [] and report["warnings"] == []
    assert set(report["copied"]) == set(model.state_dict()) - NOT_FROM_CLIP
    assert not model.vision_encoder.temporal_positional_embedding.any()
    assert model.temp.item() == pytest.approx(0.01)
    assert not any(p.requires_grad for p in model.text_encoder.parameters())  # freeze_text survives the copy
    assert torch.equal(model.vision_encoder.conv1.weight[:, :, 0], clip.visual.conv1.weight)
    assert torch.equal(model.text_encoder.positional_embedding, clip.positional_embedding[:32])

    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    ids = text_ids()
    with torch.no_grad():
        ref_img = clip.encode_image(x)
        assert maxdiff(model.vision_encoder(x), ref_img) <= 1e-5
        assert maxdiff(model.vision_encoder(x.unsqueeze(1)), ref_img) <= 1e-5  # [B, 1, 3, H, W]
        assert maxdiff(model.text_encoder(ids[:, :32]), clip.encode_text(ids)) <= 1e-5


def test_video_forward_after_init():
    clip, model = small_clip(), small_viclip()
    init_from_open_clip(model, clip)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    video = x.unsqueeze(1).repeat(1, 8, 1, 1, 1)  # 8 copies of the same image
    with torch.no_grad():
        out = model.vision_encoder(video)
        masked = model.vision_encoder(video, mask_ratio=0.5, generator=torch.Generator().manual_seed(0))
    assert out.shape == masked.shape == (2, 32)
    assert torch.isfinite(out).all() and torch.isfinite(masked).all()
    assert not model.vision_encoder.temporal_positional_embedding.any()


def test_layer_scale_is_folded():
    clip = small_clip(
        vision_cfg={**SMALL_CLIP["vision_cfg"], "ls_init_value": 0.5},
        text_cfg={**SMALL_CLIP["text_cfg"], "ls_init_value": 0.5},
    )
    with torch.no_grad():
        for name, p in clip.named_parameters():
            if name.endswith("gamma"):
                p.uniform_(0.2, 2.0)
    model = small_viclip()
    report = init_from_open_clip(model, clip)
    assert len(report["folded"]) == 2 * 2 * 2  # (ls_1, ls_2) x 2 layers x 2 towers
    assert all(k.endswith(("ls_1.gamma", "ls_2.gamma")) for k in report["folded"])
    x, ids = torch.randn(2, 3, 32, 32), text_ids()
    with torch.no_grad():
        assert maxdiff(model.vision_encoder(x), clip.encode_image(x)) <= 1e-5
        assert maxdiff(model.text_encoder(ids[:, :32]), clip.encode_text(ids)) <= 1e-5


def test_gelu_model_is_copied_with_a_warning():
    report = init_from_open_clip(small_viclip(), small_clip(quick_gelu=False))
    assert any("QuickGELU" in w for w in report["warnings"])


# ---------------------------------------------------------------- errors


def test_shape_mismatch_lists_every_key_and_changes_nothing():
    model = small_viclip(vision_width=96, vision_heads=3, text_width=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as err:
        init_from_open_clip(model, small_clip())
    msg = str(err.value)
    for key in (
        "vision_encoder.conv1.weight",
        "vision_encoder.class_embedding",
        "vision_encoder.proj",
        "vision_encoder.transformer.resblocks.1.mlp.c_fc.weight",
    ):
        assert key in msg
    assert "text_encoder." not in msg  # the text tower matches
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_head_count_and_depth_mismatch():
    with pytest.raises(ValueError, match="heads"):
        init_from_open_clip(small_viclip(vision_heads=4), small_clip())
    with pytest.raises(ValueError, match=r"resblocks\.2"):  # open_clip has a block we lack
        init_from_open_clip(small_viclip(text_layers=2), small_clip(text_cfg={**SMALL_CLIP["text_cfg"], "layers": 3}))


def test_unsupported_text_projection_bias():
    clip = small_clip(text_cfg={**SMALL_CLIP["text_cfg"], "proj_bias": True})
    with pytest.raises(ValueError, match="text_projection"):
        init_from_open_clip(small_viclip(), clip)


def test_missing_local_file(tmp_path):
    path = tmp_path / "no_such_weights.pt"
    with pytest.raises(FileNotFoundError, match="no_such_weights.pt"):
        build_open_clip("ViT-B-16-quickgelu", str(path))
    with pytest.raises(FileNotFoundError, match="no_such_weights.pt"):
        viclip_from_clip(ViCLIPConfig(**SMALL), "ViT-B-16-quickgelu", path)


# ---------------------------------------------------------------- build_open_clip with a local file


def test_build_open_clip_local_file_and_context_cut(tmp_path):
    name = "viclip-test-tiny-quickgelu"
    (tmp_path / f"{name}.json").write_text(json.dumps({**SMALL_CLIP, "quick_gelu": True}))
    open_clip.add_model_config(tmp_path / f"{name}.json")
    saved = small_clip(seed=5)
    weights = tmp_path / "tiny.pt"
    torch.save(saved.state_dict(), weights)

    clip = build_open_clip(name, str(weights))
    assert not clip.training
    for k, v in saved.state_dict().items():
        assert torch.equal(clip.state_dict()[k], v), k

    cut = build_open_clip(name, weights, context_length=32)
    assert torch.equal(cut.positional_embedding, saved.positional_embedding[:32])
    assert cut.attn_mask.shape == (32, 32) and cut.context_length == 32
    ids = text_ids()
    with torch.no_grad():
        assert maxdiff(cut.encode_text(ids[:, :32]), saved.encode_text(ids)) <= 1e-5
    with pytest.raises(ValueError, match="context_length"):
        build_open_clip(name, None, context_length=78)

    model, report = viclip_from_clip(ViCLIPConfig(**SMALL), name, weights)
    assert set(report["not_initialised"]) == NOT_FROM_CLIP
    assert torch.equal(model.vision_encoder.proj, saved.visual.proj)


# ---------------------------------------------------------------- full size


def test_b16_full_size_vision_equivalence():
    torch.manual_seed(0)
    clip = build_open_clip("ViT-B-16-quickgelu", None)
    model = ViCLIP(ViCLIPConfig.from_dict({"name": "viclip-b16"})).eval()
    report = init_from_open_clip(model, clip)
    assert set(report["not_initialised"]) == NOT_FROM_CLIP
    assert report["ignored"] == ["logit_scale"] and report["warnings"] == []
    assert sum(p.numel() for p in model.parameters()) == 149_603_841
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert maxdiff(model.vision_encoder(x), clip.encode_image(x)) <= 1e-5


def test_l14_shapes_on_meta():
    cfg = open_clip.get_model_config("ViT-L-14-quickgelu")
    with torch.device("meta"):
        clip = open_clip.CLIP(**cfg)
        model = ViCLIP(ViCLIPConfig.from_dict({"name": "viclip-l14"}))
    report = init_from_open_clip(model, clip)
    assert set(report["not_initialised"]) == NOT_FROM_CLIP
    assert report["ignored"] == ["logit_scale"] and report["warnings"] == []
    assert len(report["copied"]) == 447 - 2
    assert sum(p.numel() for p in model.parameters()) == 427_590_145
