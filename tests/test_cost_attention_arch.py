"""Architecture facts in the attention model: AMD wave64 in vLLM's paged decode, and the warp-level
mma.sync rate on Blackwell (not doubled with the tcgen05 peak)."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import inline_device
from sim.cost import cost
from sim.cost.attention import WAVE_WIDTH
from sim.hardware import load_device
from sim.ops import Attention

FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def paged(batch, heads, skv):
    return Attention(batch=batch, heads=heads, kv_heads=heads, seq_q=1, seq_kv=skv, head_dim=128,
                     causal=False, dtype="fp16", pass_="fwd", impl="paged")


def test_cdna_is_wave64():
    """AMD CDNA2/CDNA3 execute 64-wide wavefronts (CDNA3 ISA guide; HIP warpSize 64)."""
    for name in ("MI250X", "MI300X"):
        assert WAVE_WIDTH[load_device(name).arch] == 64


@given(batch=st.integers(1, 8), heads=st.sampled_from([8, 32]), skv=st.sampled_from([1024, 4096, 16384]))
@FAST
def test_wave64_halves_blocks_in_flight(batch, heads, skv):
    """The same 128-thread CTA is 2 wavefronts on CDNA and 4 warps on NVIDIA; each walks one KV block
    at a time, so with the same CTAs resident a wave64 part has half the blocks in flight and never a
    higher latency-bound bandwidth."""
    amd = inline_device(vendor="amd", arch="cdna3", register_file_kb_per_sm=512, smem_kb_per_sm=64)
    nv = inline_device(register_file_kb_per_sm=512, smem_kb_per_sm=64)
    da = cost(paged(batch, heads, skv), amd).detail["fwd"]
    dn = cost(paged(batch, heads, skv), nv).detail["fwd"]
    assert da["ctas"] == dn["ctas"]
    if da["ctas_per_sm"] == dn["ctas_per_sm"]:
        assert abs(da["bytes_in_flight"] * 2 - dn["bytes_in_flight"]) <= 1e-6 * dn["bytes_in_flight"]
    assert da["achievable_Bps"] <= dn["achievable_Bps"] * (1 + 1e-9)
    assert cost(paged(batch, heads, skv), amd).time_s >= cost(paged(batch, heads, skv), nv).time_s * (1 - 1e-9)


def _mma_flop_per_sm_clock(dev):
    op = Attention(batch=8, heads=16, kv_heads=16, seq_q=4096, seq_kv=4096, head_dim=128, causal=False,
                   dtype="fp16", pass_="fwd", impl="flash2")
    t_mm = cost(op, dev).detail["fwd"]["matmul_s_per_score"]       # seconds per score element on one SM
    return 4 * 128 / t_mm / (dev.boost_clock_mhz * 1e6)


def test_blackwell_mma_sync_not_faster_per_sm_clock_than_hopper():
    """sm100 doubles the per-SM tensor rate only through tcgen05 (TMEM accumulators); the warp-level
    mma.sync path of FlashAttention-2 keeps register operands and runs no faster per SM and clock
    than on Hopper, although B200's dense peak per SM and clock is twice H100's."""
    h100, b200 = load_device("H100-SXM5-80GB"), load_device("B200")
    peak = lambda d: d.peak_flops("fp16") / d.sms / (d.boost_clock_mhz * 1e6)
    assert peak(b200) > 1.9 * peak(h100)
    assert _mma_flop_per_sm_clock(b200) <= 1.02 * _mma_flop_per_sm_clock(h100)


def test_blackwell_fa2_below_async_mma_design():
    """On B200 the mma.sync FA2 forward stays well below the tcgen05 peak (it cannot use it)."""
    b200 = load_device("B200")
    op = Attention(batch=8, heads=16, kv_heads=16, seq_q=8192, seq_kv=8192, head_dim=128, causal=False,
                   dtype="fp16", pass_="fwd", impl="flash2")
    c = cost(op, b200)
    assert c.flops / c.time_s < 0.5 * b200.peak_flops("fp16")
