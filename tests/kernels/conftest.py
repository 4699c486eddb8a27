"""Shared checks for the kernel tests, as fixtures: outputs start poisoned (NaN) so a tile the
kernel forgets to write fails, and errors are relative to the reference's largest magnitude,
with a tolerance per dtype."""
import pytest
import torch

# max |out - ref| / max |ref|: output rounding (fp16 2^-11, bf16 2^-8) plus fp32 accumulation order
TOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float32: 1e-5}


def _poisoned(shape, dtype):
    return torch.full(shape, float("nan"), dtype=dtype)


def _assert_close(out, ref, dtype=None):
    dtype = dtype or out.dtype
    assert not torch.isnan(out).any(), "kernel left poisoned (NaN) outputs unwritten"
    scale = ref.float().abs().max().clamp(min=1e-6)
    err = ((out.float() - ref.float()).abs().max() / scale).item()
    assert err <= TOL[dtype], f"relative error {err:.3g} > {TOL[dtype]} for {dtype}"


@pytest.fixture
def poisoned():
    return _poisoned


@pytest.fixture
def assert_close():
    return _assert_close
