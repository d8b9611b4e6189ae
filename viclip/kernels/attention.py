"""Fused multi-head attention (FlashAttention-2), non-causal, with an optional key padding mask.

Algorithm: FlashAttention-2 (Dao, 2023; "FlashAttention-2: Faster Attention with Better
Parallelism and Work Partitioning"), after FlashAttention (Dao et al., 2022) and the
triton-lang tutorial ``06-fused-attention.py``.

* Forward: one program per (query block, batch*head). It streams key/value blocks and keeps
  an online softmax (running row max ``m`` and row sum ``l``) in the log2 domain: the scores
  are multiplied by ``scale * log2(e)`` once, so every exponential is an ``exp2``. It writes
  the output and the per-row log-sum-exp (log2 domain) that the backward needs.
* Backward: ``delta = rowsum(dO * O)`` in a small pre-kernel, then two kernels that recompute
  the attention probabilities from q, k and the saved LSE: one program per key block
  accumulates dK and dV over all query blocks, one program per query block accumulates dQ
  over all key blocks. No atomics, so results are deterministic.
* Accumulation is fp32 for every input dtype (fp32, fp16, bf16). On CUDA the matmuls
  run on fp16/bf16 tiles (tensor cores) and fp32 tiles use ``input_precision="ieee"`` so
  fp32 inputs are not silently rounded to tf32 (torch's fp32 matmul does not use tf32 by
  default either).
* Any sequence length (masked loads) and any head dim up to 128 (padded to the next
  power of two >= 16 with masks). q has ``N_Q`` rows, k/v ``N_K`` rows (self-attention is
  ``N_Q == N_K``).
* ``key_padding_mask`` [B, N_K] bool, True = ignore that key. A batch row whose keys are
  *all* masked gives output 0 and zero gradients, like torch's SDPA (its "safe softmax")
  and FlashAttention, instead of NaN; the kernel marks such rows with LSE = +inf.

Interpreter-only difference (TRITON_INTERPRET=1, CPU tests): ``tl.dot`` on bf16/fp16
tiles returns wrong values under triton 3.8's interpreter without raising. When the
interpreter is active the launcher passes ``UPCAST=True`` and :func:`_dot` converts both
tiles to fp32 right before each ``tl.dot``; everything else (loads, the casts of P and dS
to the input dtype, fp32 accumulation, stores) is identical. On CUDA ``UPCAST=False`` and
the dot runs on the fp16/bf16 tiles with fp32 accumulation.

Block sizes: without CUDA (interpreter) fixed small power-of-two blocks (16 or 32, chosen
from N) and no autotuning: ``triton.autotune`` and ``triton.runtime.driver.active`` raise
without a GPU. On CUDA each kernel is wrapped in ``triton.autotune`` over a pruned config
list, keyed on ``(N_Q, N_K, HEAD_DIM)`` (triton adds the tensors' dtypes to the key). The
autotuned kernels are built lazily on the first CUDA call, never at import; the chosen
configs are cached in the process and on disk (:mod:`viclip.kernels.tuning`), and the
compiled binaries by triton's own cache. fp32 inputs get their own list of small tiles
(they run on FMA units and spill in the tensor-core tiles). ``VICLIP_TRITON_AUTOTUNE=0``
launches one fixed CUDA config per kernel instead (``_CUDA_FIXED``, ``_CUDA_FIXED_FP32``). Every kernel only writes its outputs
(no accumulation into existing memory), so the autotuner's repeated benchmark launches are
harmless.

Launcher preconditions (asserted, with messages): q, k, v are 4-D [B, H, N, D], contiguous,
same dtype in {fp32, fp16, bf16}, same device, k and v of the same shape, D <= 128,
B*H <= 65535 (grid axis 1). :func:`fused_attention` makes its inputs contiguous first.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from viclip.kernels.tuning import autotune, autotune_enabled

# triton decides interpreter mode when @triton.jit runs (at import), so read the flag once here.
_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_HEAD_DIM = 128
LOG2E = 1.4426950408889634


# ---------------------------------------------------------------------------------------------
# plain-torch reference
# ---------------------------------------------------------------------------------------------
def attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_padding_mask: torch.Tensor | None = None,
    scale: float | None = None,
    upcast: bool = True,
) -> torch.Tensor:
    """softmax(q k^T * scale) v for [B, H, N, D] tensors; key_padding_mask [B, N_K] (True = ignore).

    With ``upcast`` (default) it computes in fp32 and casts back (the ground truth for tests);
    ``upcast=False`` computes in the input dtype (the "same-precision torch" error baseline).
    A row with every key masked gives 0 (and zero gradients), like torch's SDPA.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    dtype = q.dtype
    if upcast:
        q, k, v = q.float(), k.float(), v.float()
    s = torch.matmul(q, k.transpose(-2, -1)) * scale
    if key_padding_mask is not None:
        s = s.masked_fill(key_padding_mask[:, None, None, :], torch.finfo(s.dtype).min)
    p = torch.softmax(s, dim=-1)
    if key_padding_mask is not None:  # finfo.min, not -inf, above: -inf would put NaN into the backward
        p = p.masked_fill(key_padding_mask.all(-1)[:, None, None, None], 0.0)
    return torch.matmul(p, v).to(dtype)


