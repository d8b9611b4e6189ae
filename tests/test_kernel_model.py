"""A whole ViCLIP vision tower, forward and backward, on the Triton kernels vs the torch path.

Runs in the Triton interpreter on CPU (conftest sets TRITON_INTERPRET=1 when
there is no GPU, before triton is first imported).
"""

import os

import pytest
import torch

pytest.importorskip("triton")
if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs the Triton interpreter (CPU tensors)", allow_module_level=True)

from tiny_model import tiny

from viclip.model.viclip import ViCLIP, ViCLIPConfig  # noqa: E402

TINY = tiny(num_frames=3, vision_layers=2)


def run(kernels: str, video: torch.Tensor, keep: torch.Tensor | None):
    torch.manual_seed(0)
    model = ViCLIP(ViCLIPConfig.from_dict({**TINY, "kernels": kernels}))
    out = model.vision_encoder(video, keep=keep)
    out.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in model.vision_encoder.named_parameters() if p.grad is not None}
    return out.detach(), grads


@pytest.mark.parametrize("masked", [False, True])
def test_vision_tower_triton_matches_torch(masked, caplog):
    from viclip.kernels import dispatch

    dispatch._announced.clear()
    torch.manual_seed(1)
    video = torch.randn(2, 3, 3, 16, 16)  # 4 patches x 3 frames = 12 tokens
    keep = torch.tensor([[0, 3, 4, 9, 11], [1, 2, 5, 6, 10]]) if masked else None
    ref_out, ref_grads = run("torch", video, keep)
    with caplog.at_level("INFO", logger="viclip"):
        out, grads = run("triton", video, keep)
    paths = {r.getMessage() for r in caplog.records}
    assert {"kernels: attention runs on the triton path", "kernels: patch embedding runs on the triton path"} <= paths
    assert torch.allclose(out, ref_out, atol=1e-5)
    assert grads.keys() == ref_grads.keys() and "conv1.weight" in grads and "temporal_positional_embedding" in grads
    for name in ref_grads:
        assert torch.allclose(grads[name], ref_grads[name], atol=1e-5, rtol=1e-4), name


def test_vision_tower_bf16_autocast_error_at_most_twice_torch():
    """Under bf16 autocast (the training setting), the Triton tower's error against the fp32 torch tower
    is at most twice the torch tower's own bf16 error, for the output and every parameter gradient."""
    torch.manual_seed(2)
    video = torch.randn(2, 3, 3, 16, 16)
    keep = torch.tensor([[0, 2, 5, 7, 8, 11], [1, 3, 4, 6, 9, 10]])
    exact_out, exact = run("torch", video, keep)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch_out, torch_bf16 = run("torch", video, keep)
        out, grads = run("triton", video, keep)
    assert out.dtype == torch_out.dtype

    def err(a, b):
        return (a.float() - b.float()).abs().max().item()

    # atol: about one bf16 ulp of the largest values, for entries where torch happens to round exactly
    assert err(out, exact_out) <= 2 * err(torch_out, exact_out) + 2**-7 * exact_out.abs().max().item()
    assert grads.keys() == exact.keys()
    for name in exact:
        bound = 2 * err(torch_bf16[name], exact[name]) + 2**-7 * exact[name].abs().max().item()
        assert err(grads[name], exact[name]) <= bound, name
