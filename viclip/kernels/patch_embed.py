"""Fused masked patch embedding for ViCLIP's video tower.

`VisionTransformer.tokens` patchifies every frame with a (1, p, p) Conv3d, adds
the spatial table `pos[n]` and the temporal table `temporal[t]`, lays the
L = N*T patch tokens out in (n t) order (token n*T + t) and then keeps K of
them (`gather_tokens`). At ViCLIP's mask ratio 0.9 that embeds ten times more
patches than survive. Here each program takes a block of kept token indices of
one sample, derives n = idx // T, t = idx % T and the patch's pixel offsets
(row = n // grid, col = n % grid), loads only those patches' 3*p*p pixels
straight from the video, multiplies them by the flattened conv weight
[3*p*p, W] with `tl.dot` (fp32 accumulation), adds pos[n] + temporal[t] in fp32
and stores [B, K, W] in the video's dtype. Dropped patches are never read.

Backward (the video is data: no gradient):
- dW [W, 3*p*p] = sum over kept tokens of patch^T @ dOut, a Triton kernel that
  re-gathers the kept patches from the video (nothing saved but the inputs). The
  token sum is split into chunks on CUDA for parallelism; each chunk writes its
  own fp32 partial and torch sums them, so dW is deterministic.
- dpos and dtemporal: one Triton kernel scatters dOut rows with `tl.atomic_add`
  into an fp32 buffer G [L, W] indexed by token (so a row receives at most B
  adds, not B*T or B*N); then dpos = G.view(N, T, W).sum(1) and
  dtemporal = G.view(N, T, W).sum(0) in torch. The atomics make the fp32
  summation order over the batch non-deterministic on GPU (about 1 ulp).

Interpreter-only difference: under TRITON_INTERPRET=1, `tl.dot` on bf16 tiles
returns wrong values, so the kernels upcast both dot operands to fp32 there
(constexpr UPCAST). On GPU, 16-bit video keeps 16-bit dot operands (the weight
tile is cast to the video's dtype, as the conv would under autocast) with fp32
accumulation; fp32 video uses an IEEE fp32 dot. Block sizes are fixed off
CUDA; on CUDA the autotuned wrappers are built lazily on first use, never at
import, and their chosen configs are cached on disk (`viclip.kernels.tuning`);
`VICLIP_TRITON_AUTOTUNE=0` launches one fixed CUDA config per kernel instead.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from viclip.kernels.tuning import autotune, autotune_enabled

# ---------------------------------------------------------------- torch reference


def frame_table(temporal: torch.Tensor, t: int) -> torch.Tensor:
    """The model's temporal rows for T frames: the mean of all entries for one frame, else the first T."""
    return temporal.mean(1, keepdim=True) if t == 1 else temporal[:, :t]


def masked_patch_embed_reference(
    video: torch.Tensor, keep: torch.Tensor | None, weight: torch.Tensor, pos: torch.Tensor, temporal: torch.Tensor
) -> torch.Tensor:
    """Plain torch, as `VisionTransformer.tokens` + `gather_tokens`.

    video [B, T, 3, H, W] (or [B, 3, H, W]), keep [B, K] ascending indices into
    the L = N*T tokens in (n t) order (None: all of them), weight [W, 3, 1, p, p],
    pos [N, W] (no class row), temporal [1, T', W] (T' >= T; the mean for T == 1)
    -> [B, K, W] in the conv's output dtype.
    """
    if video.ndim == 4:
        video = video.unsqueeze(1)
    b, t = video.shape[:2]
    x = F.conv3d(video.permute(0, 2, 1, 3, 4), weight.to(video.dtype), stride=weight.shape[2:])  # [B, W, T, h, w]
    w = x.shape[1]
    x = x.permute(0, 2, 3, 4, 1).reshape(b, t, -1, w) + pos.to(x.dtype)  # [B, T, N, W]
    x = x + frame_table(temporal, t).unsqueeze(2).to(x.dtype)
    x = x.permute(0, 2, 1, 3).reshape(b, -1, w)  # (n t)
    if keep is None:
        return x
    return x.gather(1, keep.unsqueeze(-1).expand(-1, -1, w))


