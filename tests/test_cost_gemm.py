"""GEMM cost model: closed forms, roofline bounds, monotonicity, and published regime facts."""
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cost import _PRICERS
from sim.cost.efficiency import eff
from sim.cost.gemm import price_gemm
from sim.errors import InputError
from helpers import inline_device
from sim.hardware import load_device
from sim.ops import Gemm

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


device = inline_device


DEV = device()
H100 = load_device("H100-SXM5-80GB")
dims = st.integers(1, 16384)


def test_registered():
    assert _PRICERS[Gemm] is price_gemm


@FAST
@given(m=dims, n=dims, k=dims, batch=st.integers(1, 8), dtype=st.sampled_from(["fp16", "bf16", "tf32", "fp32", "int8"]))
def test_flops_and_compulsory_bytes_closed_form(m, n, k, batch, dtype):
    c = price_gemm(Gemm(m, n, k, dtype=dtype, batch=batch), DEV)
    assert c.flops == 2 * m * n * k * batch
    a = {"fp16": 2, "bf16": 2, "tf32": 4, "fp32": 4, "int8": 1}[dtype]
    c_b = max(a, 2)
    assert c.detail["compulsory"] == pytest.approx(batch * (m * k * a + k * n * a + m * n * c_b))
    assert c.bytes["hbm"] >= c.detail["compulsory"] * (1 - 1e-9)
    assert c.bytes["l2"] >= c.detail["compulsory"] * (1 - 1e-9)
    assert 0 < c.detail["wave_efficiency"] <= 1


@FAST
@given(m=dims, n=dims, k=dims, dtype=st.sampled_from(["fp16", "bf16", "fp8", "tf32", "int8"]),
       w=st.sampled_from([None, "int4", "int8", "fp6", "nf4", "int3"]))
def test_never_beats_the_roofline(m, n, k, dtype, w):
    op = Gemm(m, n, k, dtype=dtype, w_dtype=w)
    c = price_gemm(op, H100)
    assert c.time_s >= c.flops / H100.peak_flops(dtype)
    assert c.time_s >= c.detail["compulsory"] / H100.hbm_Bps
    assert c.time_s >= eff(H100, "launch_overhead_s")


@FAST
@given(m=dims, n=dims, k=dims, f=st.floats(1.0, 8.0), which=st.sampled_from(["hbm", "tc", "l2", "all"]),
       w=st.sampled_from([None, "int4"]))
def test_more_bandwidth_or_peak_is_never_slower(m, n, k, f, which, w):
    base = DEV.model_dump()
    fast = dict(base)
    if which in ("hbm", "all"):
        fast["memory"] = dict(base["memory"], bandwidth_gbps=base["memory"]["bandwidth_gbps"] * f)
    if which in ("tc", "all"):
        fast["peak_tflops"] = {d: v * f for d, v in base["peak_tflops"].items()}
    if which in ("l2", "all"):
        fast["l2_bandwidth_gbps"] = base["l2_bandwidth_gbps"] * f
    op = Gemm(m, n, k, dtype="fp16", w_dtype=w)
    t0 = price_gemm(op, DEV).time_s
    t1 = price_gemm(op, device(**{k_: fast[k_] for k_ in ("memory", "peak_tflops", "l2_bandwidth_gbps")})).time_s
    assert t1 <= t0 * (1 + 1e-9)


def test_decode_gemm_is_hbm_bound_and_big_gemm_tensor_core_bound():
    for dev in (H100, DEV):
        assert price_gemm(Gemm(1, 8192, 8192, dtype="fp16"), dev).bound == "hbm_bandwidth"
        assert price_gemm(Gemm(8192, 8192, 8192, dtype="bf16"), dev).bound == "tensor_core_bf16"


def test_big_gemm_efficiency_is_physical():
    """A large square GEMM lands between half of peak and the peak (cuBLAS reaches ~70-90%)."""
    for dev in (H100, DEV):
        c = price_gemm(Gemm(8192, 8192, 8192, dtype="bf16"), dev)
        assert 0.5 < c.flops / c.time_s / dev.peak_flops("bf16") < 1.0


