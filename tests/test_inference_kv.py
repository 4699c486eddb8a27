"""KV-cache arithmetic: bytes per token from the model's dims, quantised formats with their group
scales, paged allocation and the capacity limits (closed forms, and properties)."""
import math

import pytest
from hypothesis import given, settings, strategies as st

from sim.models import load_model
from sim.techniques import kv_cache as kv


def test_llama2_7b_fp16_is_half_a_mebibyte_per_token():
    # 2 (K,V) x 32 layers x 32 heads x 128 head_dim x 2 bytes = 524,288 B (TECHNIQUES.md sec. 3, KVQuant check)
    m = load_model("llama-2-7b")
    lay = kv.layout(m, "fp16")
    assert lay.bytes_per_token == 2 * 32 * 32 * 128 * 2 == 512 * 1024


def test_gqa_divides_by_the_group_size():
    # LLaMA-2-70B: 8 KV heads for 64 query heads: 2 x 80 x 8 x 128 x 2 B
    m = load_model("llama-2-70b")
    assert kv.layout(m, "fp16").bytes_per_token == 2 * 80 * 8 * 128 * 2


@pytest.mark.parametrize("dtype,group,expected", [
    ("fp16", 128, 2.0), ("fp8", 128, 1.0), ("int8", 128, 1 + 4 / 128),
    ("int4", 128, 0.5 + 4 / 128), ("int2", 32, 0.25 + 4 / 32), ("int2", None, 0.25),
])
def test_element_bytes_include_group_scale_and_zero(dtype, group, expected):
    assert kv.kv_elem_bytes(dtype, group) == pytest.approx(expected)


def test_unknown_kv_dtype_is_an_error():
    with pytest.raises(ValueError, match="unknown KV dtype"):
        kv.kv_elem_bytes("int5")


def test_pages_round_up_and_fragmentation():
    lay = kv.KVLayout(bytes_per_token=100.0, full_bytes_per_token=400.0, block_size=16)
    assert lay.seq_bytes(16) == 1600
    assert lay.seq_bytes(17) == 3200                    # a second page for one token
    assert lay.fragmentation(17) == pytest.approx(15 / 32)
    assert lay.seq_bytes(0) == 0


def test_residual_window_is_kept_at_full_precision():
    lay = kv.KVLayout(bytes_per_token=10.0, full_bytes_per_token=40.0, residual=32, block_size=16)
    # 32 recent tokens at 40 B + 68 older ones in 5 pages of 16 at 10 B
    assert lay.seq_bytes(100) == 32 * 40 + 80 * 10


def test_tp_splits_kv_heads_and_replicates_beyond_them():
    m = load_model("llama-2-70b")                      # 8 KV heads
    assert kv.kv_shards(m, tp=4, pp=1) == 4
    assert kv.kv_shards(m, tp=16, pp=2) == 16          # 8 heads over 16 ranks: each holds one (replicated), x2 stages


@settings(max_examples=60, deadline=None)
@given(free=st.floats(1e6, 1e11), bs=st.sampled_from([1, 8, 16, 32]), batch=st.integers(1, 64),
       bpt=st.floats(1e3, 1e6))
def test_max_context_is_the_largest_that_fits(free, bs, batch, bpt):
    lay = kv.KVLayout(bytes_per_token=bpt, full_bytes_per_token=2 * bpt, block_size=bs)
    c = kv.max_context(free, lay, batch)
    assert batch * lay.seq_bytes(c) <= free * (1 + 1e-12)
    assert batch * lay.seq_bytes(c + bs) > free                      # one more page would not fit


@settings(max_examples=60, deadline=None)
@given(free=st.floats(1e6, 1e11), ctx=st.integers(1, 100_000), bpt=st.floats(1e3, 1e6))
def test_max_batch_is_the_largest_that_fits(free, ctx, bpt):
    lay = kv.KVLayout(bytes_per_token=bpt, full_bytes_per_token=2 * bpt)
    b = kv.max_batch(free, lay, ctx)
    assert b * lay.seq_bytes(ctx) <= free
    assert (b + 1) * lay.seq_bytes(ctx) > free


def test_quantised_kv_multiplies_the_batch_by_the_byte_ratio():
    # same free memory: int2 pages (group 32) hold 2 / (0.25 + 0.125) = 5.33x the tokens of fp16 pages
    m = load_model("llama-2-7b")
    f16, i2 = kv.layout(m, "fp16"), kv.layout(m, "int2", group_size=32)
    free = 60e9
    ratio = kv.blocks_total(free, i2) / kv.blocks_total(free, f16)
    assert ratio == pytest.approx(2 / 0.375, rel=1e-3)
    per_seq_i2 = 4096 * 2 * 32 * 32 * 128 * 0.375
    assert kv.max_batch(free, i2, 4096) == math.floor(free / per_seq_i2)
