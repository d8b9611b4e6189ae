"""Official checkpoint layout (viclip_spec.md §1.6): key table, reading, loading with adaptations, export."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from viclip.model.checkpoints import (
    TEMPORAL_KEY,
    TEXT_POS_KEY,
    export_official,
    load_official,
    normalise_keys,
    read_state_dict,
    resize_temporal,
    save_official,
)
from viclip.model.viclip import ViCLIP, ViCLIPConfig

torch.set_num_threads(1)

TINY = {
    "name": "tiny",
    "image_size": 16,
    "patch_size": 8,
    "num_frames": 4,
    "vision_width": 32,
    "vision_layers": 2,
    "vision_heads": 2,
    "embed_dim": 16,
    "drop_path": 0.0,
    "tokenizer": "word_hash",
    "vocab_size": 64,
    "context_length": 8,
    "text_width": 32,
    "text_layers": 2,
    "text_heads": 2,
    "temp_init": 0.07,
    "temp_min": 0.01,
    "freeze_text": False,
}


def tiny(seed: int = 0, **over) -> ViCLIP:
    torch.manual_seed(seed)
    return ViCLIP(ViCLIPConfig.from_dict({**TINY, **over})).eval()


def spec_table(*, W, layers, p, grid, T, D, Wt, Lt, ctx, vocab, Dt) -> dict[str, tuple]:
    """The key -> shape table of §1.6, written out from the spec's patterns (independent of our modules)."""
    t: dict[str, tuple] = {
        "temp": (),
        "vision_encoder.class_embedding": (W,),
        "vision_encoder.positional_embedding": (grid * grid + 1, W),
        "vision_encoder.temporal_positional_embedding": (1, T, W),
        "vision_encoder.conv1.weight": (W, 3, 1, p, p),
        "vision_encoder.ln_pre.weight": (W,),
        "vision_encoder.ln_pre.bias": (W,),
        "vision_encoder.ln_post.weight": (W,),
        "vision_encoder.ln_post.bias": (W,),
        "vision_encoder.proj": (W, D),
        "text_encoder.token_embedding.weight": (vocab, Wt),
        "text_encoder.positional_embedding": (ctx, Wt),
        "text_encoder.ln_final.weight": (Wt,),
        "text_encoder.ln_final.bias": (Wt,),
        "text_encoder.text_projection": (Wt, Dt),
    }
    for tower, width, n in (("vision_encoder", W, layers), ("text_encoder", Wt, Lt)):
        for i in range(n):
            b = f"{tower}.transformer.resblocks.{i}"
            t.update(
                {
                    f"{b}.attn.in_proj_weight": (3 * width, width),
                    f"{b}.attn.in_proj_bias": (3 * width,),
                    f"{b}.attn.out_proj.weight": (width, width),
                    f"{b}.attn.out_proj.bias": (width,),
                    f"{b}.ln_1.weight": (width,),
                    f"{b}.ln_1.bias": (width,),
                    f"{b}.ln_2.weight": (width,),
                    f"{b}.ln_2.bias": (width,),
                    f"{b}.mlp.c_fc.weight": (4 * width, width),
                    f"{b}.mlp.c_fc.bias": (4 * width,),
                    f"{b}.mlp.c_proj.weight": (width, 4 * width),
                    f"{b}.mlp.c_proj.bias": (width,),
                }
            )
    return t


B16 = spec_table(W=768, layers=12, p=16, grid=14, T=8, D=512, Wt=512, Lt=12, ctx=32, vocab=49408, Dt=512)
L14 = spec_table(W=1024, layers=24, p=14, grid=16, T=8, D=768, Wt=768, Lt=12, ctx=32, vocab=49408, Dt=768)
TINY_TABLE = spec_table(W=32, layers=2, p=8, grid=2, T=4, D=16, Wt=32, Lt=2, ctx=8, vocab=64, Dt=16)


def random_official(table: dict[str, tuple], seed: int = 0, **resize) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = {**table, **resize}
    return {k: torch.randn(shapes[k], generator=g) for k in sorted(shapes)}


# ---------------------------------------------------------------- 1. key table


@pytest.mark.parametrize("name,table,count", [("viclip-b16", B16, 303), ("viclip-l14", L14, 447)])
def test_state_dict_matches_spec_table(name, table, count):
    with torch.device("meta"):
        model = ViCLIP(ViCLIPConfig.from_dict({"name": name}))
    sd = model.state_dict()
    assert len(table) == count and len(sd) == count
    assert set(sd) == set(table)
    assert {k: tuple(v.shape) for k, v in sd.items()} == table
    assert not any("attn_mask" in k for k in sd)
    spot = {
        "viclip-b16": {
            "vision_encoder.positional_embedding": (197, 768),
            "vision_encoder.proj": (768, 512),
            "text_encoder.token_embedding.weight": (49408, 512),
            "vision_encoder.conv1.weight": (768, 3, 1, 16, 16),
        },
        "viclip-l14": {
            "vision_encoder.positional_embedding": (257, 1024),
            "vision_encoder.proj": (1024, 768),
            "text_encoder.token_embedding.weight": (49408, 768),
            "vision_encoder.conv1.weight": (1024, 3, 1, 14, 14),
        },
    }[name]
    for k, shape in spot.items():
        assert tuple(sd[k].shape) == shape


