"""Fused masked patch embedding (viclip.kernels.patch_embed) vs its torch reference and the model's own path.

Runs under the Triton CPU interpreter: TRITON_INTERPRET must be set before triton is imported.
"""

import os

os.environ["TRITON_INTERPRET"] = "1"

import pytest
import torch

pytest.importorskip("triton", reason="triton cannot be imported: the patch-embedding kernel is untestable here")

from viclip.kernels.patch_embed import masked_patch_embed, masked_patch_embed_reference
from viclip.model.masking import gather_tokens
from viclip.model.vision import VisionTransformer

torch.set_num_threads(1)


def make_inputs(b, t, h, p, width, k, *, w_img=None, t_table=None, seed=0):
    """Video, kept indices (sorted, distinct per sample; None for k=None) and the three parameters, all fp32."""
    w_img = w_img or h
    gen = torch.Generator().manual_seed(seed)
    n = (h // p) * (w_img // p)
    video = torch.randn(b, t, 3, h, w_img, generator=gen)
    keep = None
    if k is not None:
        keep = torch.stack([torch.randperm(n * t, generator=gen)[:k].sort().values for _ in range(b)])
    weight = torch.randn(width, 3, 1, p, p, generator=gen) * (3 * p * p) ** -0.5
    pos = torch.randn(n, width, generator=gen) * 0.5
    temporal = torch.randn(1, t_table or t, width, generator=gen) * 0.5
    return video, keep, weight, pos, temporal


def run(fn, video, keep, weight, pos, temporal, dout):
    """Forward and the gradients of (out * dout).sum() for weight, pos and temporal."""
    params = [x.detach().clone().requires_grad_(True) for x in (weight, pos, temporal)]
    out = fn(video, keep, *params)
    grads = torch.autograd.grad((out.float() * dout.float()).sum(), params)
    return (out.detach(), *grads)


CASES = {
    # name: (B, T, H, p, width, K, extra)
    "masked-odd-K": (2, 3, 24, 8, 48, 5, {}),
    "all-tokens": (2, 3, 24, 8, 48, None, {}),
    "one-frame-mean-table": (2, 1, 24, 8, 48, 5, {"t_table": 4}),
    "p14-two-width-blocks": (1, 2, 28, 14, 80, 3, {}),
    "non-square-frames": (3, 2, 16, 8, 40, 7, {"w_img": 24}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_forward_and_grads_match_reference_fp32(case):
    b, t, h, p, width, k, extra = CASES[case]
    video, keep, weight, pos, temporal = make_inputs(b, t, h, p, width, k, **extra)
    n_out = k if k is not None else (h // p) * ((extra.get("w_img") or h) // p) * t
    dout = torch.randn(b, n_out, width, generator=torch.Generator().manual_seed(1))
    got = run(masked_patch_embed, video, keep, weight, pos, temporal, dout)
    ref = run(masked_patch_embed_reference, video, keep, weight, pos, temporal, dout)
    for name, g, r in zip(("out", "dweight", "dpos", "dtemporal"), got, ref):
        assert g.shape == r.shape and g.dtype == r.dtype, name
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5, msg=lambda m, name=name: f"{case} {name}: {m}")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_error_at_most_twice_torch(dtype):
    """|kernel - fp32 ref| <= 2 |torch same-dtype - fp32 ref| + atol, for the output and every gradient."""
    video, keep, weight, pos, temporal = make_inputs(2, 3, 24, 8, 48, 5, seed=3)
    video = video.to(dtype)  # the data are 16-bit; both references see exactly these values
    dout = torch.randn(2, 5, 48, generator=torch.Generator().manual_seed(4)).to(dtype)
    exact = run(masked_patch_embed_reference, video.float(), keep, weight, pos, temporal, dout.float())
    low = run(masked_patch_embed_reference, video, keep, weight, pos, temporal, dout)
    got = run(masked_patch_embed, video, keep, weight, pos, temporal, dout)
    assert got[0].dtype == dtype
    atol = 1e-3 if dtype == torch.bfloat16 else 2e-4  # slack for ties: both sides round to `dtype` at the end
    for name, g, lo, ex in zip(("out", "dweight", "dpos", "dtemporal"), got, low, exact):
        err = (g.float() - ex.float()).abs().max().item()
        err_torch = (lo.float() - ex.float()).abs().max().item()
        assert err <= 2 * err_torch + atol, f"{dtype} {name}: kernel error {err:.3g} vs torch {err_torch:.3g}"


@pytest.mark.parametrize("frames", [3, 1])
def test_reference_and_kernel_match_the_model_path(frames):
    torch.manual_seed(0)
    model = VisionTransformer(image_size=24, patch_size=8, width=32, layers=1, heads=2, output_dim=8, num_frames=4)
    with torch.no_grad():  # zero at init: make the temporal table matter
        model.temporal_positional_embedding.normal_()
    gen = torch.Generator().manual_seed(5)
    video = torch.randn(2, frames, 3, 24, 24, generator=gen)
    n_tokens = 9 * frames
    keep = torch.stack([torch.randperm(n_tokens, generator=gen)[:4].sort().values for _ in range(2)])
    args = (model.conv1.weight, model.positional_embedding[1:], model.temporal_positional_embedding)
    with torch.no_grad():
        tokens = model.tokens(video)[1]
        for k in (keep, None):
            want = tokens if k is None else gather_tokens(tokens, k)
            torch.testing.assert_close(masked_patch_embed_reference(video, k, *args), want, atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(masked_patch_embed(video, k, *args), want, atol=1e-5, rtol=1e-5)
        if frames == 1:  # an image [B, 3, H, W] is one frame
            torch.testing.assert_close(
                masked_patch_embed(video[:, 0], keep, *args), gather_tokens(tokens, keep), atol=1e-5, rtol=1e-5
            )


def test_weight_grad_split_over_token_chunks(monkeypatch):
    """The CUDA path sums dW over chunks of tokens (one fp32 partial each); force chunks of 16 here."""
    import viclip.kernels.patch_embed as pe

    monkeypatch.setattr(pe, "_DW_TOKENS_PER_SPLIT_OFF_CUDA", 16)  # B*K = 3*13 = 39 tokens -> 3 chunks, the last partial
    video, keep, weight, pos, temporal = make_inputs(3, 2, 24, 8, 24, 13, seed=9)
    dout = torch.randn(3, 13, 24, generator=torch.Generator().manual_seed(10))
    got = run(masked_patch_embed, video, keep, weight, pos, temporal, dout)
    ref = run(masked_patch_embed_reference, video, keep, weight, pos, temporal, dout)
    torch.testing.assert_close(got[1], ref[1], atol=1e-5, rtol=1e-5)


def test_model_parameters_get_the_models_gradients():
    """Gradients through the model's own tables (slice [1:], temporal slice for T=2 of 4)."""
    torch.manual_seed(0)
    model = VisionTransformer(image_size=16, patch_size=8, width=32, layers=1, heads=2, output_dim=8, num_frames=4)
    with torch.no_grad():
        model.temporal_positional_embedding.normal_()
    video = torch.randn(2, 2, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    keep = torch.tensor([[0, 3, 6], [1, 2, 7]])
    params = (model.conv1.weight, model.positional_embedding, model.temporal_positional_embedding)
    dout = torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(7))

    def grads(fn):
        out = fn(video, keep, params[0], params[1][1:], params[2])
        return torch.autograd.grad((out * dout).sum(), params)

    for g, r in zip(grads(masked_patch_embed), grads(masked_patch_embed_reference)):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)


def test_autocast_casts_the_video_like_the_conv():
    video, keep, weight, pos, temporal = make_inputs(1, 2, 16, 8, 32, 3, seed=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = masked_patch_embed(video, keep, weight, pos, temporal)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(
        got.float(), masked_patch_embed_reference(video, keep, weight, pos, temporal), atol=5e-2, rtol=2e-2
    )  # bf16 inputs to the dot, one bf16 rounding


def test_preconditions_fail_with_clear_messages():
    video, keep, weight, pos, temporal = make_inputs(2, 3, 24, 8, 16, 5)
    with pytest.raises(AssertionError, match="not divisible by the patch size"):
        masked_patch_embed(video[..., :20].contiguous(), keep, weight, pos, temporal)
    with pytest.raises(AssertionError, match="video must be contiguous"):
        masked_patch_embed(video.transpose(3, 4), keep, weight, pos, temporal)
    with pytest.raises(AssertionError, match="keep indices must lie in"):
        masked_patch_embed(video, keep + 27, weight, pos, temporal)
    with pytest.raises(AssertionError, match="pos must be"):
        masked_patch_embed(video, keep, weight, pos[:-1], temporal)


def _cuda_blocks(name):
    """Distinct block shapes the CUDA autotuner or the fixed CUDA config may launch for one kernel."""
    import viclip.kernels.patch_embed as pe

    fixed = pe._FWD_BLOCKS_CUDA if name == "fwd" else pe._DW_BLOCKS_CUDA
    shapes = {tuple(sorted(c.kwargs.items())) for c in pe._cuda_configs(name)}
    shapes.add(tuple(sorted((k, v) for k, v in fixed.items() if k.startswith("BLOCK"))))
    return [dict(s) for s in sorted(shapes)]


@pytest.mark.parametrize(
    "blocks",
    [("fwd", b) for b in _cuda_blocks("fwd")] + [("dw", b) for b in _cuda_blocks("dw")],
    ids=lambda nb: "-".join([nb[0], *(f"{k[6:].lower()}{v}" for k, v in nb[1].items())]),
)
def test_every_cuda_block_size_matches_reference(blocks, monkeypatch):
    """The interpreter runs each block shape the GPU may use: 80 tokens, K = 70 kept, 588-wide patches,
    width 80, so every block dimension ends in a partial block."""
    import viclip.kernels.patch_embed as pe

    name, shape = blocks
    monkeypatch.setattr(pe, "_FWD_BLOCKS" if name == "fwd" else "_DW_BLOCKS", shape)
    video, keep, weight, pos, temporal = make_inputs(2, 5, 56, 14, 80, 70, seed=11)
    dout = torch.randn(2, 70, 80, generator=torch.Generator().manual_seed(12))
    got = run(masked_patch_embed, video, keep, weight, pos, temporal, dout)
    ref = run(masked_patch_embed_reference, video, keep, weight, pos, temporal, dout)
    index = 0 if name == "fwd" else 1  # the output, or the weight gradient (fp32 sums over 140 tokens)
    torch.testing.assert_close(got[index], ref[index], atol=5e-5, rtol=1e-4)