# ---------------------------------------------------------------------------------------------
# shared jit helpers
# ---------------------------------------------------------------------------------------------
@triton.jit
def _dot(a, b, UPCAST: tl.constexpr, DOT_PREC: tl.constexpr):
    """a @ b with fp32 accumulation; UPCAST (interpreter only) works around its bf16/fp16 dot."""
    if UPCAST:
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    return tl.dot(a, b, input_precision=DOT_PREC)


@triton.jit
def _mask_scores(s, cols, KPM, off_b, N_K, HAS_MASK: tl.constexpr):
    """Scores [BM, BN] in the log2 domain: padded keys -> -1e30, keys past N_K -> -inf.

    -1e30 rather than -inf keeps the running max finite in a row whose keys are all padded
    (exp2(-inf - -inf) is NaN); the epilogue then zeroes that row.
    """
    in_range = cols < N_K
    if HAS_MASK:
        pad = tl.load(KPM + off_b * N_K + cols, mask=in_range, other=1) != 0
        s = tl.where(pad[None, :], -1.0e30, s)
    return tl.where(in_range[None, :], s, float("-inf"))


@triton.jit
def _zero_padded(ds, cols, KPM, off_b, N_K, HAS_MASK: tl.constexpr):
    """The filled score of a padded key is a constant: no gradient flows to q or k through it."""
    if HAS_MASK:
        pad = tl.load(KPM + off_b * N_K + cols, mask=cols < N_K, other=1) != 0
        ds = tl.where(pad[None, :], 0.0, ds)
    return ds


