"""int4 and FP6 e3m2 formats (exhaustive over all codes) and the weight-only low-bit GEMM."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kernels import lowbit, lowbit_gemm


def test_fp6_table_closed_form_every_code():
    """All 64 codes: (-1)^s 2^(e-3) (1 + m/4), subnormals 2^-2 (m/4) at e = 0 (FP6-LLM e3m2)."""
    for code in range(64):
        s, e, m = code >> 5, (code >> 2) & 7, code & 3
        want = (2.0 ** (e - 3) * (1 + m / 4)) if e else 2.0 ** -2 * (m / 4)
        assert lowbit.FP6_TABLE[code] == (-want if s else want)
    assert lowbit.FP6_TABLE.max() == 28.0 and lowbit.FP6_TABLE[1] == 1 / 16


def test_fp6_encode_roundtrips_every_code():
    codes = np.arange(64)
    back = lowbit.fp6_encode(lowbit.FP6_TABLE[codes])
    same = lowbit.FP6_TABLE[back] == lowbit.FP6_TABLE[codes]        # -0 and +0 are one value
    assert same.all()


def test_fp6_pack_unpack_every_code_in_every_slot():
    """Each code at each of the 4 positions of a 3-byte group survives packing."""
    codes = np.stack([np.roll(np.arange(64), s) for s in range(4)], axis=0).astype(np.uint8)   # [4, 64]
    packed = lowbit.pack_fp6(codes)
    assert packed.shape == (3, 64) and packed.dtype == np.uint8
    assert (lowbit.unpack_fp6(packed) == codes).all()


def test_int4_pack_unpack_every_code_in_every_slot():
    codes = np.stack([(np.arange(16) + s) % 16 for s in range(8)], axis=0).astype(np.uint8)    # [8, 16]
    packed = lowbit.pack_int4(codes)
    assert packed.shape == (1, 16) and packed.dtype == np.int32
    assert (lowbit.unpack_int4(packed) == codes).all()


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.integers(1, 40), elements=st.floats(-40, 40, allow_nan=False)))
def test_fp6_encode_is_nearest(x):
    """The chosen code is as close as any representable value (saturating at +-28)."""
    got = lowbit.FP6_TABLE[lowbit.fp6_encode(x)]
    clipped = np.clip(x, -28, 28)
    best = np.abs(lowbit.FP6_TABLE[None, :] - clipped[:, None]).min(axis=1)
    assert np.all(np.abs(got - clipped) <= best + 1e-12)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_int4_quantize_error_within_half_step(groups, n, seed):
    """Symmetric per-group int4: every weight is within half a step (scale/2) of its code's value."""
    w = np.random.default_rng(seed).standard_normal((8 * groups * 4, n)).astype(np.float32)
    packed, scales = lowbit.quantize_int4(w, group_size=32)
    wq = lowbit.dequantize_int4(packed, scales, 32)
    step = np.repeat(scales.astype(np.float32), 32, axis=0)
    assert np.all(np.abs(wq - w) <= 0.5 * step * (1 + 1e-3) + 1e-6)


@pytest.mark.parametrize("fmt", ["int4", "fp6"])
@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("m", [1, 16, 33])                 # decode-skinny and multi-tile m
def test_lowbit_gemm_matches_dequantised_reference(fmt, dtype, m, poisoned, assert_close):
    a, p, s, w = lowbit_gemm.make_inputs(m, 48, 256, fmt, 128, dtype, dev="cpu", seed=m)
    out = poisoned((m, 48), a.dtype)
    if fmt == "int4":
        lowbit_gemm.matmul_int4(a, p, s, 128, out=out)
    else:
        lowbit_gemm.matmul_fp6(a, p, s, out=out)
    assert_close(out, lowbit_gemm.reference(a, w))


def test_int4_group_size_64(poisoned, assert_close):
    a, p, s, w = lowbit_gemm.make_inputs(8, 32, 128, "int4", 64, "fp16", dev="cpu", seed=1)
    assert s.shape == (2, 32)
    out = poisoned((8, 32), torch.float16)
    lowbit_gemm.matmul_int4(a, p, s, 64, out=out)
    assert_close(out, lowbit_gemm.reference(a, w))


def test_weight_bytes_in_cases():
    """int4 stores 4 bits and fp6 6 bits per weight (scales aside)."""
    for c in lowbit_gemm.cases(quick=True):
        w = c.workload
        assert c.extra["weight_bytes"] == w["n"] * w["k"] * {"int4": 0.5, "fp6": 0.75}[w["w_dtype"]]
