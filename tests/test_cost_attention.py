"""Attention cost model: FLOP convention, traffic facts (naive vs tiled, GQA, causal), decode regime."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cost import _PRICERS
from sim.cost.attention import attention_flops, causal_fraction, price_attention
from sim.errors import InputError
from helpers import inline_device
from sim.hardware import load_device
from sim.ops import Attention

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
H100 = load_device("H100-SXM5-80GB")


device = inline_device


DEV = device()


def attn(**kw):
    base = dict(batch=4, heads=16, kv_heads=16, seq_q=4096, seq_kv=4096, head_dim=128, causal=False,
                dtype="fp16", pass_="fwd", impl="flash2")
    base.update(kw)
    return Attention(**base)


def test_registered():
    assert _PRICERS[Attention] is price_attention


@given(b=st.integers(1, 8), h=st.sampled_from([8, 16, 32]), s=st.integers(1, 8192), d=st.sampled_from([64, 128]))
@FAST
def test_flop_convention(b, h, s, d):
    """FlashAttention convention: fwd 4*B*S^2*H*d, causal halves, bwd 2.5x, fwd+bwd 3.5x."""
    fwd = 4 * b * s * s * h * d
    kw = dict(batch=b, heads=h, kv_heads=h, seq_q=s, seq_kv=s, head_dim=d)
    assert attention_flops(attn(**kw)) == fwd
    assert attention_flops(attn(causal=True, **kw)) == fwd / 2
    assert attention_flops(attn(pass_="bwd", **kw)) == 2.5 * fwd
    assert attention_flops(attn(pass_="fwd_bwd", causal=True, **kw)) == 3.5 * fwd / 2


def test_causal_fraction_with_cached_prefix():
    assert causal_fraction(1, 1000, True) == pytest.approx(1 - 1 / 2000)     # decode sees (almost) all keys
    assert causal_fraction(512, 512, True) == 0.5
    assert causal_fraction(512, 1024, False) == 1.0


@FAST
@given(impl=st.sampled_from(["naive", "flash1", "flash2"]), s=st.sampled_from([1, 128, 1000, 4096]),
       skv=st.sampled_from([128, 2048, 8192]), causal=st.booleans(), ps=st.sampled_from(["fwd", "bwd", "fwd_bwd"]),
       g=st.sampled_from([1, 4]))
def test_never_beats_the_roofline(impl, s, skv, causal, ps, g):
    op = attn(seq_q=min(s, skv), seq_kv=skv, causal=causal, pass_=ps, impl=impl, kv_heads=16 // g)
    for dev in (DEV, H100):
        c = price_attention(op, dev)
        assert c.time_s >= c.flops / dev.peak_flops("fp16")
        qo = 2 * op.batch * op.heads * op.seq_q * op.head_dim * 2
        kv = 2 * op.batch * op.kv_heads * op.seq_kv * op.head_dim * 2
        assert c.bytes["hbm"] >= (qo + kv) * (1 - 1e-9)
        assert c.time_s >= (qo + kv) / dev.hbm_Bps


@FAST
@given(impl=st.sampled_from(["naive", "flash2", "paged"]), s=st.sampled_from([1, 512, 4096]),
       f=st.floats(1.0, 6.0), which=st.sampled_from(["hbm", "tc", "both"]))
def test_more_bandwidth_or_peak_is_never_slower(impl, s, f, which):
    base = DEV.model_dump()
    fast = {"memory": base["memory"], "peak_tflops": base["peak_tflops"]}
    if which in ("hbm", "both"):
        fast["memory"] = dict(base["memory"], bandwidth_gbps=base["memory"]["bandwidth_gbps"] * f)
    if which in ("tc", "both"):
        fast["peak_tflops"] = {d: v * f for d, v in base["peak_tflops"].items()}
    op = attn(seq_q=s, seq_kv=4096, impl=impl, causal=s > 1)
    assert price_attention(op, device(**fast)).time_s <= price_attention(op, DEV).time_s * (1 + 1e-9)


def test_naive_moves_more_hbm_bytes_and_the_gap_grows_with_sequence():
    ratios = []
    for s in (512, 2048, 8192):
        naive = price_attention(attn(seq_q=s, seq_kv=s, batch=1, impl="naive"), DEV)
        flash = price_attention(attn(seq_q=s, seq_kv=s, batch=1, impl="flash2"), DEV)
        ratios.append(naive.bytes["hbm"] / flash.bytes["hbm"])
    assert ratios[0] > 1 and ratios[0] < ratios[1] < ratios[2]


def test_flash_beats_naive_at_long_sequence():
    """FlashAttention papers: 2-4x over the PyTorch reference at long sequences (fwd+bwd)."""
    naive = price_attention(attn(impl="naive", pass_="fwd_bwd", causal=True), DEV)
    flash = price_attention(attn(impl="flash2", pass_="fwd_bwd", causal=True), DEV)
    assert naive.time_s / flash.time_s > 2


def test_causal_skips_about_half_the_work():
    full = price_attention(attn(seq_q=16384, seq_kv=16384, batch=1), DEV)
    causal = price_attention(attn(seq_q=16384, seq_kv=16384, batch=1, causal=True), DEV)
    assert causal.flops == full.flops / 2
    assert 1.6 < full.time_s / causal.time_s <= 2.0


def test_gqa_reduces_kv_bytes_by_the_group_size():
    for g in (2, 4, 8):
        mha = price_attention(attn(batch=16, seq_q=1, seq_kv=8192, impl="paged"), DEV)
        gqa = price_attention(attn(batch=16, seq_q=1, seq_kv=8192, impl="paged", kv_heads=16 // g), DEV)
        assert mha.detail["fwd"]["kv_bytes"] / gqa.detail["fwd"]["kv_bytes"] == pytest.approx(g)
        assert mha.bytes["hbm"] / gqa.bytes["hbm"] > 0.9 * g
        assert gqa.time_s < mha.time_s


def test_decode_is_memory_bound_on_kv_bytes():
    op = attn(batch=16, heads=32, kv_heads=32, seq_q=1, seq_kv=2048, impl="paged")
    for dev in (DEV, H100):
        c = price_attention(op, dev)
        kv = 16 * 2048 * 32 * 128 * 2 * 2
        assert c.detail["fwd"]["kv_bytes"] == kv
        assert c.bound == "hbm_bandwidth"
        assert kv / dev.hbm_Bps <= c.time_s < 2 * kv / dev.hbm_Bps


def test_single_request_decode_splits_the_kv_sequence():
    c = price_attention(attn(batch=1, heads=32, kv_heads=8, seq_q=1, seq_kv=32768, impl="flash2"), DEV)
    assert c.detail["fwd"]["split_kv"] > 1
    assert c.detail["fwd"]["packed_gqa"]


def test_quantized_kv_cache_is_faster_and_smaller():
    times, kvs = [], []
    for kd in (None, "fp8", "int4", "int2"):
        c = price_attention(attn(batch=8, heads=32, kv_heads=32, seq_q=1, seq_kv=32768, impl="paged", kv_dtype=kd), DEV)
        times.append(c.time_s)
        kvs.append(c.detail["fwd"]["kv_bytes"])
    assert times == sorted(times, reverse=True) and kvs == sorted(kvs, reverse=True)
    assert kvs[0] / kvs[2] < 4                                     # int4 scales cost bytes: below the 4x bit ratio
    assert kvs[0] / kvs[1] == pytest.approx(2)


def test_generation_ordering_matches_the_papers():
    """FA2 paper: ~2x over FA1 on A100; FA3 paper: 1.5-2x over FA2 on H100 (fwd, long sequences)."""
    fa1 = price_attention(attn(impl="flash1"), DEV).time_s
    fa2 = price_attention(attn(impl="flash2"), DEV).time_s
    assert 1.3 < fa1 / fa2 < 3.5
    fa2h = price_attention(attn(impl="flash2"), H100).time_s
    fa3h = price_attention(attn(impl="flash3"), H100).time_s
    assert 1.3 < fa2h / fa3h < 2.5


def test_attention_efficiency_is_physical():
    """Tiled attention sits below the matmul peak (softmax on SFU/CUDA cores): FA2 50-73% on A100."""
    c = price_attention(attn(impl="flash2"), DEV)
    assert 0.4 < c.flops / c.time_s / DEV.peak_flops("fp16") < 0.85


def test_errors():
    with pytest.raises(InputError) as e:
        price_attention(attn(impl="flash3"), DEV)                   # Ampere: no wgmma/TMA
    assert e.value.field == "workload.impl"
    with pytest.raises(InputError):
        price_attention(attn(impl="magic"), DEV)
    with pytest.raises(InputError) as e:
        price_attention(attn(dtype="fp8"), DEV)
    assert e.value.field == "workload.dtype"
    with pytest.raises(InputError):
        price_attention(attn(heads=16, kv_heads=3), DEV)
    with pytest.raises(InputError):
        price_attention(attn(kv_dtype="int5"), DEV)


# ---------------------------------------------------------------- mechanisms (physics, not fitted values)
def _hbm_util(c, op, dev):
    kv = 2 * op.batch * op.kv_heads * op.seq_kv * op.head_dim * 2
    return kv / c.time_s / dev.hbm_Bps


def test_vllm_paged_decode_uses_more_bandwidth_as_batch_times_heads_grows():
    """Little's law: one KV block per warp in flight; more sequences x heads put more warps in flight
    until the HBM rate is covered, never above it."""
    utils = []
    for batch in (1, 2, 4, 8, 16, 64, 256):
        op = attn(batch=batch, heads=32, kv_heads=32, seq_q=1, seq_kv=1024, impl="paged")
        utils.append(_hbm_util(price_attention(op, H100), op, H100))
    assert all(b >= a * (1 - 1e-9) for a, b in zip(utils, utils[1:]))
    assert utils[0] < 0.5 * utils[-1]                       # batch 1 is latency-bound
    assert utils[-1] <= 1.0
    c1 = price_attention(attn(batch=1, heads=32, kv_heads=32, seq_q=1, seq_kv=1024, impl="paged"), H100)
    assert c1.detail["fwd"]["latency_bound"] and c1.detail["fwd"]["kernel"] == "vllm_paged_v2"


def test_vllm_paged_v1_v2_rule():
    """vLLM: v2 (512-token partitions + a reduce kernel) unless one partition suffices or there are
    more than 512 sequences x heads (for contexts up to 8192)."""
    def kern(b, s):
        return price_attention(attn(batch=b, heads=32, kv_heads=32, seq_q=1, seq_kv=s, impl="paged"),
                               H100).detail["fwd"]
    assert kern(1, 512)["kernel"] == "vllm_paged_v1"
    assert kern(1, 4096)["kernel"] == "vllm_paged_v2" and kern(1, 4096)["split_kv"] == 8
    assert kern(32, 4096)["kernel"] == "vllm_paged_v1"          # 32 x 32 > 512
    assert kern(32, 16384)["kernel"] == "vllm_paged_v2"         # beyond 8192 always partitioned


def test_pipelined_decode_beats_vllm_at_batch_one():
    """FlashInfer-style split-KV decode with prefetch covers the latency that vLLM's per-block walk exposes."""
    kw = dict(batch=1, heads=32, kv_heads=32, seq_q=1, seq_kv=1024)
    assert price_attention(attn(impl="flashinfer", **kw), H100).time_s < \
        price_attention(attn(impl="paged", **kw), H100).time_s


