"""Fused attention kernel vs the plain-torch reference, forward and every gradient, on the CPU interpreter."""

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported (anywhere in this process)

import pytest
import torch

pytest.importorskip("triton", reason="triton is not importable; the fused attention kernel cannot run")

from viclip.kernels import attention as A

if not A._INTERPRET:  # another test module imported triton kernels before TRITON_INTERPRET was set
    pytest.skip(
        "viclip.kernels.attention was imported without TRITON_INTERPRET=1; run this file on its own",
        allow_module_level=True,
    )


def _inputs(b, h, n_q, d, dtype, n_k=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    n_k = n_q if n_k is None else n_k
    q = torch.randn(b, h, n_q, d, generator=g).to(dtype)
    k = torch.randn(b, h, n_k, d, generator=g).to(dtype)
    v = torch.randn(b, h, n_k, d, generator=g).to(dtype)
    do = torch.randn(b, h, n_q, d, generator=g).to(dtype)
    return q, k, v, do


def _padding_mask(b, n_k, seed=0):
    """Different padding per batch row: row i keeps the first n_k - 3 - 5*i keys, plus random holes."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(b, n_k, generator=g) < 0.2
    for i in range(b):
        mask[i, max(1, n_k - 3 - 5 * i) :] = True
    mask[:, 0] = False  # at least one visible key per row (the all-masked case has its own test)
    return mask


def _run(fn, q, k, v, do, **kw):
    """Output and (dq, dk, dv) of fn, from fresh leaves."""
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    o = fn(q, k, v, **kw)
    return (o, *torch.autograd.grad(o, (q, k, v), do))


def _max_err(a, b):
    return (a.float() - b.float()).abs().max().item()


NAMES = ("out", "dq", "dk", "dv")
# (B, H, N_Q, D, N_K, masked): odd sequence lengths, D below / at / above one 16- or 32-wide block
SHAPES = [
    (2, 3, 17, 32, None, False),
    (1, 2, 70, 64, None, False),
    (1, 1, 5, 16, None, False),
    (2, 2, 23, 32, None, True),  # key padding, different per batch row
    (1, 2, 37, 24, None, True),  # head dim not a power of two (padded to 32 with masks)
    (2, 1, 5, 16, 19, True),  # cross-attention: N_Q != N_K
]


def _ids(s):
    b, h, n, d, n_k, m = s
    return f"B{b}H{h}N{n}" + (f"x{n_k}" if n_k else "") + f"D{d}" + ("-mask" if m else "")


@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_fp32_matches_reference(shape):
    b, h, n, d, n_k, masked = shape
    q, k, v, do = _inputs(b, h, n, d, torch.float32, n_k)
    kw = {"key_padding_mask": _padding_mask(b, k.shape[2])} if masked else {}
    got = _run(A.fused_attention, q, k, v, do, **kw)
    want = _run(A.attention_reference, q, k, v, do, **kw)
    for name, x, y in zip(NAMES, got, want):
        assert x.dtype == y.dtype == torch.float32 and x.shape == y.shape
        # fp32 everywhere; only the summation order differs (measured ~1e-6)
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[1], SHAPES[3], SHAPES[5]], ids=_ids)
def test_low_precision_error_at_most_twice_torch(shape, dtype):
    """|kernel - fp32 ref| <= 2 |torch in the same dtype - fp32 ref| + atol, for out and every grad."""
    b, h, n, d, n_k, masked = shape
    q, k, v, do = _inputs(b, h, n, d, dtype, n_k)
    kw = {"key_padding_mask": _padding_mask(b, k.shape[2])} if masked else {}
    got = _run(A.fused_attention, q, k, v, do, **kw)
    same = _run(lambda *a, **x: A.attention_reference(*a, upcast=False, **x), q, k, v, do, **kw)
    ref = _run(A.attention_reference, q.float(), k.float(), v.float(), do.float(), **kw)
    # atol: one low-precision ulp at |x| ~ 1-2 (bf16 2^-7, fp16 2^-10); covers cases where torch's
    # own run happens to round almost exactly to the reference
    atol = 2**-7 if dtype == torch.bfloat16 else 2**-10
    for name, x, s, r in zip(NAMES, got, same, ref):
        assert x.dtype == dtype
        err, base = _max_err(x, r), _max_err(s, r)
        assert err <= 2 * base + atol, f"{name}: kernel error {err:.3g} > 2 x torch {dtype} error {base:.3g} + {atol}"


def test_viclip_b_masked_length():
    """ViCLIP-B/16 training length: 8 frames x 196 patches with 90% masked leaves 157 tokens + [CLS] = 158."""
    q, k, v, do = _inputs(1, 2, 158, 64, torch.float32)
    got = _run(A.fused_attention, q, k, v, do)
    want = _run(A.attention_reference, q, k, v, do)
    for name, x, y in zip(NAMES, got, want):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


def test_long_odd_sequence_forward():
    """ViCLIP-B/16 unmasked length (1 + 8 x 196 = 1569), forward only to keep the interpreter fast."""
    q, k, v, _ = _inputs(1, 1, 1569, 16, torch.float32)
    torch.testing.assert_close(A.fused_attention(q, k, v), A.attention_reference(q, k, v), atol=1e-5, rtol=1e-5)


def test_all_keys_masked_row_gives_zero_like_sdpa():
    q, k, v, do = _inputs(2, 2, 9, 16, torch.float32)
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[0] = True  # batch row 0: every key padded
    mask[1, 4:] = True
    got = _run(A.fused_attention, q, k, v, do, key_padding_mask=mask)
    want = _run(A.attention_reference, q, k, v, do, key_padding_mask=mask)
    sdpa = _run(
        lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=~mask[:, None, None, :]),
        q,
        k,
        v,
        do,
    )
    assert all(torch.isfinite(t).all() for t in got)
    assert all(t[0].abs().max() == 0 for t in got)  # output and every gradient of the empty row
    for name, x, y, z in zip(NAMES, got, want, sdpa):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")
        torch.testing.assert_close(x, z, atol=1e-5, rtol=1e-5, msg=lambda m, name=name: f"{name} vs SDPA: {m}")


def test_scale_and_non_contiguous_inputs():
    """A custom scale, and q/k/v as strided views of one qkv tensor (what a model passes)."""
    g = torch.Generator().manual_seed(3)
    qkv = torch.randn(2, 13, 3, 2, 16, generator=g)  # [B, N, 3, H, D]
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    assert not q.is_contiguous()
    do = torch.randn(2, 2, 13, 16, generator=g)
    got = _run(A.fused_attention, q, k, v, do, scale=0.3)
    want = _run(A.attention_reference, q, k, v, do, scale=0.3)
    for name, x, y in zip(NAMES, got, want):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


def test_dispatch_path_and_no_autotune_without_gpu():
    from viclip.kernels import dispatch

    q, k, v, _ = _inputs(1, 2, 11, 16, torch.float32)
    torch.testing.assert_close(
        dispatch.attention(q, k, v, "triton"), A.attention_reference(q, k, v), atol=1e-5, rtol=1e-5
    )
    assert A._TUNED == {}  # autotuned kernels are only built on the first CUDA call


def test_launcher_preconditions():
    q, k, v, _ = _inputs(1, 2, 8, 16, torch.float32)
    with pytest.raises(AssertionError, match="contiguous"):
        A.attention_forward(q.transpose(2, 3), k.transpose(2, 3), v.transpose(2, 3), None, 0.25)
    with pytest.raises(AssertionError, match="dtype"):
        A.fused_attention(q.double(), k.double(), v.double())
    with pytest.raises(AssertionError, match="mixed dtypes"):
        A.fused_attention(q, k.half(), v)
    with pytest.raises(AssertionError, match=r"\[B, H, N, D\]"):
        A.fused_attention(q[0], k[0], v[0])
    with pytest.raises(AssertionError, match="head dim"):
        big = torch.zeros(1, 1, 4, A.MAX_HEAD_DIM + 1)
        A.fused_attention(big, big, big)
    with pytest.raises(AssertionError, match="bool"):
        A.fused_attention(q, k, v, key_padding_mask=torch.zeros(1, 8, dtype=torch.int64))
    with pytest.raises(AssertionError, match=r"\[B, N_K\]"):
        A.fused_attention(q, k, v, key_padding_mask=torch.zeros(1, 7, dtype=torch.bool))


def test_cpu_tensors_without_interpreter_are_refused(monkeypatch):
    monkeypatch.setattr(A, "_INTERPRET", False)
    q, k, v, _ = _inputs(1, 1, 4, 16, torch.float32)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        A.fused_attention(q, k, v)


def _cuda_block_pairs():
    """Every (BLOCK_M, BLOCK_N) the CUDA autotuner or the fixed CUDA configs may launch."""
    pairs = {
        (c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"])
        for name in ("fwd", "dkdv", "dq")
        for fp32 in (False, True)
        for c in A._cuda_configs(name, fp32)
    }
    pairs |= {(m["BLOCK_M"], m["BLOCK_N"]) for fixed in (A._CUDA_FIXED, A._CUDA_FIXED_FP32) for m in fixed.values()}
    return sorted(pairs)


@pytest.mark.parametrize("blocks", _cuda_block_pairs(), ids=lambda p: f"{p[0]}x{p[1]}")
def test_every_cuda_block_size_matches_reference(blocks, monkeypatch):
    """The interpreter runs the kernels with each block shape the GPU may use (partial blocks at N=70)."""
    monkeypatch.setattr(A, "_interp_blocks", lambda n_q, n_k: blocks)
    q, k, v, do = _inputs(2, 1, 70, 64, torch.float32, 45, seed=4)
    kw = {"key_padding_mask": _padding_mask(2, 45)}
    got = _run(A.fused_attention, q, k, v, do, **kw)
    want = _run(A.attention_reference, q, k, v, do, **kw)
    for name, x, y in zip(NAMES, got, want):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")
