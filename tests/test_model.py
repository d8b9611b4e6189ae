"""Tests for viclip.model: presets, official parameter names, masking, towers, loss and decay groups."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from tiny_model import tiny

from viclip.model.config import kept_count
from viclip.model.masking import gather_tokens, random_keep_indices
from viclip.model.tokenizer import WordHashTokenizer
from viclip.model.viclip import PRESETS, ViCLIP, ViCLIPConfig, no_decay
from viclip.train.optim import adamw

torch.set_num_threads(1)

TINY = tiny(vision_layers=2, text_layers=2)


def tiny(**over) -> ViCLIP:
    torch.manual_seed(0)
    return ViCLIP(ViCLIPConfig.from_dict({**TINY, **over})).eval()


def video(b=2, t=4, s=16, seed=1) -> torch.Tensor:
    return torch.randn(b, t, 3, s, s, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- presets and names


def test_b16_state_dict_size_on_cpu():
    cfg = ViCLIPConfig.from_dict({"name": "viclip-b16"})
    sd = ViCLIP(cfg).state_dict()
    assert sum(v.numel() for v in sd.values()) == 149_603_841
    assert tuple(sd["temp"].shape) == ()
    assert tuple(sd["vision_encoder.temporal_positional_embedding"].shape) == (1, 8, 768)
    assert tuple(sd["vision_encoder.conv1.weight"].shape) == (768, 3, 1, 16, 16)
    assert tuple(sd["text_encoder.positional_embedding"].shape) == (32, 512)
    assert tuple(sd["vision_encoder.transformer.resblocks.0.attn.in_proj_weight"].shape) == (3 * 768, 768)
    # temporal positions start at zero
    assert not sd["vision_encoder.temporal_positional_embedding"].any()
    assert sd["temp"].item() == pytest.approx(0.01)


def test_l14_state_dict_size():
    cfg = ViCLIPConfig.from_dict({"name": "viclip-l14"})
    with torch.device("meta"):
        sd = ViCLIP(cfg).state_dict()
    assert sum(v.numel() for v in sd.values()) == 427_590_145
    assert tuple(sd["vision_encoder.conv1.weight"].shape) == (1024, 3, 1, 14, 14)
    assert tuple(sd["vision_encoder.temporal_positional_embedding"].shape) == (1, 8, 1024)
    assert tuple(sd["vision_encoder.positional_embedding"].shape) == (16 * 16 + 1, 1024)
    assert tuple(sd["text_encoder.positional_embedding"].shape) == (32, 768)
    assert "vision_encoder.transformer.resblocks.23.ln_2.weight" in sd
    assert "vision_encoder.transformer.resblocks.24.ln_2.weight" not in sd


def test_official_key_names():
    keys = set(tiny().state_dict())
    expected = {
        "temp",
        "vision_encoder.class_embedding",
        "vision_encoder.positional_embedding",
        "vision_encoder.temporal_positional_embedding",
        "vision_encoder.conv1.weight",
        "vision_encoder.ln_pre.weight",
        "vision_encoder.ln_post.bias",
        "vision_encoder.proj",
        "vision_encoder.transformer.resblocks.0.attn.in_proj_weight",
        "vision_encoder.transformer.resblocks.0.attn.out_proj.weight",
        "vision_encoder.transformer.resblocks.0.ln_1.weight",
        "vision_encoder.transformer.resblocks.0.mlp.c_fc.weight",
        "vision_encoder.transformer.resblocks.1.mlp.c_proj.bias",
        "vision_encoder.transformer.resblocks.1.ln_2.weight",
        "text_encoder.token_embedding.weight",
        "text_encoder.positional_embedding",
        "text_encoder.ln_final.weight",
        "text_encoder.text_projection",
        "text_encoder.transformer.resblocks.1.attn.in_proj_bias",
    }
    assert expected <= keys
    assert "vision_encoder.conv1.bias" not in keys
    assert not any("attn_mask" in k for k in keys)  # not a buffer: official checkpoints lack it


def test_config_from_dict():
    cfg = ViCLIPConfig.from_dict({"name": "viclip-l14", "image_size": 28})
    assert cfg.patch_size == 14 and cfg.vision_width == 1024 and cfg.image_size == 28
    assert ViCLIPConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="widht"):
        ViCLIPConfig.from_dict({"name": "tiny", "widht": 3})
    assert set(PRESETS) == {"viclip-b16", "viclip-l14"}


def test_image_size_must_be_a_multiple_of_patch():
    with pytest.raises(ValueError):
        tiny(image_size=20)


# ---------------------------------------------------------------- masking


@pytest.mark.parametrize(
    "n,ratio,kept", [(1568, 0.9, 157), (2048, 0.9, 205), (16, 0.5, 8), (16, 0.0, 16), (10, 0.25, 8), (7, 0.99, 1)]
)
def test_kept_count(n, ratio, kept):
    assert kept_count(n, ratio) == kept == n - int(ratio * n)


def test_b16_and_l14_token_counts():
    for name, n in (("viclip-b16", 1568), ("viclip-l14", 2048)):
        cfg = ViCLIPConfig.from_dict({"name": name})
        assert (cfg.image_size // cfg.patch_size) ** 2 * cfg.num_frames == n


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.9])
def test_random_keep_indices(ratio):
    g = torch.Generator().manual_seed(3)
    keep = random_keep_indices(5, 64, ratio, g)
    assert keep.shape == (5, kept_count(64, ratio))
    assert (keep[:, 1:] > keep[:, :-1]).all()  # ascending, no repeats
    assert keep.min() >= 0 and keep.max() < 64
    again = random_keep_indices(5, 64, ratio, torch.Generator().manual_seed(3))
    assert torch.equal(keep, again)
    other = random_keep_indices(5, 64, ratio, torch.Generator().manual_seed(4))
    assert not torch.equal(keep, other)
    assert len({tuple(r) for r in keep.tolist()}) > 1  # each sample draws its own tokens


def test_gather_tokens():
    x = torch.arange(2 * 5 * 3).view(2, 5, 3)
    keep = torch.tensor([[0, 3], [1, 4]])
    out = gather_tokens(x, keep)
    assert torch.equal(out[0], x[0, [0, 3]]) and torch.equal(out[1], x[1, [1, 4]])


def test_masked_forward_keeps_the_right_number_of_tokens():
    m = tiny()
    ve = m.vision_encoder
    v = video()
    cls, patches = ve.tokens(v)
    n = patches.shape[1]
    assert n == 4 * 4 and cls.shape == (2, 1, 32)
    seen = {}
    handle = ve.ln_pre.register_forward_hook(lambda mod, inp, out: seen.__setitem__("shape", tuple(out.shape)))
    try:
        with torch.no_grad():
            out = ve(v, mask_ratio=0.6, generator=torch.Generator().manual_seed(0))
    finally:
        handle.remove()
    assert seen["shape"] == (2, 1 + kept_count(n, 0.6), 32) == (2, 1 + n - int(0.6 * n), 32)
    assert out.shape == (2, 16)


def test_masked_forward_is_deterministic_under_a_seeded_generator():
    m = tiny()
    v = video()
    with torch.no_grad():
        a = m.encode_video(v, mask_ratio=0.5, generator=torch.Generator().manual_seed(7))
        b = m.encode_video(v, mask_ratio=0.5, generator=torch.Generator().manual_seed(7))
        c = m.encode_video(v, mask_ratio=0.5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_ratio_zero_is_bit_identical_to_no_masking():
    m = tiny()
    v = video()
    with torch.no_grad():
        plain = m.encode_video(v)
        zero = m.encode_video(v, mask_ratio=0.0, generator=torch.Generator().manual_seed(0))
        masked = m.encode_video(v, mask_ratio=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(plain, zero)
    assert not torch.allclose(plain, masked)


def test_keeping_all_tokens_equals_the_unmasked_output():
    m = tiny()
    v = video()
    keep = torch.arange(16).expand(2, -1)
    with torch.no_grad():
        assert torch.allclose(m.encode_video(v, keep=keep), m.encode_video(v), atol=1e-6)
        # an explicit keep wins over a ratio
        assert torch.allclose(m.encode_video(v, mask_ratio=0.9, keep=keep), m.encode_video(v), atol=1e-6)


def test_explicit_keep_matches_the_generator_draw():
    m = tiny()
    v = video()
    keep = random_keep_indices(2, 16, 0.5, torch.Generator().manual_seed(5))
    with torch.no_grad():
        a = m.encode_video(v, keep=keep)
        b = m.encode_video(v, mask_ratio=0.5, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(a, b, atol=1e-6)


def test_token_order_is_position_major():
    """Patches come in (n t) order: a spatial position's frames are adjacent."""
    m = tiny()
    ve = m.vision_encoder
    with torch.no_grad():
        ve.temporal_positional_embedding.copy_(torch.arange(4.0).view(1, 4, 1).expand(1, 4, 32))
        ve.positional_embedding.zero_()
        ve.conv1.weight.zero_()
        _, patches = ve.tokens(video())
    assert torch.equal(patches[0, :8, 0], torch.tensor([0.0, 1, 2, 3, 0, 1, 2, 3]))


