"""Every device of the zoo is predicted from its spec sheet alone, within physics.

Devices with no published measurements (H200, B200, GH200, MI300X ...) are priced by the same
model; these checks hold for all of them: no kernel beats its roofline, and the ratio between
two devices follows the resource that bounds the kernel.
"""
import pytest

from sim.hardware import load_device, names
from sim.scenario import predict

DEVICES = names("device")
HALF = {d: ("bf16" if "bf16" in load_device(d).peak_tflops else "fp16") for d in DEVICES}


def _p(dev, wl):
    return predict({"hardware": dev, "workload": wl, "parameters": "spec"})


@pytest.mark.parametrize("dev", DEVICES)
def test_canonical_kernels_respect_the_roofline(dev):
    d = load_device(dev)
    dt = HALF[dev]
    big = _p(dev, {"kind": "gemm", "m": 8192, "n": 8192, "k": 8192, "dtype": dt})
    assert big.metrics["tflops"] <= d.peak_tflops[dt] * (1 + 1e-9)
    assert big.bound.startswith("tensor_core")
    skinny = _p(dev, {"kind": "gemm", "m": 1, "n": 8192, "k": 8192, "dtype": dt})
    weight_bytes = 8192 * 8192 * 2
    assert skinny.time_s >= weight_bytes / d.hbm_Bps
    assert skinny.bound == "hbm_bandwidth"
    triad = _p(dev, {"kind": "memory", "op": "triad", "bytes": 2**30})
    assert triad.metrics["gbps"] <= d.memory.bandwidth_gbps
    attn = _p(dev, {"kind": "attention", "batch": 4, "heads": 16, "seq_q": 4096, "seq_kv": 4096, "head_dim": 128,
                    "causal": True, "dtype": dt})
    assert attn.metrics["tflops"] <= d.peak_tflops[dt]


def test_h200_from_its_spec_sheet_against_h100():
    """H200 = H100's compute with 4.8 vs 3.35 TB/s of HBM3e: a weight-streaming decode GEMM speeds up
    by about the bandwidth ratio, a compute-bound GEMM not at all."""
    ratio_bw = load_device("H200-SXM-141GB").hbm_Bps / load_device("H100-SXM5-80GB").hbm_Bps
    skinny = {"kind": "gemm", "m": 1, "n": 16384, "k": 16384, "dtype": "bf16"}
    big = {"kind": "gemm", "m": 8192, "n": 8192, "k": 8192, "dtype": "bf16"}
    s = _p("H100-SXM5-80GB", skinny).time_s / _p("H200-SXM-141GB", skinny).time_s
    b = _p("H100-SXM5-80GB", big).time_s / _p("H200-SXM-141GB", big).time_s
    assert s == pytest.approx(ratio_bw, rel=0.1)
    assert b == pytest.approx(1.0, rel=0.02)
