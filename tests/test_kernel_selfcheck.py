"""The kernels' first-use self-check (viclip.kernels.selfcheck) on the CPU interpreter, and its dispatch hook."""

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported (anywhere in this process)

import logging

import pytest
import torch

pytest.importorskip("triton", reason="triton is not importable; the kernels cannot run")

from viclip.kernels import attention as A
from viclip.kernels import dispatch, selfcheck
from viclip.kernels.patch_embed import masked_patch_embed

if not A._INTERPRET:  # another test module imported triton kernels before TRITON_INTERPRET was set
    pytest.skip(
        "viclip.kernels.attention was imported without TRITON_INTERPRET=1; run this file on its own",
        allow_module_level=True,
    )

CPU = torch.device("cpu")


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the gradient times `factor` backward: a kernel whose backward alone is off."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def _wrong(kernel, direction, factor=1.01):
    """The real kernel with its output (forward) or every input gradient (backward) scaled by `factor`."""
    if direction == "forward":  # the gradients stay the kernel's own
        return lambda *args: (out := kernel(*args)) + (factor - 1) * out.detach()
    return lambda *args: _ScaleGrad.apply(kernel(*args), factor)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_real_kernels_pass(dtype, caplog):
    with caplog.at_level(logging.INFO, logger="viclip"):
        result = selfcheck.check(CPU, dtype)
    assert result.passed and result.dtype == dtype and result.tolerance == selfcheck.TOLERANCES[dtype]
    assert set(result.errors) == {f"{k} {d}" for k in ("patch embedding", "attention") for d in ("forward", "backward")}
    assert all(0 <= e <= result.tolerance / 3 for e in result.errors.values()), result.errors  # the headroom
    if dtype == torch.float32:  # only the summation order differs from the fp64 reference
        assert max(result.errors.values()) < 1e-5
    if caplog.records:  # logged on the run that measured it (an earlier test may have filled the cache)
        assert [r.levelname for r in caplog.records] == ["INFO"]
        assert caplog.records[0].getMessage() == result.summary()
        assert "passed" in result.summary() and "attention backward" in result.summary()


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("kernel", ["attention", "patch embedding"])
def test_a_kernel_off_by_one_percent_stops_with_the_way_out(kernel, direction, caplog):
    real = {"attention": A.fused_attention, "patch embedding": masked_patch_embed}[kernel]
    wrong = {"attention" if kernel == "attention" else "patch_embed": _wrong(real, direction)}
    with caplog.at_level(logging.INFO, logger="viclip"), pytest.raises(selfcheck.KernelSelfCheckError) as err:
        selfcheck.check(CPU, torch.float32, **wrong)
    message = str(err.value)
    assert isinstance(err.value, RuntimeError)
    assert f"{kernel} {direction}" in message and "`model.kernels: torch`" in message
    other = "backward" if direction == "forward" else "forward"
    assert f"{kernel} {other}" not in message  # only what is off is named
    assert "off by 1.0" in message  # 1% of the reference's largest value: 1.00e-02
    assert [r.levelname for r in caplog.records] == ["ERROR"]


def test_bf16_tolerance_still_catches_a_ten_percent_error():
    with pytest.raises(selfcheck.KernelSelfCheckError, match=r"attention backward \(d[qkv]\) is off by"):
        selfcheck.check(CPU, torch.bfloat16, attention=_wrong(A.fused_attention, "backward", 1.1))


def test_a_kernel_that_raises_is_reported_the_same_way():
    def broken(q, k, v):
        raise AssertionError("no such tile")

    with pytest.raises(selfcheck.KernelSelfCheckError, match=r"attention forward kernel raised .*model.kernels: torch"):
        selfcheck.check(CPU, torch.float32, attention=broken)


def test_the_outcome_is_cached_per_device_dtype_and_kernels():
    calls = []

    def counted(q, k, v):
        calls.append(q.dtype)
        return A.fused_attention(q, k, v)

    first = selfcheck.check(CPU, torch.float32, attention=counted)
    assert calls == [torch.float32]
    assert selfcheck.check("cpu", torch.float32, attention=counted) is first  # nothing ran again
    assert calls == [torch.float32]

    wrong = _wrong(counted, "forward")
    for _ in range(2):  # a failure is cached too: the second call raises again without running
        with pytest.raises(selfcheck.KernelSelfCheckError):
            selfcheck.check(CPU, torch.float32, attention=wrong)
    assert calls == [torch.float32] * 2


def test_unsupported_dtype_is_refused():
    with pytest.raises(ValueError, match="float64"):
        selfcheck.check(CPU, torch.float64)


def test_the_callers_modes_do_not_leak_in_or_out(monkeypatch):
    """A first call from eval code (inference mode) under autocast still checks autograd at the asked dtype."""
    monkeypatch.setenv("VICLIP_TRITON_AUTOTUNE", "1")
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        result = selfcheck.check(CPU, torch.float16, attention=lambda *a: A.fused_attention(*a))
    assert result.passed and result.dtype == torch.float16 and result.errors["attention backward"] > 0
    assert os.environ["VICLIP_TRITON_AUTOTUNE"] == "1"  # fixed configs only during the check


@pytest.fixture
def check_calls(monkeypatch):
    """Records the dispatch hook's calls to the self-check instead of running it."""
    calls = []
    monkeypatch.setattr(selfcheck, "check", lambda device, dtype: calls.append((device, dtype)))
    return calls


@pytest.mark.parametrize("mode", ["auto", "torch", "triton"])
def test_dispatch_hook_is_a_no_op_on_cpu(mode, check_calls):
    q = torch.randn(1, 2, 5, 16)
    video, weight = torch.randn(1, 2, 3, 16, 16), torch.randn(8, 3, 1, 8, 8)
    pos, temporal = torch.randn(4, 8), torch.randn(1, 2, 8)
    dispatch.attention(q, q, q, mode)
    dispatch.patch_embed(video, None, weight, pos, temporal, mode)
    assert check_calls == []


def test_dispatch_hook_on_cuda_checks_the_calls_device_and_dtype(check_calls, monkeypatch, caplog):
    gpu = torch.device("cuda", 0)
    dispatch._selfcheck(gpu, torch.bfloat16)
    assert check_calls == [(gpu, torch.bfloat16)]
    monkeypatch.setenv(dispatch.SELFCHECK_ENV, "0")
    dispatch._announced.discard(("self-check", "skipped"))
    with caplog.at_level(logging.INFO, logger="viclip"):
        dispatch._selfcheck(gpu, torch.float32)
        dispatch._selfcheck(gpu, torch.float32)
    assert check_calls == [(gpu, torch.bfloat16)]
    assert [r.getMessage() for r in caplog.records] == [
        "kernels: the Triton kernel self-check is skipped (VICLIP_KERNEL_SELFCHECK=0)"
    ]
    monkeypatch.setenv(dispatch.SELFCHECK_ENV, "no")
    with pytest.raises(ValueError, match="VICLIP_KERNEL_SELFCHECK must be 0 or 1"):
        dispatch._selfcheck(gpu, torch.float32)