# ---------------------------------------------------------------- images and temporal embedding


def test_image_input_uses_the_mean_temporal_embedding():
    m = tiny()
    ve = m.vision_encoder
    img = video(b=3, t=1)[:, 0]
    with torch.no_grad():
        ve.temporal_positional_embedding.normal_(generator=torch.Generator().manual_seed(2))
        _, with_t = ve.tokens(img)
        saved = ve.temporal_positional_embedding.clone()
        ve.temporal_positional_embedding.zero_()
        _, without_t = ve.tokens(img)
        ve.temporal_positional_embedding.copy_(saved)
        out_img = m.encode_video(img)
        out_one_frame = m.encode_video(img.unsqueeze(1))
    assert with_t.shape == (3, 4, 32)
    diff = with_t - without_t
    assert torch.allclose(diff, saved.mean(1).expand_as(diff), atol=1e-6)
    assert not torch.allclose(diff, saved[:, 0].expand_as(diff))
    assert out_img.shape == (3, 16)
    assert torch.allclose(out_img, out_one_frame, atol=1e-6)


def test_video_uses_one_temporal_embedding_per_frame():
    m = tiny()
    ve = m.vision_encoder
    with torch.no_grad():
        ve.temporal_positional_embedding.normal_(generator=torch.Generator().manual_seed(2))
        saved = ve.temporal_positional_embedding.clone()
        _, with_t = ve.tokens(video())
        ve.temporal_positional_embedding.zero_()
        _, without_t = ve.tokens(video())
    diff = (with_t - without_t).view(2, 4, 4, 32)  # [B, N, T, W]
    assert torch.allclose(diff, saved.view(1, 1, 4, 32).expand_as(diff), atol=1e-6)