# ---------------------------------------------------------------------------------------------
# forward
# ---------------------------------------------------------------------------------------------
@triton.jit
def _fwd_kernel(
    Q,
    K,
    V,
    KPM,
    O,
    LSE,  #
    H,
    N_Q,
    N_K,
    qk_scale,  #
    HEAD_DIM: tl.constexpr,
    HAS_MASK: tl.constexpr,
    UPCAST: tl.constexpr,
    DOT_PREC: tl.constexpr,  #
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,  #
):
    tl.static_assert(BLOCK_D >= HEAD_DIM)
    tl.static_assert(BLOCK_D >= 16)
    start_m = tl.program_id(0)
    off_bh = tl.program_id(1).to(tl.int64)
    off_b = off_bh // H
    q_base = off_bh * N_Q * HEAD_DIM
    kv_base = off_bh * N_K * HEAD_DIM

    rows = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM
    row_ok = rows < N_Q
    q = tl.load(
        Q + q_base + rows[:, None] * HEAD_DIM + offs_d[None, :], mask=row_ok[:, None] & d_ok[None, :], other=0.0
    )

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)  # running row max (log2 domain)
    l_i = tl.zeros([BLOCK_M], tl.float32)  # running row sum of exp2(s - m_i)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start_n in range(0, N_K, BLOCK_N):
        cols = start_n + offs_n
        kv_mask = (cols < N_K)[:, None] & d_ok[None, :]
        kv_off = kv_base + cols[:, None] * HEAD_DIM + offs_d[None, :]
        k = tl.load(K + kv_off, mask=kv_mask, other=0.0)
        v = tl.load(V + kv_off, mask=kv_mask, other=0.0)
        # -- compute qk (log2 domain) --
        s = _dot(q, tl.trans(k), UPCAST, DOT_PREC) * qk_scale
        s = _mask_scores(s, cols, KPM, off_b, N_K, HAS_MASK)
        # -- update m_i and l_i (column 0 is always in range, so m_new is finite) --
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        # -- update the output accumulator --
        acc = acc * alpha[:, None] + _dot(p.to(v.dtype), v, UPCAST, DOT_PREC)
        m_i = m_new

    # -- epilogue --
    acc = acc / l_i[:, None]
    lse = m_i + tl.log2(l_i)
    if HAS_MASK:
        # every key padded (real scores never reach -1e30): output 0, and LSE = +inf makes the
        # backward's recomputed P exactly 0, so these rows get zero gradients (torch SDPA's choice)
        empty = m_i <= -1.0e30
        acc = tl.where(empty[:, None], 0.0, acc)
        lse = tl.where(empty, float("inf"), lse)
    tl.store(LSE + off_bh * N_Q + rows, lse, mask=row_ok)
    tl.store(
        O + q_base + rows[:, None] * HEAD_DIM + offs_d[None, :],
        acc.to(O.dtype.element_ty),
        mask=row_ok[:, None] & d_ok[None, :],
    )


# ---------------------------------------------------------------------------------------------
# backward
# ---------------------------------------------------------------------------------------------
@triton.jit
def _bwd_preprocess_kernel(
    O,
    DO,
    DELTA,  #
    N_Q,
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_D: tl.constexpr,  #
):
    """delta[bh, i] = sum_d dO[bh, i, d] * O[bh, i, d] (fp32)."""
    start_m = tl.program_id(0)
    off_bh = tl.program_id(1).to(tl.int64)
    rows = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = rows < N_Q
    mask = row_ok[:, None] & (offs_d < HEAD_DIM)[None, :]
    off = off_bh * N_Q * HEAD_DIM + rows[:, None] * HEAD_DIM + offs_d[None, :]
    o = tl.load(O + off, mask=mask, other=0.0).to(tl.float32)
    do = tl.load(DO + off, mask=mask, other=0.0).to(tl.float32)
    tl.store(DELTA + off_bh * N_Q + rows, tl.sum(o * do, axis=1), mask=row_ok)


