"""STREAM probes and the fused LayerNorm in the interpreter."""
import pytest
import torch

from kernels import bandwidth, layernorm


@pytest.mark.parametrize("op", bandwidth.OPS)
def test_stream_ops(op, assert_close):
    a, b, c = bandwidth.make_inputs(op, 1000, "cpu", seed=bandwidth.OPS.index(op))
    a.fill_(float("nan"))
    bandwidth.stream(op, a, b, c)
    assert_close(a, bandwidth.reference(op, a, b, c), torch.float32 if op != "read" else torch.float16)


def test_stream_scenarios_follow_stream_convention():
    """bytes = one array; GB/s counts arrays moved: copy 2, triad 3 (STREAM)."""
    n = 2 ** 20
    assert bandwidth.scenario("triad", n)["bytes"] == 4 * n
    cases = {c.kernel: c for c in bandwidth.cases(quick=True)}
    assert cases["triton.stream.triad"].bytes == 3 * 4 * bandwidth.SIZES_QUICK[0]
    assert cases["triton.stream.copy"].bytes == 2 * 4 * bandwidth.SIZES_QUICK[0]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("n", [300, 512])
def test_layernorm(dtype, n, poisoned, assert_close):
    x, w, b = layernorm.make_inputs(5, n, dtype, "cpu", seed=n)
    y = poisoned(x.shape, dtype)
    layernorm.layernorm(x, w, b, out=y)
    assert_close(y, layernorm.reference(x, w, b))