# ---------------------------------------------------------------- temperature and loss


def test_temperature_is_clamped_at_temp_min():
    m = tiny(temp_init=0.07, temp_min=0.02)
    assert m.temperature().item() == pytest.approx(0.07)
    with torch.no_grad():
        m.temp.fill_(0.001)
    assert m.temperature().item() == pytest.approx(0.02)
    assert m.temp.item() == pytest.approx(0.02)  # clamped in place


def _hand_infonce(v, t, temp):
    logits = (v @ t.T) / temp
    n = len(v)
    row = [-(logits[i, i] - torch.logsumexp(logits[i], 0)) for i in range(n)]
    col = [-(logits[i, i] - torch.logsumexp(logits[:, i], 0)) for i in range(n)]
    return (sum(row) / n + sum(col) / n) / 2


def test_loss_is_symmetric_infonce():
    m = tiny(temp_init=0.05)
    g = torch.Generator().manual_seed(0)
    v = F.normalize(torch.randn(5, 16, generator=g), dim=-1)
    t = F.normalize(torch.randn(5, 16, generator=g), dim=-1)
    loss = m.loss(v, t)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(_hand_infonce(v, t, 0.05).item(), rel=1e-5)
    assert loss.item() == pytest.approx(m.loss(t, v).item(), rel=1e-6)
    # a one-directional loss differs on this (asymmetric) batch
    one_way = F.cross_entropy(v @ t.T / 0.05, torch.arange(5))
    assert abs(one_way.item() - loss.item()) > 1e-3