def test_weight_bytes_closed_forms():
    k = n = 8192
    w4 = price_gemm(Gemm(1, n, k, dtype="fp16", w_dtype="int4", group_size=128), DEV).detail["weight_bytes"]
    assert w4 == k * n / 2 + (k // 128) * n * 2                    # packed int4 + fp16 scales
    nf4 = price_gemm(Gemm(1, n, k, dtype="fp16", w_dtype="nf4", group_size=64), DEV).detail["weight_bytes"]
    assert nf4 == k * n / 2 + (k // 64) * n * 4                     # fp32 absmax per block
    fp6 = price_gemm(Gemm(1, n, k, dtype="fp16", w_dtype="fp6"), DEV).detail["weight_bytes"]
    assert fp6 == k * n * 0.75 + (k // 128) * n * 2
    sp = price_gemm(Gemm(1, n, k, dtype="fp16", sparsity=0.8), DEV).detail["weight_bytes"]
    assert sp == pytest.approx(0.2 * k * n * (2 + eff(DEV, "sparse_index_bytes")))   # Tiled-CSL: 4 B per nonzero
    s24 = price_gemm(Gemm(1, n, k, dtype="fp16", sparsity=0.5, sparsity_pattern="2:4"), DEV).detail["weight_bytes"]
    assert s24 == k * n / 2 * (2 + 0.25)                            # half the values + 2-bit metadata


def test_w4a16_decode_speedup_approaches_byte_ratio():
    """Marlin-style W4A16 at batch 1 on a large memory-bound layer: close to 16/4.125 = 3.88x."""
    for dev in (H100, DEV):
        fp16 = price_gemm(Gemm(1, 8192, 8192, dtype="fp16"), dev).time_s
        w4 = price_gemm(Gemm(1, 8192, 8192, dtype="fp16", w_dtype="int4"), dev)
        assert w4.bound == "hbm_bandwidth"
        assert 3.0 < fp16 / w4.time_s < 16 / 4.125


def test_w4a16_turns_compute_bound_at_large_batch():
    for dev in (H100, DEV):
        fp16 = price_gemm(Gemm(4096, 8192, 8192, dtype="fp16"), dev).time_s
        w4 = price_gemm(Gemm(4096, 8192, 8192, dtype="fp16", w_dtype="int4"), dev)
        assert w4.bound.startswith("tensor_core") or w4.bound == "dequant_simt"
        assert fp16 / w4.time_s < 1.3                                # no byte advantage left


def test_unhidden_dequant_costs_time():
    """Kernels that do not overlap dequantisation (older GPTQ kernels, A10 in TECHNIQUES) are slower."""
    op = Gemm(64, 8192, 8192, dtype="fp16", w_dtype="int4")
    hidden = price_gemm(op, DEV)
    serial = price_gemm(op, device(efficiency={"simt_overlap": 0.0}))
    assert serial.time_s > hidden.time_s
    assert serial.time_s == pytest.approx(hidden.time_s + hidden.detail["dequant_s"], rel=0.05)


def test_unstructured_sparsity_moves_fewer_bytes_and_is_faster_when_memory_bound():
    dense = price_gemm(Gemm(16, 9216, 36864, dtype="fp16"), DEV)
    sparse = price_gemm(Gemm(16, 9216, 36864, dtype="fp16", sparsity=0.8), DEV)
    assert sparse.bytes["hbm"] < dense.bytes["hbm"]
    assert sparse.time_s < dense.time_s
    assert sparse.flops == dense.flops                               # dense-equivalent FLOPs, as Flash-LLM reports


def test_24_sparsity_doubles_tensor_core_rate_when_compute_bound():
    dense = price_gemm(Gemm(8192, 8192, 8192, dtype="fp16"), DEV)
    s24 = price_gemm(Gemm(8192, 8192, 8192, dtype="fp16", sparsity=0.5, sparsity_pattern="2:4"), DEV)
    assert 1.3 < dense.time_s / s24.time_s <= 2.0


def test_errors():
    with pytest.raises(InputError) as e:
        price_gemm(Gemm(128, 128, 128, dtype="fp8"), DEV)             # Ampere: no fp8 Tensor Cores
    assert e.value.field == "workload.dtype"
    with pytest.raises(InputError):
        price_gemm(Gemm(128, 128, 128, dtype="fp16", sparsity=0.5, sparsity_pattern="2:4"), device(sparse_24=False))
    with pytest.raises(InputError):
        price_gemm(Gemm(128, 128, 128, dtype="fp16", w_dtype="int5"), DEV)
    with pytest.raises(InputError):
        price_gemm(Gemm(0, 128, 128), DEV)
    with pytest.raises(InputError):
        price_gemm(Gemm(128, 128, 128, sparsity=1.0), DEV)


def test_tiny_gemm_is_launch_bound():
    c = price_gemm(Gemm(16, 16, 16, dtype="fp16"), DEV)
    assert c.bound == "launch_overhead"


def test_wave_quantization_shows_in_efficiency():
    """One tile more than fills the GPU costs a nearly empty extra wave (the classic tail effect)."""
    full = price_gemm(Gemm(108 * 256, 128, 8192, dtype="fp16"), DEV)
    tail = price_gemm(Gemm(108 * 256 + 1, 128, 8192, dtype="fp16"), DEV)
    assert tail.time_s > full.time_s
    assert math.isclose(full.flops, tail.flops, rel_tol=1e-3)


# ---------------------------------------------------------------- mechanisms (physics, not fitted values)
def test_split_k_pays_the_fixup_read_of_its_partials():
    """Split-K writes s fp32 partials of C; summing them back adds time after the main loops."""
    from sim.cost.gemm import _tile_candidate, weight_format
    op = Gemm(128, 128, 16384, dtype="fp16")
    wf = weight_format(op, DEV)
    one, four = _tile_candidate(op, DEV, wf, 128, 128, 1), _tile_candidate(op, DEV, wf, 128, 128, 4)
    assert one["terms"].get("split_k_reduce", 0.0) == 0.0
    assert four["terms"]["split_k_reduce"] >= 4 * 128 * 128 * 4 / (DEV.l2_Bps)


def test_small_ctas_are_shared_memory_bound_with_mma_sync():
    """With warp-level MMA each warp reloads its A and B fragments from shared memory: a 64 x 64 CTA
    (32 x 32 warp tiles) needs more shared-memory bytes per FLOP than the 128 B/clk an SM delivers at the
    Tensor Core rate, a 128 x 128 CTA (64 x 64 warp tiles) does not. Hopper's wgmma is not bound this way."""
    from sim.cost.gemm import smem_bytes_per_k
    flop_per_clk = DEV.peak_flops("fp16") / DEV.sms / (DEV.boost_clock_mhz * 1e6)
    need = {t: smem_bytes_per_k(t, t, 2, 2, 2) / (2 * t * t) * flop_per_clk for t in (64, 128)}
    assert need[64] > 128 > need[128]
    from sim.cost.gemm import _tile_candidate, weight_format
    op = Gemm(8192, 8192, 8192, dtype="fp16")
    small = _tile_candidate(op, DEV, weight_format(op, DEV), 64, 64, 1)
    big = _tile_candidate(op, DEV, weight_format(op, DEV), 128, 128, 1)
    assert small["terms"]["tensor_core_fp16"] > big["terms"]["tensor_core_fp16"]
    hop_small = _tile_candidate(op, H100, weight_format(op, H100), 64, 64, 1)
    hop_big = _tile_candidate(op, H100, weight_format(op, H100), 128, 128, 1)
    assert hop_small["terms"]["tensor_core_fp16"] == pytest.approx(hop_big["terms"]["tensor_core_fp16"], rel=0.05)


def test_compute_as_dense_sparsity_gains_saturate():
    """Load-as-sparse, compute-as-dense (Flash-LLM): the dense shared-memory tile is zero-filled and
    read whatever the sparsity, so past some sparsity the speedup over dense stays below the byte ratio."""
    dense = price_gemm(Gemm(16, 36864, 9216, dtype="fp16"), DEV).time_s
    speedups, byte_ratios = [], []
    for s in (0.5, 0.7, 0.8, 0.9, 0.95):
        c = price_gemm(Gemm(16, 36864, 9216, dtype="fp16", sparsity=s), DEV)
        speedups.append(dense / c.time_s)
        byte_ratios.append(2 / ((1 - s) * (2 + eff(DEV, "sparse_index_bytes"))))
    assert speedups == sorted(speedups)
    assert speedups[-1] < 0.6 * byte_ratios[-1]
    assert speedups[0] == pytest.approx(byte_ratios[0], rel=0.1) or speedups[0] <= byte_ratios[0]


# ---- alignment: contiguous dims (n, k) not a multiple of 16 bytes ----------------------------------
def _pad(x, al):
    return -(-x // al) * al


@FAST
@given(m=st.integers(1, 8192), n=st.integers(8, 65536), k=st.integers(8, 8192),
       dtype=st.sampled_from(["fp16", "bf16", "fp8", "tf32"]))
def test_misaligned_gemm_is_never_faster_than_the_padded_one(m, n, k, dtype):
    """NVIDIA's Tensor Core requirements: padding n and k to 16 bytes never slows a GEMM down."""
    al = {"fp16": 8, "bf16": 8, "fp8": 16, "tf32": 4}[dtype]
    real = price_gemm(Gemm(m, n, k, dtype=dtype), H100)
    padded = price_gemm(Gemm(m, _pad(n, al), _pad(k, al), dtype=dtype), H100)
    assert real.time_s >= padded.time_s * (1 - 1e-9)
    assert real.detail["misaligned"] == ((n % al != 0) or (k % al != 0))


@FAST
@given(m=st.integers(1, 8192), n=st.integers(1, 8192), k=st.integers(1, 8192), f=st.floats(0.05, 1.0))
def test_alignment_penalty_vanishes_when_aligned(m, n, k, f):
    """An aligned GEMM does not depend on the misaligned-kernel efficiency at all; a misaligned one
    only through it (at fraction 1 it costs exactly its padded shape)."""
    n8, k8 = _pad(n, 8), _pad(k, 8)
    slow = device(efficiency={"gemm_misaligned_tc_fraction": f})
    assert price_gemm(Gemm(m, n8, k8), slow).time_s == price_gemm(Gemm(m, n8, k8), DEV).time_s
    one = device(efficiency={"gemm_misaligned_tc_fraction": 1.0})
    assert price_gemm(Gemm(m, n, k), one).time_s == pytest.approx(price_gemm(Gemm(m, n8, k8), DEV).time_s)


def test_unpadded_vocabulary_head_runs_at_the_misaligned_tensor_core_rate():
    """GPT-2's vocabulary 50257 (odd) vs Megatron's padded 50304: the LM-head GEMM of 8192 tokens at
    hidden 2048 is compute bound, so it takes 1/fraction of the padded time; the memory-bound decode
    GEMV (one token) hardly notices (the fraction scales the Tensor-Core rate only)."""
    f = eff(DEV, "gemm_misaligned_tc_fraction")
    big_real, big_pad = (price_gemm(Gemm(8192, v, 2048), DEV) for v in (50257, 50304))
    assert big_real.time_s == pytest.approx(big_pad.time_s / f, rel=0.05)
    gemv_real, gemv_pad = (price_gemm(Gemm(1, v, 2048), DEV) for v in (50257, 50304))
    assert gemv_real.time_s == pytest.approx(gemv_pad.time_s, rel=0.05)