# ---------------------------------------------------------------- 2. hand-built official dict


def test_hand_built_official_checkpoint_loads(tmp_path):
    sd = random_official(TINY_TABLE)
    path = tmp_path / "official.pth"
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3, "global_step": 10}, path)
    model = tiny(seed=5)
    report = load_official(model, path)
    assert report["adapted"] == {} and report["tensors"] == len(TINY_TABLE)
    got = model.state_dict()
    assert set(got) == set(sd)
    for k, v in sd.items():
        assert torch.equal(got[k], v), k


def test_state_dict_wrapper_and_plain_dict_input():
    sd = random_official(TINY_TABLE, seed=1)
    for state in ({"state_dict": sd}, sd, {"model": sd}):
        model = tiny(seed=2)
        load_official(model, state)
        assert torch.equal(model.state_dict()["vision_encoder.proj"], sd["vision_encoder.proj"])


# ---------------------------------------------------------------- 3. round trip


def test_round_trip_exact(tmp_path):
    src = tiny(seed=3)
    with torch.no_grad():
        src.vision_encoder.temporal_positional_embedding.normal_()  # zero at init: make it informative
    path = tmp_path / "out" / "viclip.pth"
    save_official(src, path)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == {"model"}
    assert set(raw["model"]) == set(TINY_TABLE)
    dst = tiny(seed=4)
    load_official(dst, read_state_dict(path))
    a, b = src.state_dict(), dst.state_dict()
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not list(path.parent.glob(".*"))  # no temp file left behind


def test_export_has_no_attn_mask_and_is_detached():
    model = tiny()
    sd = export_official(model)["model"]
    assert not any("attn_mask" in k for k in sd)
    assert all(not v.requires_grad for v in sd.values())
    sd["temp"].fill_(123.0)  # a copy: the model is unchanged
    assert model.temp.item() != 123.0


# ---------------------------------------------------------------- 4. adaptations


def test_temporal_upsample_4_to_8_linear(tmp_path):
    g = torch.Generator().manual_seed(9)
    sd = random_official(TINY_TABLE)
    # linear in t, so the expected interpolation is exact: 7 + t * slope
    sd[TEMPORAL_KEY] = 7.0 + torch.arange(4.0).view(1, 4, 1) * torch.randn(1, 1, 32, generator=g)
    model = tiny(num_frames=8)
    report = load_official(model, sd)
    assert report["adapted"][TEMPORAL_KEY]["from"] == [1, 4, 32]
    assert report["adapted"][TEMPORAL_KEY]["to"] == [1, 8, 32]
    old = sd[TEMPORAL_KEY]
    new = model.vision_encoder.temporal_positional_embedding.detach()
    assert new.shape == (1, 8, 32)
    assert torch.equal(new[:, 0], old[:, 0]) and torch.equal(new[:, -1], old[:, -1])  # endpoints kept
    # align_corners=False: frame i samples source position (i + 0.5) * 4 / 8 - 0.5, clamped to [0, 3]
    pos = ((torch.arange(8.0) + 0.5) * 0.5 - 0.5).clamp(0, 3)
    slope = old[:, 1] - old[:, 0]
    want = old[:, 0].unsqueeze(1) + pos.view(1, 8, 1) * slope.unsqueeze(1)
    torch.testing.assert_close(new, want)
    diffs = new[0, 2:7] - new[0, 1:6]  # interior steps are equal: linear in between
    torch.testing.assert_close(diffs, diffs[:1].expand_as(diffs))
    assert torch.equal(new, F.interpolate(old.permute(0, 2, 1), 8, mode="linear").permute(0, 2, 1))


def test_temporal_downsample_8_to_4():
    sd = random_official(TINY_TABLE, **{TEMPORAL_KEY: (1, 8, 32)})
    model = tiny(num_frames=4)
    report = load_official(model, sd)  # official: keep the first frames
    assert report["adapted"][TEMPORAL_KEY]["rule"] == "truncate"
    assert torch.equal(model.vision_encoder.temporal_positional_embedding, sd[TEMPORAL_KEY][:, :4])
    model = tiny(num_frames=4)
    load_official(model, sd, temporal="interpolate")  # optional: linear resampling both ways
    old = sd[TEMPORAL_KEY]
    torch.testing.assert_close(
        model.vision_encoder.temporal_positional_embedding.detach(), (old[:, 0::2] + old[:, 1::2]) / 2
    )  # half-pixel centres: pair means
    assert resize_temporal(old, 8) is old


