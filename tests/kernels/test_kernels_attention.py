"""FlashAttention-style forward and paged decode attention in the interpreter, against plain
fp32 attention in torch."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import decode_attention as dec
from kernels import flash_attention as fa


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shape", [(1, 4, 2, 33, 47, 32), (2, 2, 2, 40, 40, 16)])   # GQA + ragged; MHA square
def test_flash_forward(dtype, causal, shape, poisoned, assert_close):
    b, h, hk, sq, skv, d = shape
    q, k, v = fa.make_inputs(b, h, hk, sq, skv, d, dtype, "cpu", seed=sum(shape) + causal)
    out = poisoned(q.shape, dtype)
    fa.attention(q, k, v, causal, out=out)
    assert_close(out, fa.reference(q, k, v, causal))


def test_flash_gqa_equals_repeated_heads(poisoned):
    """GQA with kv_heads = heads/4 gives exactly the attention of the KV heads repeated 4 times."""
    q, k, v = fa.make_inputs(1, 8, 2, 32, 32, 16, torch.float16, "cpu", seed=9)
    o1, o2 = poisoned(q.shape, q.dtype), poisoned(q.shape, q.dtype)
    fa.attention(q, k, v, True, out=o1)
    fa.attention(q, k.repeat_interleave(4, 1).contiguous(), v.repeat_interleave(4, 1).contiguous(), True, out=o2)
    assert torch.equal(o1, o2)


def test_flash_rejects_bad_shapes():
    q, k, v = fa.make_inputs(1, 3, 2, 16, 16, 16, torch.float16, "cpu", seed=0)
    with pytest.raises(ValueError):
        fa.attention(q, k, v)                               # 3 heads over 2 KV heads
    q, k, v = fa.make_inputs(1, 2, 2, 32, 16, 16, torch.float16, "cpu", seed=0)
    with pytest.raises(ValueError):
        fa.attention(q, k, v, causal=True)                  # more queries than keys


def test_flash_flops_convention():
    """FlashAttention: 4 B H S^2 d forward, half of it causal."""
    assert fa.flops(2, 16, 1024, 1024, 128, False) == 4 * 2 * 16 * 1024 ** 2 * 128
    assert fa.flops(2, 16, 1024, 1024, 128, True) == 2 * 2 * 16 * 1024 ** 2 * 128


@pytest.mark.parametrize("kv_dtype", ["fp16", "int4", "int2"])
@pytest.mark.parametrize("shape", [(3, 4, 2, (5, 40, 33), 32), (2, 8, 1, (16, 17), 64)])   # GQA 2 and MQA
def test_decode_paged(kv_dtype, shape, poisoned, assert_close):
    b, h, hk, lens, d = shape
    kw, k, v = dec.make_inputs(b, h, hk, list(lens), d, kv_dtype, seed=len(lens) + d)
    out = poisoned(kw["q"].shape, torch.float16)
    dec.decode(out=out, **kw)
    assert_close(out, dec.reference(kw["q"], k, v, lens))


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([2, 4]), st.sampled_from([8, 16, 32]), st.integers(0, 2**31 - 1))
def test_kv_quantization_error_within_half_step(bits, group, seed):
    """Asymmetric per-group codes: every value within half a step of its dequantised code."""
    x = torch.randn(3, 5, 64, generator=torch.Generator().manual_seed(seed)).half()
    p, s, z = dec.quantize_kv(x, bits, group)
    assert p.shape[-1] == 64 * bits // 8 and s.shape[-1] == 64 // group
    err = (dec.dequantize_kv(p, s, z, bits, group) - x.float()).abs()
    step = s.float().repeat_interleave(group, -1)
    # half a step, plus the rounding of the fp16 zero point and scale
    assert (err <= 0.5 * step + 2e-3 * x.float().abs().amax(-1, keepdim=True) + 1e-3).all()


def test_kv_bytes_scale_with_bits():
    """int4 KV is a quarter of fp16 plus two fp16 per group (scale and zero)."""
    f16 = dec.kv_bytes(1, 8, 1000, 128, "fp16")
    i4 = dec.kv_bytes(1, 8, 1000, 128, "int4", group=32)
    assert f16 == 2 * 1000 * 8 * 128 * 2
    assert i4 == 2 * 1000 * 8 * (128 * 0.5 + 128 // 32 * 4)