@triton.jit
def _recompute_p_ds(
    q,
    k,
    v,
    do,
    lse,
    delta,
    cols,
    KPM,
    off_b,
    N_K,
    qk_scale,
    HAS_MASK: tl.constexpr,
    UPCAST: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    """P from the saved LSE, and dS = P * (dO V^T - delta), for one (query, key) tile pair.

    Both backward kernels recompute these instead of storing the N x N matrix.
    """
    s = _dot(q, tl.trans(k), UPCAST, DOT_PREC) * qk_scale
    s = _mask_scores(s, cols, KPM, off_b, N_K, HAS_MASK)
    p = tl.exp2(s - lse[:, None])
    dp = _dot(do, tl.trans(v), UPCAST, DOT_PREC)
    ds = _zero_padded(p * (dp - delta[:, None]), cols, KPM, off_b, N_K, HAS_MASK)
    return p, ds


@triton.jit
def _bwd_dkdv_kernel(
    Q,
    K,
    V,
    KPM,
    DO,
    LSE,
    DELTA,
    DK,
    DV,  #
    H,
    N_Q,
    N_K,
    qk_scale,
    sm_scale,  #
    HEAD_DIM: tl.constexpr,
    HAS_MASK: tl.constexpr,
    UPCAST: tl.constexpr,
    DOT_PREC: tl.constexpr,  #
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,  #
):
    """One program per key block: dV = P^T dO, dK = scale * dS^T Q, summed over query blocks."""
    tl.static_assert(BLOCK_D >= HEAD_DIM)
    start_n = tl.program_id(0)
    off_bh = tl.program_id(1).to(tl.int64)
    off_b = off_bh // H
    q_base = off_bh * N_Q * HEAD_DIM
    kv_base = off_bh * N_K * HEAD_DIM

    cols = start_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM
    kv_mask = (cols < N_K)[:, None] & d_ok[None, :]
    kv_off = kv_base + cols[:, None] * HEAD_DIM + offs_d[None, :]
    k = tl.load(K + kv_off, mask=kv_mask, other=0.0)
    v = tl.load(V + kv_off, mask=kv_mask, other=0.0)

    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    for start_m in range(0, N_Q, BLOCK_M):
        rows = start_m + offs_m
        row_ok = rows < N_Q
        q_mask = row_ok[:, None] & d_ok[None, :]
        q_off = q_base + rows[:, None] * HEAD_DIM + offs_d[None, :]
        q = tl.load(Q + q_off, mask=q_mask, other=0.0)
        do = tl.load(DO + q_off, mask=q_mask, other=0.0)
        # rows past N_Q: lse = +inf makes their P exactly 0
        lse = tl.load(LSE + off_bh * N_Q + rows, mask=row_ok, other=float("inf"))
        delta = tl.load(DELTA + off_bh * N_Q + rows, mask=row_ok, other=0.0)
        p, ds = _recompute_p_ds(
            q, k, v, do, lse, delta, cols, KPM, off_b, N_K, qk_scale, HAS_MASK, UPCAST, DOT_PREC
        )  # [BM, BN] each
        # -- dV += P^T dO --
        dv += _dot(tl.trans(p.to(do.dtype)), do, UPCAST, DOT_PREC)
        # -- dK += dS^T Q (the scale is applied once at the end) --
        dk += _dot(tl.trans(ds.to(q.dtype)), q, UPCAST, DOT_PREC)

    tl.store(DK + kv_off, (dk * sm_scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + kv_off, dv.to(DV.dtype.element_ty), mask=kv_mask)


@triton.jit
def _bwd_dq_kernel(
    Q,
    K,
    V,
    KPM,
    DO,
    LSE,
    DELTA,
    DQ,  #
    H,
    N_Q,
    N_K,
    qk_scale,
    sm_scale,  #
    HEAD_DIM: tl.constexpr,
    HAS_MASK: tl.constexpr,
    UPCAST: tl.constexpr,
    DOT_PREC: tl.constexpr,  #
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,  #
):
    """One program per query block: dQ = scale * dS K, summed over key blocks."""
    tl.static_assert(BLOCK_D >= HEAD_DIM)
    start_m = tl.program_id(0)
    off_bh = tl.program_id(1).to(tl.int64)
    off_b = off_bh // H
    q_base = off_bh * N_Q * HEAD_DIM
    kv_base = off_bh * N_K * HEAD_DIM

    rows = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM
    row_ok = rows < N_Q
    q_mask = row_ok[:, None] & d_ok[None, :]
    q_off = q_base + rows[:, None] * HEAD_DIM + offs_d[None, :]
    q = tl.load(Q + q_off, mask=q_mask, other=0.0)
    do = tl.load(DO + q_off, mask=q_mask, other=0.0)
    lse = tl.load(LSE + off_bh * N_Q + rows, mask=row_ok, other=float("inf"))
    delta = tl.load(DELTA + off_bh * N_Q + rows, mask=row_ok, other=0.0)

    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start_n in range(0, N_K, BLOCK_N):
        cols = start_n + offs_n
        kv_mask = (cols < N_K)[:, None] & d_ok[None, :]
        kv_off = kv_base + cols[:, None] * HEAD_DIM + offs_d[None, :]
        k = tl.load(K + kv_off, mask=kv_mask, other=0.0)
        v = tl.load(V + kv_off, mask=kv_mask, other=0.0)
        _, ds = _recompute_p_ds(q, k, v, do, lse, delta, cols, KPM, off_b, N_K, qk_scale, HAS_MASK, UPCAST, DOT_PREC)
        dq += _dot(ds.to(k.dtype), k, UPCAST, DOT_PREC)

    tl.store(DQ + q_off, (dq * sm_scale).to(DQ.dtype.element_ty), mask=q_mask)


# ---------------------------------------------------------------------------------------------
# launch configuration
# ---------------------------------------------------------------------------------------------
_JIT = {"fwd": _fwd_kernel, "dkdv": _bwd_dkdv_kernel, "dq": _bwd_dq_kernel}
_TUNED: dict[tuple[str, bool], object] = {}  # autotuned wrappers by (kernel, fp32), built on the first CUDA call


def _keep(name: str, conf: triton.Config) -> bool:
    """Prune the CUDA config grid to tiles whose sm_90 cubins do not spill registers.

    Measured with bench/compile_kernels.py (bf16, head dim 64): with 4 warps the forward spills from
    128x64 tiles on and the backward kernels from 64x64 (dK/dV) or 32x128 on, and dK/dV spills at
    64x128 even on 8 warps; small tiles gain nothing from 8 warps.
    """
    bm, bn, warps = conf.kwargs["BLOCK_M"], conf.kwargs["BLOCK_N"], conf.num_warps
    if name == "fwd":
        return (bm * bn < 128 * 64) == (warps == 4)
    if name == "dkdv" and bm * bn > 64 * 64:  # two [BLOCK_N, D] accumulators: spills even on 8 warps
        return False
    return (bm * bn <= 32 * 64) == (warps == 4)


def _cuda_configs(name: str, fp32: bool = False) -> list[triton.Config]:
    # kept small: every new (N_Q, N_K, HEAD_DIM, dtype) key benchmarks each config once
    if fp32:  # fp32 tiles run on FMA units, not tensor cores: only small tiles on 8 warps stay in registers
        return [
            triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_stages=s, num_warps=8)
            for bm, bn in _FP32_TILES[name]
            for s in (2, 3)
        ]
    if name == "fwd":  # wide query blocks, narrower key blocks (the FA2 forward shape)
        grid = [(bm, bn) for bm in (64, 128) for bn in (32, 64, 128) if bm >= bn]
        stages = (2, 3, 4)
    else:  # backward kernels hold two accumulators: keep tiles at most 64 x 128
        grid = [(bm, bn) for bm in (32, 64) for bn in (32, 64, 128) if bm * bn <= 64 * 128]
        stages = (2, 3)
    confs = [
        triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_stages=s, num_warps=w)
        for bm, bn in grid
        for s in stages
        for w in (4, 8)
    ]
    return [c for c in confs if _keep(name, c)]


