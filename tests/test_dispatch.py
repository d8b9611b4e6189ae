"""Kernel dispatch: which path runs where, and the torch path's agreement with the model's layout."""

import logging

import pytest
import torch

from viclip.kernels import dispatch


def test_auto_is_torch_on_cpu_and_torch_is_torch():
    cpu = torch.device("cpu")
    assert dispatch.resolve("auto", cpu) == "torch"
    assert dispatch.resolve("torch", cpu) == "torch"


def test_triton_on_cpu_without_the_interpreter_is_refused(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        dispatch.resolve("triton", torch.device("cpu"))


def test_unknown_mode_names_the_key():
    with pytest.raises(ValueError, match="model.kernels"):
        dispatch.resolve("cuda", torch.device("cpu"))


def test_first_call_logs_the_path(caplog):
    dispatch._announced.clear()
    q = torch.randn(1, 2, 5, 8)
    with caplog.at_level(logging.INFO, logger="viclip"):
        dispatch.attention(q, q, q, "auto")
        dispatch.attention(q, q, q, "auto")
    assert [r.getMessage() for r in caplog.records].count("kernels: attention runs on the torch path") == 1


def test_torch_attention_is_softmax_attention():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8) for _ in range(3))
    ref = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, -1) @ v
    assert torch.allclose(dispatch.attention(q, k, v, "torch"), ref, atol=1e-6)


def test_patch_embed_layout_and_gather():
    """Token n*T + t is patch n of frame t, with pos[n] and temporal[t] added; keep gathers rows."""
    torch.manual_seed(0)
    b, t, p, size, w = 2, 3, 4, 8, 5
    video = torch.randn(b, t, 3, size, size)
    weight, pos, temporal = torch.randn(w, 3, 1, p, p), torch.randn(4, w), torch.randn(1, t, w)
    out = dispatch.patch_embed_torch(video, None, weight, pos, temporal)
    assert out.shape == (b, 4 * t, w)
    n, f = 3, 2  # bottom-right patch of frame 2
    patch = video[:, f, :, p:, p:]
    expected = torch.einsum("bchw,ochw->bo", patch, weight[:, :, 0]) + pos[n] + temporal[0, f]
    assert torch.allclose(out[:, n * t + f], expected, atol=1e-5)
    keep = torch.tensor([[0, 5, 11], [1, 2, 3]])
    kept = dispatch.patch_embed_torch(video, keep, weight, pos, temporal)
    assert torch.equal(kept, torch.stack([out[i, keep[i]] for i in range(b)]))