# ---------------------------------------------------------------- kernels


@triton.jit
def _dot_acc(a, b, acc, UPCAST: tl.constexpr):
    """acc + a @ b with b in a's dtype; the one interpreter-only difference lives here.

    Under TRITON_INTERPRET=1, tl.dot on bf16/fp16 tiles is silently wrong, so
    both operands are upcast to fp32 (UPCAST); on CUDA the dot runs on the
    16-bit tiles with fp32 accumulation.
    """
    if UPCAST:
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    else:
        b = b.to(a.dtype)
    return tl.dot(a, b, acc, input_precision="ieee")


@triton.jit
def _patch_offsets(offs_k, stride_vc, stride_vh, PATCH: tl.constexpr):
    """Pixel offset of flattened weight index k = c*p*p + i*p + j inside a patch."""
    c = offs_k // (PATCH * PATCH)
    rem = offs_k % (PATCH * PATCH)
    return c * stride_vc + (rem // PATCH) * stride_vh + rem % PATCH


@triton.jit
def _token_bases(b, idx, T, GRID_W, stride_vb, stride_vt, stride_vh, PATCH: tl.constexpr):
    """Pixel offset of each token's patch origin: frame t = idx % T, patch n = idx // T at (n // grid, n % grid)."""
    n = idx // T
    t = idx % T
    row = n // GRID_W
    col = n % GRID_W
    return b.to(tl.int64) * stride_vb + t.to(tl.int64) * stride_vt + (row * PATCH) * stride_vh + col * PATCH


@triton.jit
def _patch_embed_fwd_kernel(
    video_ptr,
    keep_ptr,
    w_ptr,
    pos_ptr,
    temp_ptr,
    out_ptr,
    K,
    T,
    GRID_W,
    WIDTH,
    stride_vb,
    stride_vt,
    stride_vc,
    stride_vh,
    PATCH: tl.constexpr,
    HAS_KEEP: tl.constexpr,
    UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    PDIM: tl.constexpr = 3 * PATCH * PATCH
    pid_m = tl.program_id(0)  # (sample, block of kept tokens)
    pid_w = tl.program_id(1)  # block of output channels
    m_blocks = tl.cdiv(K, BLOCK_M)
    b = pid_m // m_blocks
    offs_m = (pid_m % m_blocks) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_w = pid_w * BLOCK_W + tl.arange(0, BLOCK_W)
    mask_m = offs_m < K
    mask_w = offs_w < WIDTH
    if HAS_KEEP:
        idx = tl.load(keep_ptr + b * K + offs_m, mask=mask_m, other=0)
    else:
        idx = offs_m
    base = _token_bases(b, idx, T, GRID_W, stride_vb, stride_vt, stride_vh, PATCH)

    # patches [BLOCK_M, PDIM] @ weight^T [PDIM, BLOCK_W], loaded tile by tile from the video
    acc = tl.zeros((BLOCK_M, BLOCK_W), dtype=tl.float32)
    for k0 in range(0, PDIM, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        mask_k = offs_k < PDIM
        koff = _patch_offsets(offs_k, stride_vc, stride_vh, PATCH)
        a = tl.load(video_ptr + base[:, None] + koff[None, :], mask=mask_m[:, None] & mask_k[None, :], other=0.0)
        w_mask = mask_k[:, None] & mask_w[None, :]
        wt = tl.load(w_ptr + offs_w[None, :] * PDIM + offs_k[:, None], mask=w_mask, other=0.0)
        acc = _dot_acc(a, wt, acc, UPCAST)

    # epilogue: + pos[n] + temporal[t]
    n = idx // T
    t = idx % T
    mask = mask_m[:, None] & mask_w[None, :]
    acc += tl.load(pos_ptr + n[:, None] * WIDTH + offs_w[None, :], mask=mask, other=0.0).to(tl.float32)
    acc += tl.load(temp_ptr + t[:, None] * WIDTH + offs_w[None, :], mask=mask, other=0.0).to(tl.float32)
    out_rows = b.to(tl.int64) * K + offs_m
    tl.store(out_ptr + out_rows[:, None] * WIDTH + offs_w[None, :], acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _patch_embed_dw_kernel(
    video_ptr,
    keep_ptr,
    dout_ptr,
    dw_ptr,
    K,
    T,
    GRID_W,
    WIDTH,
    M_TOTAL,
    TOKENS_PER_SPLIT,
    stride_vb,
    stride_vt,
    stride_vc,
    stride_vh,
    PATCH: tl.constexpr,
    HAS_KEEP: tl.constexpr,
    UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    """One [BLOCK_P, BLOCK_W] tile of dW^T over one chunk of the B*K kept tokens -> partial [split, W, PDIM]."""
    PDIM: tl.constexpr = 3 * PATCH * PATCH
    pid_p = tl.program_id(0)
    pid_w = tl.program_id(1)
    pid_s = tl.program_id(2)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_w = pid_w * BLOCK_W + tl.arange(0, BLOCK_W)
    mask_p = offs_p < PDIM
    mask_w = offs_w < WIDTH
    poff = _patch_offsets(offs_p, stride_vc, stride_vh, PATCH)

    acc = tl.zeros((BLOCK_P, BLOCK_W), dtype=tl.float32)
    start = pid_s * TOKENS_PER_SPLIT
    end = tl.minimum(start + TOKENS_PER_SPLIT, M_TOTAL)
    for m0 in range(start, end, BLOCK_M):
        g = m0 + tl.arange(0, BLOCK_M)  # flat token index b*K + m (keep and dOut are contiguous)
        mask_g = g < end
        b = g // K
        if HAS_KEEP:
            idx = tl.load(keep_ptr + g, mask=mask_g, other=0)
        else:
            idx = g % K
        base = _token_bases(b, idx, T, GRID_W, stride_vb, stride_vt, stride_vh, PATCH)
        # patches^T [BLOCK_P, BLOCK_M] @ dOut [BLOCK_M, BLOCK_W]
        a = tl.load(video_ptr + poff[:, None] + base[None, :], mask=mask_p[:, None] & mask_g[None, :], other=0.0)
        d_mask = mask_g[:, None] & mask_w[None, :]
        d = tl.load(dout_ptr + g.to(tl.int64)[:, None] * WIDTH + offs_w[None, :], mask=d_mask, other=0.0)
        acc = _dot_acc(a, d, acc, UPCAST)

    dst = dw_ptr + pid_s.to(tl.int64) * WIDTH * PDIM + offs_w[None, :] * PDIM + offs_p[:, None]
    tl.store(dst, acc, mask=mask_p[:, None] & mask_w[None, :])


@triton.jit
def _patch_embed_dtable_kernel(
    keep_ptr,
    dout_ptr,
    g_ptr,
    K,
    WIDTH,
    HAS_KEEP: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    """G[idx] += dOut[b, m] (fp32 atomics): the per-token gradient both tables are summed from."""
    pid_m = tl.program_id(0)
    pid_w = tl.program_id(1)
    m_blocks = tl.cdiv(K, BLOCK_M)
    b = pid_m // m_blocks
    offs_m = (pid_m % m_blocks) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_w = pid_w * BLOCK_W + tl.arange(0, BLOCK_W)
    mask_m = offs_m < K
    mask = mask_m[:, None] & (offs_w < WIDTH)[None, :]
    if HAS_KEEP:
        idx = tl.load(keep_ptr + b * K + offs_m, mask=mask_m, other=0)
    else:
        idx = offs_m
    rows = b.to(tl.int64) * K + offs_m
    d = tl.load(dout_ptr + rows[:, None] * WIDTH + offs_w[None, :], mask=mask, other=0.0).to(tl.float32)
    tl.atomic_add(g_ptr + idx.to(tl.int64)[:, None] * WIDTH + offs_w[None, :], d, mask=mask)


# ---------------------------------------------------------------- launch configuration

# Off CUDA (the interpreter): small fixed power-of-two blocks, masked at the edges.
_FWD_BLOCKS = {"BLOCK_M": 16, "BLOCK_K": 64, "BLOCK_W": 64}
_DW_BLOCKS = {"BLOCK_M": 16, "BLOCK_P": 64, "BLOCK_W": 64}
_DTABLE_BLOCKS = {"BLOCK_M": 16, "BLOCK_W": 64}
# On CUDA without autotuning (VICLIP_TRITON_AUTOTUNE=0): one config each.
_FWD_BLOCKS_CUDA = {"BLOCK_M": 64, "BLOCK_K": 32, "BLOCK_W": 64, "num_warps": 8, "num_stages": 2}
_DW_BLOCKS_CUDA = {"BLOCK_M": 32, "BLOCK_P": 64, "BLOCK_W": 64, "num_warps": 4, "num_stages": 2}
# The atomic scatter is never autotuned: autotune's benchmark reruns would add into G several times.
_DTABLE_BLOCKS_CUDA = {"BLOCK_M": 32, "BLOCK_W": 128, "num_warps": 4}
# dW sums over B*K tokens; it is split into chunks of this many tokens (a multiple of every BLOCK_M), one
# fp32 partial each. None: one chunk (the interpreter; tests set a small value to exercise the split).
_DW_TOKENS_PER_SPLIT_CUDA = 4096
_DW_TOKENS_PER_SPLIT_OFF_CUDA: int | None = None
_tuned: dict[str, object] = {}


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _cuda_configs(name: str) -> list[triton.Config]:
    """The configs the CUDA autotuner chooses from (also run, block sizes only, in the interpreter tests).

    Pruned to what does not spill registers on sm_90 (bench/compile_kernels.py, bf16): the forward's
    gathered pointer tiles spill beyond 64x64 outputs on 8 warps and beyond 32x32 pixel tiles on 4;
    the weight gradient spills beyond 64x64 patch-by-token tiles.
    """
    if name == "fwd":
        return [
            triton.Config({"BLOCK_M": bm, "BLOCK_K": bk, "BLOCK_W": bw}, num_warps=nw, num_stages=ns)
            for bm, bk, bw, nw in ((64, 32, 64, 8), (64, 64, 64, 8), (32, 32, 64, 4))
            for ns in (2, 3)
        ]
    if name == "dw":
        return [
            triton.Config({"BLOCK_M": bm, "BLOCK_P": bp, "BLOCK_W": bw}, num_warps=nw, num_stages=3)
            for bm in (32, 64)
            for bp in (64, 128)
            for bw in (64, 128)
            for nw in (4, 8)
            if (bm * bp <= 32 * 64) == (nw == 4) and bm * bp <= 64 * 64
        ]
    raise KeyError(name)


_TUNING_KEYS = {"fwd": ["K", "WIDTH", "PATCH"], "dw": ["WIDTH", "PATCH", "TOKENS_PER_SPLIT"]}
_JIT = {"fwd": _patch_embed_fwd_kernel, "dw": _patch_embed_dw_kernel}


def _autotuned(name: str):
    """The CUDA autotune wrapper of a kernel, built on first use (autotune needs a live driver)."""
    if name not in _tuned:
        _tuned[name] = autotune(_JIT[name], _cuda_configs(name), key=_TUNING_KEYS[name])
    return _tuned[name]


def _check_inputs(video, keep, weight, pos, temporal) -> tuple[int, int, int]:
    """Assert the launch preconditions; return (patch size p, grid width, K)."""
    assert video.ndim == 5 and video.shape[2] == 3, f"video must be [B, T, 3, H, W], got {tuple(video.shape)}"
    assert video.is_contiguous(), "video must be contiguous ([B, T, 3, H, W] row-major)"
    b, t, _, h, w_img = video.shape
    assert weight.ndim == 5 and weight.shape[1:3] == (3, 1) and weight.shape[3] == weight.shape[4], (
        f"weight must be the Conv3d weight [W, 3, 1, p, p], got {tuple(weight.shape)}"
    )
    p, width = weight.shape[3], weight.shape[0]
    assert h % p == 0 and w_img % p == 0, f"frame size {h}x{w_img} is not divisible by the patch size {p}"
    n_patches = (h // p) * (w_img // p)
    assert pos.shape == (n_patches, width), f"pos must be [N={n_patches}, W={width}], got {tuple(pos.shape)}"
    assert temporal.shape == (1, t, width), f"temporal must be [1, T={t}, W={width}], got {tuple(temporal.shape)}"
    for name, x in (("weight", weight), ("pos", pos), ("temporal", temporal)):
        assert x.is_contiguous(), f"{name} must be contiguous"
        assert x.device == video.device, f"{name} is on {x.device} but video is on {video.device}"
    k = n_patches * t
    if keep is not None:
        assert keep.ndim == 2 and keep.shape[0] == b, f"keep must be [B={b}, K], got {tuple(keep.shape)}"
        assert keep.dtype in (torch.int32, torch.int64), f"keep must hold int32/int64 indices, got {keep.dtype}"
        assert keep.is_contiguous(), "keep must be contiguous"
        assert keep.device == video.device, f"keep is on {keep.device} but video is on {video.device}"
        k = keep.shape[1]
        if keep.numel():
            lo, hi = int(keep.min()), int(keep.max())
            assert lo >= 0 and hi < n_patches * t, f"keep indices must lie in [0, L={n_patches * t}), got [{lo}, {hi}]"
    return p, w_img // p, k


def _forward(video, keep, weight, pos, temporal) -> torch.Tensor:
    p, grid_w, k = _check_inputs(video, keep, weight, pos, temporal)
    b, t = video.shape[:2]
    width = weight.shape[0]
    out = torch.empty(b, k, width, device=video.device, dtype=video.dtype)
    if out.numel() == 0:
        return out
    keep_arg = keep if keep is not None else video  # a dummy pointer, never read when HAS_KEEP is False
    args = (
        video,
        keep_arg,
        weight,
        pos,
        temporal,
        out,
        k,
        t,
        grid_w,
        width,
        video.stride(0),
        video.stride(1),
        video.stride(2),
        video.stride(3),
    )
    flags = {"PATCH": p, "HAS_KEEP": keep is not None, "UPCAST": _interpreting()}
    cuda = video.is_cuda and not _interpreting()
    if cuda and autotune_enabled():
        grid = lambda meta: (b * triton.cdiv(k, meta["BLOCK_M"]), triton.cdiv(width, meta["BLOCK_W"]))
        _autotuned("fwd")[grid](*args, **flags)
    else:
        blocks = _FWD_BLOCKS_CUDA if cuda else _FWD_BLOCKS
        grid = (b * triton.cdiv(k, blocks["BLOCK_M"]), triton.cdiv(width, blocks["BLOCK_W"]))
        _patch_embed_fwd_kernel[grid](*args, **flags, **blocks)
    return out


def _splits_ok(per_split: int, m_total: int, cuda: bool) -> bool:
    """A chunk boundary must fall on a token-block boundary (one chunk needs nothing)."""
    block_m = 64 if cuda else _DW_BLOCKS["BLOCK_M"]  # the largest BLOCK_M the path may use
    return per_split >= m_total or per_split % block_m == 0


def _weight_grad(video, keep, dout, p, grid_w, width) -> torch.Tensor:
    """dW [W, 3*p*p] in fp32."""
    b, t = video.shape[:2]
    k = dout.shape[1]
    pdim = 3 * p * p
    m_total = b * k
    cuda = video.is_cuda and not _interpreting()
    per_split = _DW_TOKENS_PER_SPLIT_CUDA if cuda else (_DW_TOKENS_PER_SPLIT_OFF_CUDA or max(m_total, 1))
    assert _splits_ok(per_split, m_total, cuda), f"dW chunk size {per_split} must be a multiple of every BLOCK_M"
    splits = triton.cdiv(m_total, per_split)
    partial = torch.empty(splits, width, pdim, device=video.device, dtype=torch.float32)
    keep_arg = keep if keep is not None else video
    args = (
        video,
        keep_arg,
        dout,
        partial,
        k,
        t,
        grid_w,
        width,
        m_total,
        per_split,
        video.stride(0),
        video.stride(1),
        video.stride(2),
        video.stride(3),
    )
    flags = {"PATCH": p, "HAS_KEEP": keep is not None, "UPCAST": _interpreting()}
    if cuda and autotune_enabled():
        grid = lambda meta: (triton.cdiv(pdim, meta["BLOCK_P"]), triton.cdiv(width, meta["BLOCK_W"]), splits)
        _autotuned("dw")[grid](*args, **flags)
    else:
        blocks = _DW_BLOCKS_CUDA if cuda else _DW_BLOCKS
        grid = (triton.cdiv(pdim, blocks["BLOCK_P"]), triton.cdiv(width, blocks["BLOCK_W"]), splits)
        _patch_embed_dw_kernel[grid](*args, **flags, **blocks)
    return partial[0] if splits == 1 else partial.sum(0)


def _table_grad(keep, dout, n_tokens) -> torch.Tensor:
    """G [L, W] fp32: dOut rows summed per token index over the batch."""
    b, k, width = dout.shape
    if keep is None:  # every token, in order: a plain batch sum
        return dout.sum(0, dtype=torch.float32)
    g = torch.zeros(n_tokens, width, device=dout.device, dtype=torch.float32)
    blocks = _DTABLE_BLOCKS_CUDA if dout.is_cuda and not _interpreting() else _DTABLE_BLOCKS
    grid = (b * triton.cdiv(k, blocks["BLOCK_M"]), triton.cdiv(width, blocks["BLOCK_W"]))
    _patch_embed_dtable_kernel[grid](keep, dout, g, k, width, HAS_KEEP=True, **blocks)
    return g


# ---------------------------------------------------------------- autograd


class MaskedPatchEmbed(torch.autograd.Function):
    """(video, keep, weight [W,3,1,p,p], pos [N,W], temporal [1,T,W]) -> [B, K, W]; no gradient for video or keep."""

    @staticmethod
    def forward(ctx, video, keep, weight, pos, temporal):
        out = _forward(video, keep, weight, pos, temporal)
        ctx.save_for_backward(video, keep, weight, pos, temporal)  # the kept patches are re-gathered in backward
        return out

    @staticmethod
    def backward(ctx, dout):
        video, keep, weight, pos, temporal = ctx.saved_tensors
        dout = dout.contiguous()
        t = video.shape[1]
        width, p = weight.shape[0], weight.shape[3]
        grid_w = video.shape[4] // p
        dweight = dpos = dtemporal = None
        if ctx.needs_input_grad[2]:
            dweight = _weight_grad(video, keep, dout, p, grid_w, width).view(weight.shape).to(weight.dtype)
        if ctx.needs_input_grad[3] or ctx.needs_input_grad[4]:
            g = _table_grad(keep, dout, pos.shape[0] * t).view(pos.shape[0], t, width)
            if ctx.needs_input_grad[3]:
                dpos = g.sum(1).to(pos.dtype)
            if ctx.needs_input_grad[4]:
                dtemporal = g.sum(0, keepdim=True).to(temporal.dtype)
        return None, None, dweight, dpos, dtemporal


def masked_patch_embed(
    video: torch.Tensor, keep: torch.Tensor | None, weight: torch.Tensor, pos: torch.Tensor, temporal: torch.Tensor
) -> torch.Tensor:
    """Kept tokens' embeddings [B, K, W], as `masked_patch_embed_reference` (same arguments).

    temporal may be the model's whole table [1, T', W]: the frame rows are chosen
    as the model does (the mean for one frame). Under autocast the video is cast
    to the autocast dtype, as the conv would be; the tables stay fp32 and are
    added in fp32 before the single rounding of the output.
    """
    if video.ndim == 4:
        video = video.unsqueeze(1)
    if not (video.is_cuda or _interpreting()):
        raise RuntimeError(
            "masked_patch_embed needs CUDA tensors, or TRITON_INTERPRET=1 for the CPU interpreter; "
            "use masked_patch_embed_reference elsewhere"
        )
    device_type = video.device.type
    if torch.is_autocast_enabled(device_type):
        video = video.to(torch.get_autocast_dtype(device_type))
    table = frame_table(temporal, video.shape[1])
    return MaskedPatchEmbed.apply(video, keep, weight, pos, table.contiguous())
