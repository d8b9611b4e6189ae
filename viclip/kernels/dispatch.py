"""One function per hot op; the kernel path is chosen here, never in model code.

`kernels` (a model config key): "torch" runs the plain PyTorch path (SDPA
attention; patch embedding by convolution then gather); "triton" runs our
Triton kernels (on CUDA, or on the CPU under TRITON_INTERPRET=1 for tests);
"auto" takes Triton on CUDA and torch elsewhere. The first call of each op
logs which path ran.

The first Triton call on a CUDA device at a dtype first runs the kernels'
self-check (`viclip.kernels.selfcheck`): both kernels, forward and backward,
against their torch references on one small shape. It raises if a kernel is
off and logs its errors otherwise; `VICLIP_KERNEL_SELFCHECK=0` skips it.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F

from viclip.model.masking import gather_tokens

log = logging.getLogger("viclip")
MODES = ("auto", "triton", "torch")
SELFCHECK_ENV = "VICLIP_KERNEL_SELFCHECK"
_announced: set[tuple[str, str]] = set()


def _interpreter() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def resolve(mode: str, device: torch.device) -> str:
    """The path an op takes for tensors on `device`."""
    if mode not in MODES:
        raise ValueError(f"model.kernels: unknown mode {mode!r} (known: {', '.join(MODES)})")
    if mode == "torch":
        return "torch"
    on_gpu = device.type == "cuda"
    if mode == "auto":
        return "triton" if on_gpu and _triton_available() else "torch"
    if not (on_gpu or _interpreter()):
        raise RuntimeError(
            "model.kernels is 'triton' but the tensors are not on CUDA and TRITON_INTERPRET=1 is not "
            "set; use 'auto' or 'torch' on CPU"
        )
    if not _triton_available():
        raise RuntimeError("model.kernels is 'triton' but triton cannot be imported")
    return "triton"


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _announce(op: str, path: str) -> None:
    if (op, path) not in _announced:
        _announced.add((op, path))
        log.info("kernels: %s runs on the %s path", op, path)


def _selfcheck(device: torch.device, dtype: torch.dtype) -> None:
    """Before a Triton kernel first runs on a CUDA device at `dtype`: check it against torch (cached after)."""
    if device.type != "cuda":  # the interpreter runs only in tests, which check the kernels themselves
        return
    value = os.environ.get(SELFCHECK_ENV, "1")
    if value not in ("0", "1"):
        raise ValueError(f"{SELFCHECK_ENV} must be 0 or 1; got {value!r}")
    if value == "0":
        if ("self-check", "skipped") not in _announced:
            _announced.add(("self-check", "skipped"))
            log.warning("kernels: the Triton kernel self-check is skipped (%s=0)", SELFCHECK_ENV)
        return
    from viclip.kernels.selfcheck import check

    check(device, dtype)


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mode: str, attn_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """q, k, v: [B, H, N, D] -> [B, H, N, D]. A float attn_mask (the text tower's causal mask) takes the torch path."""
    path = "torch" if attn_mask is not None else resolve(mode, q.device)
    _announce("attention", path)
    if path == "triton":
        _selfcheck(q.device, q.dtype)
        from viclip.kernels.attention import fused_attention

        return fused_attention(q, k, v)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


def patch_embed(
    video: torch.Tensor,
    keep: torch.Tensor | None,
    weight: torch.Tensor,
    pos: torch.Tensor,
    temporal: torch.Tensor,
    mode: str,
) -> torch.Tensor:
    """Kept tokens' embeddings [B, K, W] (all L = N*T tokens in (n t) order when keep is None)."""
    path = resolve(mode, video.device)
    _announce("patch embedding", path)
    if path == "triton":
        if video.is_cuda:  # under autocast the kernels run at the autocast dtype (masked_patch_embed casts)
            autocast = torch.is_autocast_enabled("cuda")
            _selfcheck(video.device, torch.get_autocast_dtype("cuda") if autocast else video.dtype)
        from viclip.kernels.patch_embed import masked_patch_embed

        return masked_patch_embed(video, keep, weight, pos, temporal)
    return patch_embed_torch(video, keep, weight, pos, temporal)


def patch_embed_torch(
    video: torch.Tensor, keep: torch.Tensor | None, weight: torch.Tensor, pos: torch.Tensor, temporal: torch.Tensor
) -> torch.Tensor:
    """Embed every patch by convolution, add both tables, then gather the kept ones (the reference path)."""
    b, t = video.shape[:2]
    x = F.conv3d(video.permute(0, 2, 1, 3, 4), weight, stride=weight.shape[2:])  # [B, W, T, h, w]
    w = x.shape[1]
    x = x.permute(0, 2, 3, 4, 1).reshape(b, t, -1, w) + pos.to(x.dtype)  # [B, T, N, W]
    table = temporal.mean(1, keepdim=True) if t == 1 else temporal[:, :t]
    x = x + table.unsqueeze(2).to(x.dtype)
    x = x.permute(0, 2, 1, 3).reshape(b, -1, w)  # (n t): a position's frames are adjacent
    return x if keep is None else gather_tokens(x, keep)
