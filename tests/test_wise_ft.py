"""WiSE-FT interpolation and the rebuilt initial model it averages towards."""

import pytest
import torch
from tiny_model import tiny

from viclip.model.factory import initial_model
from viclip.model.viclip import ViCLIP, ViCLIPConfig
from viclip.model.wise_ft import KEEP_TRAINED, interpolate

TINY = ViCLIPConfig.from_dict(tiny())


@pytest.fixture
def pair():
    init = initial_model(TINY, seed=3).state_dict()
    torch.manual_seed(99)
    trained = ViCLIP(TINY).state_dict()
    return init, trained


def test_endpoints(pair):
    init, trained = pair
    at1 = interpolate(init, trained, 1.0)
    at0 = interpolate(init, trained, 0.0)
    for k in trained:
        assert torch.equal(at1[k], trained[k]), k
        expected = trained[k] if k in KEEP_TRAINED else init[k]
        assert torch.equal(at0[k], expected), k


def test_half_is_the_mean_except_the_temporal_table(pair):
    init, trained = pair
    trained["vision_encoder.temporal_positional_embedding"].normal_()
    mid = interpolate(init, trained, 0.5)
    for k in trained:
        if k in KEEP_TRAINED:
            assert torch.equal(mid[k], trained[k])
        else:
            assert torch.allclose(mid[k], (init[k] + trained[k]) / 2, atol=1e-7), k


def test_bad_alpha_and_mismatched_keys(pair):
    init, trained = pair
    with pytest.raises(ValueError, match="alpha"):
        interpolate(init, trained, 1.5)
    del init["temp"]
    with pytest.raises(ValueError, match="temp"):
        interpolate(init, trained, 0.5)


def test_initial_model_is_reproducible_from_the_seed():
    a, b = initial_model(TINY, 5).state_dict(), initial_model(TINY, 5).state_dict()
    c = initial_model(TINY, 6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["vision_encoder.proj"], c["vision_encoder.proj"])


def test_clip_init_needs_weights():
    cfg = ViCLIPConfig.from_dict({**TINY.to_dict(), "init": "clip", "clip_name": "ViT-B-16-quickgelu"})
    with pytest.raises(ValueError, match="clip_pretrained"):
        initial_model(cfg, 0)


def test_grad_checkpointing_switch_gives_the_same_gradients():
    x = torch.randn(2, 4, 3, 16, 16)
    grads = []
    for flag in (False, True):
        model = initial_model(ViCLIPConfig.from_dict({**TINY.to_dict(), "grad_checkpointing": flag}), 0)
        model.train()
        model.encode_video(x).sum().backward()
        grads.append(model.vision_encoder.conv1.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_bf16_autocast_keeps_the_loss_fp32():
    model = initial_model(TINY, 0)
    x, ids = torch.randn(3, 4, 3, 16, 16), torch.randint(1, 62, (3, 8))
    ids[:, -1] = 63
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v, t = model.encode_video(x), model.encode_text(ids)
    loss = model.loss(v, t)
    assert v.dtype == torch.bfloat16 and loss.dtype == torch.float32 and torch.isfinite(loss)