# fp32 tiles (BLOCK_M, BLOCK_N) whose sm_90 cubins do not spill at head dim 64 on 8 warps
# (bench/compile_kernels.py); dK/dV holds two fp32 accumulators and needs the narrowest key blocks.
_FP32_TILES = {"fwd": ((64, 32), (32, 64)), "dkdv": ((32, 16),), "dq": ((64, 32), (32, 32))}
# One config per kernel for CUDA launches without autotuning (VICLIP_TRITON_AUTOTUNE=0).
_CUDA_FIXED = {
    "fwd": {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2},
    "dkdv": {"BLOCK_M": 32, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2},
    "dq": {"BLOCK_M": 64, "BLOCK_N": 32, "num_warps": 4, "num_stages": 2},
}
_CUDA_FIXED_FP32 = {
    name: {"BLOCK_M": tiles[0][0], "BLOCK_N": tiles[0][1], "num_warps": 8, "num_stages": 2}
    for name, tiles in _FP32_TILES.items()
}


def _kernel(name: str, on_cuda: bool, n_q: int, n_k: int, fp32: bool):
    """(kernel, meta-parameters): the autotuned kernel on CUDA (meta None: the tuner picks), else fixed blocks."""
    if not on_cuda:
        bm, bn = _interp_blocks(n_q, n_k)
        return _JIT[name], {"BLOCK_M": bm, "BLOCK_N": bn, "num_warps": 4, "num_stages": 1}
    if not autotune_enabled():
        return _JIT[name], (_CUDA_FIXED_FP32 if fp32 else _CUDA_FIXED)[name]
    if (name, fp32) not in _TUNED:
        _TUNED[name, fp32] = autotune(_JIT[name], _cuda_configs(name, fp32), key=["N_Q", "N_K", "HEAD_DIM"])
    return _TUNED[name, fp32], None


