"""The launch split and the Hopper attention mapping that calibration relies on.

* A kernel timed by itself (a single-op row) pays ``isolated_launch_s``; kernels in a stream pay
  ``launch_overhead_s``. The GEMM family fits the first, so a launch fitted to small GEMMs
  cannot slow down a decode step; with the spec values (equal) nothing changes.
* Colfax's CUTLASS FMHA (``cutlass`` on Hopper) runs at wgmma's full rate without FA3's softmax
  overlap: no faster than FA3, no slower than FA2 on mma.sync.
Synthetic rows come from the model with known overrides, as in test_calibrate.py."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis import calibrate as cal
from analysis.traces import METRIC_UNITS
from analysis.validate import predict_row
from sim.cost import cost
from sim.cost.attention import attention_flops
from sim.cost.common import isolated_kernel
from sim.cost.efficiency import PARAMS, eff
from sim.hardware import load_device
from sim.ops import Attention, Gemm

H100 = "H100-SXM5-80GB"
GEMMS = ((256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096),
         (8192, 8192, 8192), (1024, 8192, 4096), (256, 4096, 4096))


def _row(i, workload, metric, source, dev=H100, family="gemm"):
    return {"id": f"L{i:04d}", "family": family, "hardware": dev,
            "scenario": json.dumps({"hardware": dev, "workload": workload}), "baseline_scenario": "",
            "metric": metric, "value": 1.0, "unit": METRIC_UNITS[metric], "source": source,
            "source_locator": "synthetic", "confidence": "derived", "notes": "", "fingerprint": "",
            "origin": "published"}


def test_spec_values_make_the_split_invisible():
    """With the spec defaults (both ~3 us, the null-kernel figure) an isolated kernel costs what
    the same kernel in a stream costs: the split changes no spec prediction."""
    dev = load_device(H100)
    assert PARAMS["isolated_launch_s"].default == PARAMS["launch_overhead_s"].default
    op = Gemm(m=512, n=512, k=512, dtype="bf16")
    with isolated_kernel():
        alone = cost(op, dev).time_s
    assert alone == cost(op, dev).time_s


@pytest.mark.parametrize("iso", [1e-6, 8e-6, 2.5e-5])
def test_isolated_launch_reaches_single_kernels_only(iso):
    """Raising the isolated launch adds exactly the difference to a lone kernel's time and nothing
    to the same kernel priced in a stream (each of a step's kernels)."""
    dev = load_device(H100)
    moved = cal.override(dev, {"isolated_launch_s": iso})
    op = Gemm(m=1024, n=1024, k=1024, dtype="bf16")
    with isolated_kernel():
        a0, a1 = cost(op, dev).time_s, cost(op, moved).time_s
    assert a1 - a0 == pytest.approx(iso - eff(dev, "isolated_launch_s"), rel=1e-9, abs=1e-15)
    assert cost(op, moved).time_s == cost(op, dev).time_s


def test_a_step_does_not_see_the_isolated_launch():
    """An end-to-end decode row (many kernels per step) is predicted the same whatever the isolated
    launch is; it follows the in-stream launch cost."""
    e2e = pd.read_csv("traces/published/end_to_end.csv")
    row = e2e[(e2e["family"] == "inference") & (e2e["hardware"] == H100)].iloc[0].to_dict()
    row["origin"] = "published"
    dev = load_device(H100)
    base = predict_row(row, device=dev)
    assert predict_row(row, device=cal.override(dev, {"isolated_launch_s": 2.5e-5})) == pytest.approx(base, rel=1e-12)
    assert predict_row(row, device=cal.override(dev, {"launch_overhead_s": 1.5e-5})) != pytest.approx(base, rel=1e-3)


def test_gemm_family_recovers_the_isolated_launch_and_leaves_the_stream_gap():
    """Single-GEMM rows generated with a 9 us isolated launch and a 0.76 Tensor Core fraction (1%
    noise): the GEMM family fits both back and never touches launch_overhead_s."""
    truth = {"isolated_launch_s": 9e-6, "tc_peak_fraction": 0.76}
    rng = np.random.default_rng(3)
    dev = cal.override(load_device(H100), truth)
    rows = [_row(i, {"kind": "gemm", "m": m, "n": n, "k": k, "dtype": "bf16"}, "tflops", f"src{i % 3}")
            for i, (m, n, k) in enumerate(GEMMS)]
    for r in rows:
        r["value"] = predict_row(r, device=dev) * math.exp(rng.normal(0.0, 0.01))
    res = cal.fit_family(pd.DataFrame(rows), load_device(H100), cal.FAMILY["gemm"], cal.predictor())
    assert res.values["tc_peak_fraction"] == pytest.approx(0.76, rel=0.03)
    assert res.values["isolated_launch_s"] == pytest.approx(9e-6, rel=0.15)
    assert "launch_overhead_s" not in res.values
    for n, v in res.values.items():
        assert PARAMS[n].lo <= v <= PARAMS[n].hi


def _tflops(impl, dev, hd=128, seq=4096, batch=4, heads=16):
    op = Attention(batch=batch, heads=heads, kv_heads=heads, seq_q=seq, seq_kv=seq, head_dim=hd,
                   causal=False, dtype="fp16", pass_="fwd", impl=impl)
    return attention_flops(op) / cost(op, dev).time_s / 1e12


@pytest.mark.parametrize("hd", [64, 128, 256])
def test_colfax_cutlass_sits_between_fa2_and_fa3_on_hopper(hd):
    """wgmma without warp specialisation: at least FA2's rate (mma.sync reaches only a fraction
    of the peak on Hopper) and at most FA3's (which also hides part of the softmax); with FA3's
    overlap set to 0 the two are the same kernel to the model."""
    dev = load_device(H100)
    fa2, cut, fa3 = _tflops("flash2", dev, hd), _tflops("cutlass", dev, hd), _tflops("flash3", dev, hd)
    assert fa2 <= cut <= fa3
    no_overlap = cal.override(dev, {"attn_flash3_overlap": 0.0})
    assert _tflops("cutlass", no_overlap, hd) == pytest.approx(_tflops("flash3", no_overlap, hd), rel=1e-9)


def test_cutlass_elsewhere_is_still_fa2():
    dev = load_device("A100-SXM4-80GB")
    assert _tflops("cutlass", dev) == pytest.approx(_tflops("flash2", dev), rel=1e-12)