def test_loss_limits():
    m = tiny(temp_init=0.01, temp_min=0.01)
    e = torch.eye(4, 16)
    assert m.loss(e, e).item() < 1e-6  # perfect alignment
    same = F.normalize(torch.ones(4, 16), dim=-1)
    assert m.loss(same, same).item() == pytest.approx(math.log(4), rel=1e-5)  # chance
    assert torch.isfinite(m.loss(e.bfloat16(), (-e).bfloat16()))


def test_loss_gradient_reaches_both_towers_and_temp():
    m = tiny().train()
    ids = WordHashTokenizer(64, 8)(["a red circle", "a blue square"])
    loss = m.loss(m.encode_video(video()), m.encode_text(ids))
    loss.backward()
    assert m.temp.grad is not None and m.temp.grad.abs() > 0
    assert m.vision_encoder.conv1.weight.grad.abs().sum() > 0
    assert m.text_encoder.token_embedding.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- weight decay and freezing


def test_no_decay_groups():
    m = tiny()
    named = dict(m.named_parameters())
    plain = {n for n, p in named.items() if no_decay(n, p)}
    for n, p in named.items():
        if p.ndim < 2 or n.endswith(".bias"):
            assert n in plain, n
    for n in (
        "temp",
        "vision_encoder.class_embedding",
        "vision_encoder.positional_embedding",
        "vision_encoder.temporal_positional_embedding",
        "text_encoder.positional_embedding",
        "vision_encoder.ln_pre.weight",
        "text_encoder.ln_final.weight",
    ):
        assert n in plain, n
    for n in (
        "vision_encoder.conv1.weight",
        "vision_encoder.transformer.resblocks.0.attn.in_proj_weight",
        "vision_encoder.transformer.resblocks.0.mlp.c_fc.weight",
        "text_encoder.transformer.resblocks.1.mlp.c_proj.weight",
        "text_encoder.transformer.resblocks.0.attn.out_proj.weight",
        "text_encoder.token_embedding.weight",
    ):
        assert n not in plain, n


def test_adamw_groups_follow_no_decay():
    m = tiny()
    opt = adamw(m, 1e-3, 0.05)
    decay, plain = opt.param_groups
    assert decay["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    ids = {id(p) for p in plain["params"]}
    assert id(m.temp) in ids and id(m.vision_encoder.conv1.weight) not in ids
    assert len(decay["params"]) + len(plain["params"]) == len(list(m.parameters()))


def test_freeze_text_freezes_only_the_text_tower():
    m = tiny(freeze_text=True)
    for n, p in m.named_parameters():
        assert p.requires_grad == (not n.startswith("text_encoder.")), n
    opt = adamw(m, 1e-3, 0.0)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not any(id(p) in in_opt for p in m.text_encoder.parameters())
    assert all(p.requires_grad for p in tiny(freeze_text=False).parameters())


# ---------------------------------------------------------------- text tower


def test_text_tower_pools_at_eot():
    m = tiny()
    tok = WordHashTokenizer(64, 8)
    ids = tok(["red circle moves", "blue square"])
    eot = ids.argmax(-1)
    assert (ids[torch.arange(2), eot] == 63).all()
    changed = ids.clone()
    for i in range(2):
        changed[i, eot[i] + 1 :] = torch.randint(1, 60, (8 - eot[i] - 1,), generator=torch.Generator().manual_seed(i))
    assert not torch.equal(changed, ids)
    with torch.no_grad():
        a = m.encode_text(ids)
        b = m.encode_text(changed)
        # but a token before EOT does matter
        before = ids.clone()
        before[:, 1] = 5
        c = m.encode_text(before)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, c, atol=1e-4)
    assert torch.allclose(a.norm(dim=-1), torch.ones(2))


def test_text_tower_is_causal():
    m = tiny()
    seen = {}
    m.text_encoder.ln_final.register_forward_hook(lambda mod, inp, out: seen.__setitem__("x", out.detach().clone()))
    ids = torch.tensor([[62, 5, 6, 7, 63, 0, 0, 0]])
    with torch.no_grad():
        m.encode_text(ids)
        first = seen["x"]
        m.encode_text(torch.tensor([[62, 5, 9, 9, 63, 0, 0, 0]]))
        second = seen["x"]
    assert torch.allclose(first[0, :2], second[0, :2], atol=1e-6)
    assert not torch.allclose(first[0, 2], second[0, 2], atol=1e-4)
