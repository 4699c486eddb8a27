"""The Blackwell attention path (impl flash4, and cudnn on Blackwell): FlashAttention-4's forward with
tcgen05 MMA at the full tensor rate, exp2 split between MUFU and an FMA-pipe polynomial, ping-pong
overlap. The bounds below are physics (roofline of each pipe), not values read off the model."""
import copy
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cost import cost
from sim.cost.attention import causal_fraction
from sim.cost.efficiency import eff
from sim.errors import InputError
from sim.hardware import load_device
from sim.ops import Attention
from sim.scenario import predict

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
B200 = load_device("B200")


def fa4(batch=4, heads=16, kv_heads=None, sq=4096, skv=None, d=128, causal=False, impl="flash4", pass_="fwd"):
    return Attention(batch=batch, heads=heads, kv_heads=kv_heads or heads, seq_q=sq, seq_kv=skv or sq,
                     head_dim=d, causal=causal, dtype="bf16", pass_=pass_, impl=impl)


shapes = dict(batch=st.integers(1, 16), heads=st.sampled_from([8, 16, 32]), gqa=st.sampled_from([1, 4, 8]),
              sq=st.sampled_from([128, 512, 1024, 4096, 16384]), d=st.sampled_from([64, 128]),
              causal=st.booleans())


def _op(batch, heads, gqa, sq, d, causal):
    return fa4(batch=batch, heads=heads, kv_heads=max(1, heads // gqa), sq=sq, d=d, causal=causal)


def _clock_hz(dev):
    return dev.boost_clock_mhz * 1e6


@given(**shapes)
@FAST
def test_never_beats_tensor_core_roofline(batch, heads, gqa, sq, d, causal):
    """Useful FLOPs / dense BF16 peak is a floor no kernel can go under."""
    c = cost(_op(batch, heads, gqa, sq, d, causal), B200)
    assert c.time_s >= c.flops / B200.peak_flops("bf16")


@given(**shapes)
@FAST
def test_never_beats_exp_throughput_bound(batch, heads, gqa, sq, d, causal):
    """Every unmasked score needs one exp2. With MUFU at its per-SM rate and the FMA pipe (one lane op
    per clock per lane) spending ``exp2_emulation_ops`` per emulated exp, the best split of the exps
    between the two pipes bounds the kernel; and the MUFU share alone cannot go faster than MUFU."""
    op = _op(batch, heads, gqa, sq, d, causal)
    c = cost(op, B200)
    n_exp = batch * heads * sq * sq * causal_fraction(sq, sq, causal)
    clk, sms = _clock_hz(B200), B200.sms
    mufu = eff(B200, "sfu_ops_per_clk_per_sm") * sms * clk                # exps/s on MUFU
    fma_lanes = B200.vector_flops / 2.0                                  # lane ops/s on the FMA pipe
    best_split = n_exp / (mufu + fma_lanes / eff(B200, "exp2_emulation_ops"))
    assert c.time_s >= best_split
    mufu_share = (1.0 - eff(B200, "attn_flash4_exp_emulated_fraction")) * n_exp / mufu
    assert c.time_s >= mufu_share


@given(batch=st.integers(1, 16), heads=st.sampled_from([16, 32]), sq=st.sampled_from([512, 2048, 8192]),
       d=st.sampled_from([64, 128]), causal=st.booleans())
@FAST
def test_faster_than_mma_sync_fa2_on_b200(batch, heads, sq, d, causal):
    """tcgen05 at the full rate beats FA2's warp-level mma.sync (which keeps Hopper's per-SM rate)."""
    t4 = cost(fa4(batch=batch, heads=heads, sq=sq, d=d, causal=causal), B200).time_s
    t2 = cost(fa4(batch=batch, heads=heads, sq=sq, d=d, causal=causal, impl="flash2"), B200).time_s
    assert t4 < t2


@pytest.mark.parametrize("name", ["H100-SXM5-80GB", "A100-SXM4-80GB", "H200-SXM-141GB"])
def test_refused_off_blackwell(name):
    with pytest.raises(InputError) as e:
        cost(fa4(), load_device(name))
    assert e.value.field == "workload.impl" and "flash4" in str(e.value)


def test_refused_off_blackwell_through_the_scenario():
    sc = {"hardware": "H100-SXM5-80GB", "workload": {"kind": "attention", "batch": 1, "heads": 16, "seq_q": 1024,
                                                     "seq_kv": 1024, "head_dim": 128, "causal": True,
                                                     "dtype": "bf16", "impl": "flash4"}}
    with pytest.raises(InputError) as e:
        predict(sc)
    assert e.value.field == "workload.impl"
    sc["hardware"] = "B200"
    assert predict(sc).time_s > 0


@pytest.mark.parametrize("name", ["H100-SXM5-80GB", "A100-SXM4-80GB"])
@pytest.mark.parametrize("pass_", ["bwd", "fwd_bwd"])
def test_backward_refused_off_blackwell_with_the_field_named(name, pass_):
    with pytest.raises(InputError) as e:
        cost(fa4(pass_=pass_), load_device(name))
    assert e.value.field == "workload.impl" and "flash4" in str(e.value)


def test_cudnn_on_blackwell_is_the_fa4_structure_both_directions_and_hopper_is_unchanged():
    for pass_ in ("fwd", "bwd", "fwd_bwd"):
        assert cost(fa4(impl="cudnn", pass_=pass_), B200).time_s == cost(fa4(pass_=pass_), B200).time_s
    assert cost(fa4(impl="cudnn"), B200).detail["impl"] == "flash4"
    h100 = load_device("H100-SXM5-80GB")
    assert cost(fa4(impl="cudnn", pass_="fwd_bwd"), h100).time_s == cost(fa4(impl="flash3", pass_="fwd_bwd"), h100).time_s
    a100 = load_device("A100-SXM4-80GB")
    assert cost(fa4(impl="cudnn", pass_="bwd"), a100).time_s == cost(fa4(impl="flash2", pass_="bwd"), a100).time_s


# ---- backward: five tcgen05 MMAs per 128 x 128 tile, shared-memory traffic, MUFU exps -------------------
bwd_shapes = dict(batch=st.integers(1, 8), heads=st.sampled_from([8, 16, 32]), gqa=st.sampled_from([1, 4]),
                  sq=st.sampled_from([128, 1024, 4096, 8192]), d=st.sampled_from([64, 128]), causal=st.booleans())


def _bwd(batch, heads, gqa, sq, d, causal, impl="flash4"):
    return fa4(batch=batch, heads=heads, kv_heads=max(1, heads // gqa), sq=sq, d=d, causal=causal,
               impl=impl, pass_="bwd")


@given(**bwd_shapes)
@FAST
def test_backward_never_beats_its_tensor_core_roofline(batch, heads, gqa, sq, d, causal):
    """The backward does 2.5x the forward's FLOPs (five MMAs against two); at the dense BF16 peak that
    is a floor."""
    op = _bwd(batch, heads, gqa, sq, d, causal)
    c = cost(op, B200)
    fwd_flops = 4.0 * batch * heads * sq * sq * d * causal_fraction(sq, sq, causal)
    assert c.flops == pytest.approx(2.5 * fwd_flops)
    assert c.time_s >= 2.5 * fwd_flops / B200.peak_flops("bf16")


@given(batch=st.integers(1, 8), heads=st.sampled_from([8, 16, 32]), sq=st.sampled_from([128, 1024, 4096, 8192]),
       d=st.sampled_from([64, 128]))
@FAST
def test_backward_never_beats_its_shared_memory_bound(batch, heads, sq, d):
    """Non-causal, so every (128-query, 128-key) tile is visited. Per tile the two MMAs with both operands in
    shared memory (S = K Q^T and dP = V dO^T: 128 x d of each operand, 2 B per element) alone move
    4 x 128 x d x 2 B through shared memory; at 128 B/clk per SM on all SMs at the boost clock that is a
    floor on the kernel time, below the full traffic the kernel moves."""
    op = _bwd(batch, heads, 1, sq, d, False)
    tiles = batch * heads * math.ceil(sq / 128) ** 2
    floor_bytes = tiles * 4 * 128 * d * 2
    smem_rate = eff(B200, "smem_bytes_per_clk_per_sm") * B200.sms * _clock_hz(B200)
    assert cost(op, B200).time_s >= floor_bytes / smem_rate


@given(**bwd_shapes)
@FAST
def test_backward_never_beats_one_mufu_exp_per_score(batch, heads, gqa, sq, d, causal):
    """The backward recomputes P = exp2(S - LSE) with MUFU.EX2 for every visited score (no polynomial
    share in flash_bwd_sm100.py): the unmasked scores alone, at 16 per clock per SM, bound it."""
    op = _bwd(batch, heads, gqa, sq, d, causal)
    n_exp = batch * heads * sq * sq * causal_fraction(sq, sq, causal)
    mufu = eff(B200, "sfu_ops_per_clk_per_sm") * B200.sms * _clock_hz(B200)
    assert cost(op, B200).time_s >= n_exp / mufu


@given(**bwd_shapes)
@FAST
def test_backward_faster_than_mma_sync_fa2_on_b200(batch, heads, gqa, sq, d, causal):
    """tcgen05 at the full rate against FA2's mma.sync, which keeps Hopper's per-SM rate on B200."""
    t4 = cost(_bwd(batch, heads, gqa, sq, d, causal), B200).time_s
    t2 = cost(_bwd(batch, heads, gqa, sq, d, causal, impl="flash2"), B200).time_s
    assert t4 < t2


def test_backward_is_shared_memory_bound_at_long_sequences():
    """FA4 paper: on B200 the backward's bottleneck is shared-memory traffic, not the MMAs. Per 128 x 128
    tile at d = 128 the MMA operands alone that come from shared memory are S, dP: 2 x 64 KB; dV, dK: 2 x
    32 KB (P, dS from Tensor Memory); dQ: 64 KB = 256 KB = 2048 clk at 128 B/clk, against 5 x 512 clk of
    MMA at 8192 FLOP/clk; the dS store, Q/dO loads and fp32 dQ staging add more than the remaining 20%."""
    c = cost(fa4(batch=4, heads=16, sq=8192, d=128, pass_="bwd"), B200)
    assert c.bound == "smem_bandwidth"
    bw = c.detail["bwd"]
    assert bw["smem_s_per_score"] > bw["matmul_s_per_score"]
    assert bw["tile"] == (128, 128) and bw["ctas_per_sm"] == 1


def test_fwd_bwd_is_the_sum_of_its_directions():
    op = fa4(batch=2, heads=16, sq=4096, causal=True)
    f = cost(op, B200).time_s
    b = cost(fa4(batch=2, heads=16, sq=4096, causal=True, pass_="bwd"), B200).time_s
    assert cost(fa4(batch=2, heads=16, sq=4096, causal=True, pass_="fwd_bwd"), B200).time_s == pytest.approx(f + b)


@given(batch=st.integers(1, 8), heads=st.sampled_from([16, 32]), d=st.sampled_from([64, 128]))
@FAST
def test_causal_halves_the_work(batch, heads, d):
    """Causal self-attention counts half the FLOPs; at 16K tokens the diagonal blocks are a few % of
    the visited ones, so the time falls to about half (not below: the same per-score cost applies)."""
    nc = cost(fa4(batch=batch, heads=heads, sq=16384, d=d), B200)
    ca = cost(fa4(batch=batch, heads=heads, sq=16384, d=d, causal=True), B200)
    assert ca.flops == pytest.approx(0.5 * nc.flops)
    assert 0.45 <= ca.time_s / nc.time_s <= 0.62


def _b200_scaled(k):
    raw = yaml.safe_load(open("sim/hardware/devices/B200.yaml"))
    raw = copy.deepcopy(raw)
    raw["name"] = f"B200x{k}"
    raw["peak_tflops"] = {t: v * k for t, v in raw["peak_tflops"].items()}
    return load_device(raw)


@given(k1=st.sampled_from([0.25, 0.5, 1.0]), k2=st.sampled_from([1.0, 2.0, 4.0]), **shapes)
@FAST
def test_monotone_in_tensor_rate(k1, k2, batch, heads, gqa, sq, d, causal):
    op = _op(batch, heads, gqa, sq, d, causal)
    assert cost(op, _b200_scaled(k2)).time_s <= cost(op, _b200_scaled(k1)).time_s * (1 + 1e-12)


def test_softmax_bound_at_small_head_dim_tensor_bound_at_large():
    """Per score the MMA costs 4d FLOPs while the exp is one per score: at d = 64 the B200's
    8192 FLOP/clk/SM tensor rate outruns 16 MUFU exps/clk/SM plus the emulated share (FA4 paper's
    'exp is the wall'); at d = 128 the MMA work doubles and dominates."""
    d64 = cost(fa4(d=64, heads=32), B200).detail["fwd"]
    d128 = cost(fa4(d=128), B200).detail["fwd"]
    assert d64["softmax_s_per_score"] > d64["matmul_s_per_score"]
    assert d128["matmul_s_per_score"] > d128["softmax_s_per_score"]


def test_gqa_reads_kv_once_per_kv_head():
    mha = cost(fa4(heads=32, kv_heads=32, sq=8192), B200)
    gqa = cost(fa4(heads=32, kv_heads=4, sq=8192), B200)
    assert gqa.detail["fwd"]["kv_bytes"] == pytest.approx(mha.detail["fwd"]["kv_bytes"] / 8)
    assert gqa.time_s <= mha.time_s * (1 + 1e-9)
