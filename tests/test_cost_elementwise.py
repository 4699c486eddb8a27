"""Elementwise / streaming cost model: closed form, size ramp, roofline, monotonicity, STREAM conventions."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cost import _PRICERS
from sim.cost.efficiency import eff
from sim.cost.elementwise import price_elementwise
from sim.errors import InputError
from sim.hardware import load_device
from sim.ops import Elementwise

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
H100 = load_device("H100-SXM5-80GB")


def scaled(dev, f_hbm=1.0, f_vec=1.0, f_l2=1.0):
    d = dev.model_dump()
    d["memory"] = dict(d["memory"], bandwidth_gbps=d["memory"]["bandwidth_gbps"] * f_hbm)
    d["vector_fp32_tflops"] *= f_vec
    d["l2_bandwidth_gbps"] *= f_l2
    d["name"] = "scaled"
    return load_device(d)


def test_registered():
    assert _PRICERS[Elementwise] is price_elementwise


def test_closed_form_large_stream():
    n = 4e9
    c = price_elementwise(Elementwise(bytes_read=n, bytes_written=n), H100)
    expect = (eff(H100, "launch_overhead_s") + eff(H100, "dram_latency_s")
              + 2 * n / (H100.hbm_Bps * eff(H100, "hbm_efficiency")))
    assert c.time_s == pytest.approx(expect)
    assert c.bound == "hbm_bandwidth"
    assert c.bytes == {"hbm": 2 * n}


def test_small_arrays_do_not_reach_peak_bandwidth():
    """Little's law: achieved bandwidth rises with size toward hbm_efficiency x peak, never above."""
    ceiling = H100.hbm_Bps * eff(H100, "hbm_efficiency")
    prev = 0.0
    for n in (1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10):
        c = price_elementwise(Elementwise(bytes_read=n / 2, bytes_written=n / 2), H100)
        bw = n / c.time_s
        assert prev < bw < ceiling
        prev = bw
    assert prev > 0.95 * ceiling
    assert price_elementwise(Elementwise(bytes_read=1e4, bytes_written=0), H100).bound == "launch_overhead"


@FAST
@given(r=st.floats(0, 1e11), w=st.floats(0, 1e11), fl=st.floats(0, 1e13), level=st.sampled_from(["hbm", "l2"]))
def test_never_beats_the_roofline(r, w, fl, level):
    c = price_elementwise(Elementwise(bytes_read=r, bytes_written=w, flops=fl, level=level), H100)
    peak = H100.hbm_Bps if level == "hbm" else H100.l2_Bps
    assert c.time_s >= (r + w) / peak
    assert c.time_s >= fl / H100.vector_flops
    assert c.time_s >= eff(H100, "launch_overhead_s")


@FAST
@given(r=st.floats(0, 1e10), w=st.floats(0, 1e10), fl=st.floats(0, 1e12), f=st.floats(1, 10),
       which=st.sampled_from(["hbm", "vec", "l2"]), level=st.sampled_from(["hbm", "l2"]))
def test_more_bandwidth_or_alu_is_never_slower(r, w, fl, f, which, level):
    op = Elementwise(bytes_read=r, bytes_written=w, flops=fl, level=level)
    fast = scaled(H100, f_hbm=f if which == "hbm" else 1, f_vec=f if which == "vec" else 1, f_l2=f if which == "l2" else 1)
    assert price_elementwise(op, fast).time_s <= price_elementwise(op, H100).time_s * (1 + 1e-12)


def test_stream_conventions_move_the_right_bytes():
    """copy/scale move two arrays, triad three, read/write one: time grows with arrays moved."""
    n = 1e9
    t = {name: price_elementwise(Elementwise(bytes_read=rd * n, bytes_written=wr * n), H100).time_s
         for name, rd, wr in (("read", 1, 0), ("write", 0, 1), ("copy", 1, 1), ("triad", 2, 1))}
    assert t["read"] == pytest.approx(t["write"])
    assert t["read"] < t["copy"] < t["triad"]
    assert t["triad"] / t["read"] == pytest.approx(3, rel=0.01)


def test_compute_heavy_kernel_is_vector_bound():
    c = price_elementwise(Elementwise(bytes_read=1e6, bytes_written=1e6, flops=1e12), H100)
    assert c.bound == "vector_fp32"


def test_l2_resident_is_faster_than_hbm():
    hbm = price_elementwise(Elementwise(bytes_read=2e7, bytes_written=2e7), H100)
    l2 = price_elementwise(Elementwise(bytes_read=2e7, bytes_written=2e7, level="l2"), H100)
    assert l2.time_s < hbm.time_s and l2.bound == "l2_bandwidth"


def test_errors():
    with pytest.raises(InputError):
        price_elementwise(Elementwise(bytes_read=1, bytes_written=1, level="nvme"), H100)
    with pytest.raises(InputError):
        price_elementwise(Elementwise(bytes_read=-1, bytes_written=1), H100)