def test_flash3_hides_more_softmax_with_more_kv_blocks_per_cta():
    """FA3's GEMM-softmax overlap is a software pipeline over the K/V blocks of a CTA: its fill and
    drain are exposed, so the efficiency rises with the sequence length at equal total work."""
    effs = []
    for s in (256, 1024, 4096, 16384):
        op = attn(batch=16384 // s, heads=16, kv_heads=16, seq_q=s, seq_kv=s, impl="flash3")
        c = price_attention(op, H100)
        effs.append(c.flops / c.time_s)
    assert effs == sorted(effs)
    assert effs[-1] < H100.peak_flops("fp16")


def test_causal_short_sequences_pay_the_diagonal_mask():
    """Blocks the causal diagonal crosses pay the mask's ALU ops; at short sequences they are a large
    share of the visited blocks, so causal efficiency (FLOP convention) sits further below non-causal."""
    def eff(s, causal):
        op = attn(batch=16384 // s, heads=16, kv_heads=16, seq_q=s, seq_kv=s, causal=causal, head_dim=64)
        c = price_attention(op, H100)
        return c.flops / c.time_s
    assert eff(512, True) / eff(512, False) < eff(8192, True) / eff(8192, False) <= 1.0


def test_naive_layout_copies_are_o_s_d():
    """The PyTorch reference copies Q, K, V and O between (batch, seq, heads, d) and (batch*heads,
    seq, d): 4 copies of B*S*H*d elements forward, independent of the S^2 score passes."""
    op = attn(batch=2, heads=16, kv_heads=16, seq_q=2048, seq_kv=2048, impl="naive")
    ks = {k["name"] for k in price_attention(op, DEV).detail["fwd"]["kernels"]}
    assert {"q_layout", "k_layout", "v_layout", "o_layout"} <= ks
    # decode from an MHA KV cache (already head-major): no K/V copy
    dec = attn(batch=2, heads=16, kv_heads=16, seq_q=1, seq_kv=2048, impl="naive")
    ks = {k["name"] for k in price_attention(dec, DEV).detail["fwd"]["kernels"]}
    assert "k_layout" not in ks and "q_layout" in ks


def test_mma_sync_kernels_gain_little_from_a_second_cta():
    """mma.sync kernels (FA2) run softmax and matmul in sequence: halving the per-CTA shared memory
    (two CTAs per SM instead of one) barely changes the time per score on Hopper."""
    c = price_attention(attn(impl="flash2", head_dim=64), H100)
    f = c.detail["fwd"]
    assert f["ctas_per_sm"] >= 2
    scores_per_sm = 4 * 16 * 4096 * 4096 / H100.sms
    assert c.time_s >= 0.95 * (f["matmul_s_per_score"] + f["softmax_s_per_score"]) * scores_per_sm