def _interp_blocks(n_q: int, n_k: int) -> tuple[int, int]:
    """Fixed blocks off-CUDA: 16 for short sequences, else 32 (fewer interpreted steps)."""

    def pick(n: int) -> int:
        return 16 if n <= 16 else 32

    return pick(n_q), pick(n_k)


def _use_cuda_path(t: torch.Tensor) -> bool:
    if _INTERPRET:
        return False
    if not t.is_cuda:
        raise RuntimeError(
            "fused_attention: tensors must be on CUDA, or TRITON_INTERPRET=1 must be set before "
            "triton is imported (CPU interpreter, for tests); got device " + str(t.device)
        )
    return True


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_padding_mask: torch.Tensor | None) -> None:
    assert q.dim() == 4 and k.dim() == 4 and v.dim() == 4, (
        f"fused_attention: q, k, v must be [B, H, N, D]; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
    )
    assert k.shape == v.shape, f"fused_attention: k and v shapes differ: {tuple(k.shape)} vs {tuple(v.shape)}"
    assert q.shape[:2] == k.shape[:2] and q.shape[3] == k.shape[3], (
        f"fused_attention: q {tuple(q.shape)} and k {tuple(k.shape)} must share B, H and D"
    )
    assert q.dtype in _DTYPES, f"fused_attention: dtype must be float32, float16 or bfloat16; got {q.dtype}"
    assert q.dtype == k.dtype == v.dtype, f"fused_attention: mixed dtypes {q.dtype}, {k.dtype}, {v.dtype}"
    assert q.device == k.device == v.device, "fused_attention: q, k, v are on different devices"
    assert q.is_contiguous() and k.is_contiguous() and v.is_contiguous(), (
        "fused_attention: q, k, v must be contiguous [B, H, N, D] (fused_attention() calls .contiguous())"
    )
    b, h, n_q, d = q.shape
    assert 1 <= d <= MAX_HEAD_DIM, f"fused_attention: head dim must be in [1, {MAX_HEAD_DIM}]; got {d}"
    assert n_q >= 1 and k.shape[2] >= 1, "fused_attention: empty sequence"
    assert b * h <= 65535, f"fused_attention: B*H = {b * h} exceeds the grid's axis-1 limit 65535"
    if key_padding_mask is not None:
        assert key_padding_mask.dtype == torch.bool, (
            f"fused_attention: key_padding_mask must be bool (True = ignore); got {key_padding_mask.dtype}"
        )
        assert key_padding_mask.shape == (b, k.shape[2]), (
            f"fused_attention: key_padding_mask must be [B, N_K] = {(b, k.shape[2])}; got {tuple(key_padding_mask.shape)}"
        )
        assert key_padding_mask.device == q.device, "fused_attention: key_padding_mask is on another device"
        assert key_padding_mask.is_contiguous(), "fused_attention: key_padding_mask must be contiguous"


def _common(q: torch.Tensor, k: torch.Tensor, key_padding_mask: torch.Tensor | None):
    b, h, n_q, d = q.shape
    n_k = k.shape[2]
    has_mask = key_padding_mask is not None
    kpm = key_padding_mask.view(torch.uint8) if has_mask else q  # dummy pointer when there is no mask
    args = {
        "H": h,
        "N_Q": n_q,
        "N_K": n_k,
        "HEAD_DIM": d,
        "HAS_MASK": has_mask,
        "UPCAST": _INTERPRET,
        "DOT_PREC": "ieee" if q.dtype == torch.float32 else "tf32",
        "BLOCK_D": max(16, triton.next_power_of_2(d)),
    }
    return b, h, n_q, n_k, kpm, args