def test_text_positions_77_cut_to_context():
    sd = random_official(TINY_TABLE, **{TEXT_POS_KEY: (77, 32)})
    model = tiny()
    report = load_official(model, sd)
    assert report["adapted"][TEXT_POS_KEY] == {"from": [77, 32], "to": [8, 32], "rule": "keep first rows"}
    assert torch.equal(model.text_encoder.positional_embedding, sd[TEXT_POS_KEY][:8])
    model32 = tiny(context_length=32)
    load_official(model32, sd)
    assert torch.equal(model32.text_encoder.positional_embedding, sd[TEXT_POS_KEY][:32])


def test_text_positions_too_short_is_an_error():
    sd = random_official(TINY_TABLE, **{TEXT_POS_KEY: (4, 32)})
    with pytest.raises(ValueError, match=r"shape mismatch: text_encoder.positional_embedding checkpoint \[4, 32\]"):
        load_official(tiny(), sd)


# ---------------------------------------------------------------- 5. errors


def test_all_problems_in_one_error():
    sd = random_official(TINY_TABLE)
    sd["vision_encoder.extra_thing"] = torch.zeros(2, 3)
    del sd["text_encoder.ln_final.bias"]
    sd["vision_encoder.proj"] = torch.zeros(32, 17)
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as info:
        load_official(model, sd)
    msg = str(info.value)
    assert "unexpected: vision_encoder.extra_thing [2, 3]" in msg
    assert "missing: text_encoder.ln_final.bias [32]" in msg
    assert "shape mismatch: vision_encoder.proj checkpoint [32, 17] vs model [32, 16]" in msg
    assert "3 problem(s)" in msg
    for k, v in model.state_dict().items():  # nothing was loaded
        assert torch.equal(v, before[k]), k


def test_random_bytes_named(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ValueError, match="garbage.pth"):
        read_state_dict(path)
    with pytest.raises(ValueError, match="garbage.pth"):
        load_official(tiny(), path)
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        read_state_dict(tmp_path / "absent.pth")


EXECUTED: list[int] = []


def _side_effect():
    EXECUTED.append(1)
    return {}


class NeedsFullPickle:
    """Unpickling this would run `_side_effect`; weights_only=True must refuse before that."""

    def __reduce__(self):
        return (_side_effect, ())


def test_full_pickle_refused(tmp_path):
    path = tmp_path / "unsafe.pth"
    torch.save({"model": random_official(TINY_TABLE), "config": NeedsFullPickle()}, path)
    with pytest.raises(ValueError, match=r"unsafe.pth.*refused"):
        read_state_dict(path)
    assert EXECUTED == []


def test_not_a_dict_of_tensors_named(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(ValueError, match="tensor.pth.*dict of tensors"):
        read_state_dict(path)
    path = tmp_path / "mixed.pth"
    torch.save({"model": {"temp": torch.zeros(()), "note": "hello"}}, path)
    with pytest.raises(ValueError, match=r"mixed.pth.*\['note'\]"):
        read_state_dict(path)


def test_prefix_rules():
    sd = {"temp": torch.zeros(()), "vision_encoder.proj": torch.zeros(1)}
    assert set(normalise_keys({f"model.{k}": v for k, v in sd.items()})) == set(sd)
    assert set(normalise_keys({f"module.model.{k}": v for k, v in sd.items()})) == set(sd)
    # not every key has the prefix, or stripping it does not give our layout: left alone
    mixed = {"model.temp": torch.zeros(()), "vision_encoder.proj": torch.zeros(1)}
    assert set(normalise_keys(mixed)) == set(mixed)
    other = {"model.visual.proj": torch.zeros(1), "model.logit_scale": torch.zeros(())}
    assert set(normalise_keys(other)) == set(other)
    with pytest.raises(ValueError, match="twice"):
        normalise_keys({"module.temp": torch.zeros(()), "temp": torch.zeros(())})


# ---------------------------------------------------------------- 6. safetensors


@pytest.mark.skipif(importlib.util.find_spec("safetensors") is None, reason="safetensors is not installed")
def test_safetensors_round_trip(tmp_path):
    from safetensors.torch import save_file

    src = tiny(seed=6)
    path = tmp_path / "model.safetensors"
    save_official(src, path)
    dst = tiny(seed=7)
    load_official(dst, path)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    # an HF-style file whose keys carry a wrapper prefix
    hf = tmp_path / "hf" / "model.safetensors"
    hf.parent.mkdir()
    save_file({f"model.{k}": v for k, v in export_official(src)["model"].items()}, str(hf))
    assert set(read_state_dict(hf)) == set(TINY_TABLE)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="bad.safetensors"):
        read_state_dict(bad)
