"""Dense Triton GEMM in the interpreter against an fp32 torch product."""
import pytest
import torch

from kernels import gemm
from kernels.common import FP8, fp8_supported


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("shape", [(64, 64, 64), (37, 50, 70)])     # tile-aligned and ragged edges
def test_gemm_matches_reference(dtype, shape, poisoned, assert_close):
    m, n, k = shape
    a, b = gemm.make_inputs(m, n, k, dtype, dev="cpu", seed=hash((dtype, shape)) % 2**31)
    out = poisoned((m, n), a.dtype)
    gemm.matmul(a, b, out=out)
    assert_close(out, gemm.reference(a, b))


@pytest.mark.skipif(not fp8_supported(), reason="no float8_e4m3fn in this torch")
def test_fp8_gemm_writes_fp16(poisoned, assert_close):
    a, b = gemm.make_inputs(40, 48, 64, "fp8", dev="cpu", seed=3)
    assert a.dtype == FP8
    out = poisoned((40, 48), torch.float16)
    gemm.matmul(a, b, out=out)
    assert_close(out, gemm.reference(a, b))


def test_strided_inputs(poisoned, assert_close):
    """B given as a transposed view: the kernel follows strides rather than assuming row-major."""
    g = torch.Generator().manual_seed(5)
    a = torch.randn(33, 40, generator=g).half()
    bt = torch.randn(24, 40, generator=g).half()
    out = poisoned((33, 24), torch.float16)
    gemm.matmul(a, bt.t(), out=out)
    assert_close(out, gemm.reference(a, bt.t()))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        gemm.matmul(torch.randn(4, 5).half(), torch.randn(6, 4).half())


def test_scenario_counts():
    sc = gemm.scenario(16, 8192, 4096, "bf16")
    assert sc == {"kind": "gemm", "m": 16, "n": 8192, "k": 4096, "dtype": "bf16"}
    c = gemm.cases(quick=True)[0]
    assert c.flops == 2.0 * c.workload["m"] * c.workload["n"] * c.workload["k"]