def _launch(name: str, on_cuda: bool, grid_len: int, bh: int, n_q: int, n_k: int, *tensors, **args) -> None:
    kernel, meta = _kernel(name, on_cuda, n_q, n_k, tensors[0].dtype == torch.float32)
    axis = "BLOCK_N" if name == "dkdv" else "BLOCK_M"
    if meta is None:  # the autotuner supplies the blocks
        kernel[lambda META: (triton.cdiv(grid_len, META[axis]), bh)](*tensors, **args)
    else:
        kernel[(triton.cdiv(grid_len, meta[axis]), bh)](*tensors, **args, **meta)


# ---------------------------------------------------------------------------------------------
# launchers
# ---------------------------------------------------------------------------------------------
def attention_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_padding_mask: torch.Tensor | None, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(O [B, H, N_Q, D] in q's dtype, LSE [B, H, N_Q] fp32 in the log2 domain)."""
    _check(q, k, v, key_padding_mask)
    on_cuda = _use_cuda_path(q)
    b, h, n_q, n_k, kpm, args = _common(q, k, key_padding_mask)
    o = torch.empty_like(q)
    lse = torch.empty((b, h, n_q), device=q.device, dtype=torch.float32)
    _launch("fwd", on_cuda, n_q, b * h, n_q, n_k, q, k, v, kpm, o, lse, qk_scale=scale * LOG2E, **args)
    return o, lse


def attention_backward(
    do: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    o: torch.Tensor,
    lse: torch.Tensor,
    key_padding_mask: torch.Tensor | None,
    scale: float,
):
    """(dq, dk, dv) from dO and the forward's saved tensors."""
    _check(q, k, v, key_padding_mask)
    assert do.shape == o.shape == q.shape and do.dtype == q.dtype, (
        f"attention_backward: dO {tuple(do.shape)} {do.dtype} must match O {tuple(o.shape)} {q.dtype}"
    )
    assert do.is_contiguous() and o.is_contiguous() and lse.is_contiguous(), (
        "attention_backward: dO, O and LSE must be contiguous"
    )
    on_cuda = _use_cuda_path(q)
    b, h, n_q, n_k, kpm, args = _common(q, k, key_padding_mask)

    delta = torch.empty_like(lse)
    pre_bm = 16 if _INTERPRET else 64
    _bwd_preprocess_kernel[(triton.cdiv(n_q, pre_bm), b * h)](
        o, do, delta, n_q, HEAD_DIM=q.shape[3], BLOCK_M=pre_bm, BLOCK_D=args["BLOCK_D"]
    )

    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    common = {"qk_scale": scale * LOG2E, "sm_scale": scale, **args}
    _launch("dkdv", on_cuda, n_k, b * h, n_q, n_k, q, k, v, kpm, do, lse, delta, dk, dv, **common)
    _launch("dq", on_cuda, n_q, b * h, n_q, n_k, q, k, v, kpm, do, lse, delta, dq, **common)
    return dq, dk, dv


class FusedAttention(torch.autograd.Function):
    """O = softmax(q k^T * scale) v; saves q, k, v, O and the LSE, and recomputes P in the backward."""

    @staticmethod
    def forward(ctx, q, k, v, key_padding_mask=None, scale=None):
        scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
        o, lse = attention_forward(q, k, v, key_padding_mask, scale)
        ctx.save_for_backward(q, k, v, o, lse, key_padding_mask)
        ctx.scale = scale
        return o

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, do):
        q, k, v, o, lse, key_padding_mask = ctx.saved_tensors
        dq, dk, dv = attention_backward(do.contiguous(), q, k, v, o, lse, key_padding_mask, ctx.scale)
        return dq, dk, dv, None, None


def fused_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_padding_mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(q k^T * scale) v for [B, H, N, D] tensors (scale defaults to D**-0.5).

    key_padding_mask: [B, N_K] bool, True = ignore that key. Inputs are made contiguous here.
    """
    if key_padding_mask is not None:
        key_padding_mask = key_padding_mask.contiguous()
    return FusedAttention.apply(q.contiguous(), k.contiguous(), v.contiguous(), key_padding_mask, scale)


__all__ = [
    "MAX_HEAD_DIM",
    "FusedAttention",
    "attention_backward",
    "attention_forward",
    "attention_reference",
    "fused_attention",
]
