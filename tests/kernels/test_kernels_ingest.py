"""Ingest of nccl-tests output and PyTorch profiler Chrome traces (small hand-written inputs)."""
import json

import pytest

from analysis import ingest
from analysis.traces import load_measured
from sim.errors import InputError

# nccl-tests 2.13 format (all_reduce_perf -b 8 -e 128M -f 2 -g 8), lines trimmed to a few sizes
NCCL = """\
# nThread 1 nGpus 8 minBytes 8 maxBytes 134217728 step: 2(factor) warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0
#
# Using devices
#  Rank  0 Group  0 Pid  41011 on     node01 device  0 [0x07] NVIDIA A100-SXM4-80GB
#  Rank  1 Group  0 Pid  41011 on     node01 device  1 [0x0f] NVIDIA A100-SXM4-80GB
#  Rank  2 Group  0 Pid  41011 on     node01 device  2 [0x47] NVIDIA A100-SXM4-80GB
#  Rank  3 Group  0 Pid  41011 on     node01 device  3 [0x4e] NVIDIA A100-SXM4-80GB
#  Rank  4 Group  0 Pid  41011 on     node01 device  4 [0x87] NVIDIA A100-SXM4-80GB
#  Rank  5 Group  0 Pid  41011 on     node01 device  5 [0x90] NVIDIA A100-SXM4-80GB
#  Rank  6 Group  0 Pid  41011 on     node01 device  6 [0xb7] NVIDIA A100-SXM4-80GB
#  Rank  7 Group  0 Pid  41011 on     node01 device  7 [0xbd] NVIDIA A100-SXM4-80GB
#
#                                                              out-of-place                       in-place
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
           8             2     float     sum      -1    40.12    0.00    0.00      0    39.85    0.00    0.00      0
     1048576        262144     float     sum      -1    52.40   20.01   35.02      0    51.90   20.20   35.36      0
   134217728      33554432     float     sum      -1   1120.5  119.78  209.62      0   1118.2  120.03  210.05      0
# Out of bounds values : 0 OK
# Avg bus bandwidth    : 81.68
#
"""

# an older nccl-tests layout: no root column, 'error' instead of '#wrong', N/A for in-place
NCCL_OLD = """\
# nThread 1 nGpus 2 minBytes 1024 maxBytes 4096 step: 2(factor) warmup iters: 5 iters: 20 validation: 1
#
#                                                     out-of-place                       in-place
#       size         count    type   redop     time   algbw   busbw  error     time   algbw   busbw  error
#        (B)    (elements)                     (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
        1024           256   float    none    10.00    0.10    0.05  0e+00      N/A     N/A     N/A    N/A
        4096          1024   float    none    12.00    0.34    0.17  0e+00      N/A     N/A     N/A    N/A
"""


def test_nccl_tests_table():
    with pytest.raises(InputError, match="op"):
        ingest.parse_nccl_tests(NCCL)                # the table does not say which test printed it
    p = ingest.parse_nccl_tests(NCCL, op="all_reduce")
    assert p["op"] == "all_reduce" and p["gpus"] == 8 and p["gpus_per_node"] == 8
    assert p["device"] == "NVIDIA A100-SXM4-80GB"
    assert [r["size"] for r in p["rows"]] == [8, 1048576, 134217728]
    big = p["rows"][2]["out-of-place"]
    assert big["time_s"] == pytest.approx(1120.5e-6)
    # the nccl-tests definitions the numbers obey: algbw = size/time, busbw = algbw * 2(n-1)/n
    assert big["algbw_gbps"] == pytest.approx(134217728 / 1120.5e-6 / 1e9, rel=1e-3)
    assert big["busbw_gbps"] == pytest.approx(big["algbw_gbps"] * 2 * 7 / 8, rel=1e-3)
    ms = ingest.nccl_measurements(p)
    assert len(ms) == 6 and {m["notes"].split(";")[0] for m in ms} == {"nccl-tests out-of-place",
                                                                       "nccl-tests in-place"}
    assert ms[0]["workload"] == {"kind": "collective", "op": "all_reduce", "bytes": 8.0, "gpus": 8}


def test_nccl_tests_older_layout():
    p = ingest.parse_nccl_tests(NCCL_OLD, op="all_gather")
    assert p["gpus"] == 2 and len(p["rows"]) == 2
    assert "in-place" not in p["rows"][0] and p["rows"][1]["out-of-place"]["time_s"] == pytest.approx(12e-6)


def test_ingest_nccl_file(tmp_path):
    f = tmp_path / "all_reduce_perf.txt"           # the op comes from the file name
    f.write_text(NCCL)
    n, part = ingest.ingest_file(f, tmp_path / "m")
    df = load_measured(tmp_path / "m")
    assert n == len(df) == 14                      # 3 sizes x 2 placements x 3 metrics, less the 4 zero bandwidths
    assert set(df["hardware"]) == {"A100-SXM4-80GB"}
    scen = json.loads(df["scenario"].iloc[0])
    assert scen["cluster"] == {"gpus": 8, "gpus_per_node": 8}
    with pytest.raises(InputError, match="already in the store"):
        ingest.ingest_file(f, tmp_path / "m")      # the same file twice is refused


def _trace():
    ev = [
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 0, "dur": 30,
         "args": {"External id": 1, "Input Dims": [[128, 256], [256, 512]], "Input type": ["c10::Half", "c10::Half"]}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 100, "dur": 30,
         "args": {"External id": 2, "Input Dims": [[128, 256], [256, 512]], "Input type": ["c10::Half", "c10::Half"]}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::_scaled_dot_product_flash_attention", "ts": 200, "dur": 30,
         "args": {"External id": 3, "Input Dims": [[2, 8, 512, 64], [2, 8, 512, 64], [2, 8, 512, 64], [], [], [], []],
                  "Input type": ["c10::BFloat16"] * 3 + ["Scalar", "Scalar", "Scalar", ""],
                  "Concrete Inputs": ["", "", "", "0.", "True", "False", ""]}},
        {"ph": "X", "cat": "kernel", "name": "ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_tn", "ts": 5, "dur": 10.0,
         "args": {"External id": 1}},
        {"ph": "X", "cat": "kernel", "name": "sm80_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize64x64x64", "ts": 105,
         "dur": 14.0, "args": {"External id": 2}},
        {"ph": "X", "cat": "kernel", "name": "splitKreduce_kernel", "ts": 120, "dur": 2.0, "args": {"External id": 2}},
        {"ph": "X", "cat": "kernel", "name": "flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128>>", "ts": 205,
         "dur": 40.0, "args": {"External id": 3}},
        {"ph": "X", "cat": "kernel", "name": "ncclDevKernel_AllReduce_Sum_f32_RING_LL", "ts": 300, "dur": 25.0,
         "args": {}},
        {"ph": "X", "cat": "kernel", "name": "void at::native::vectorized_elementwise_kernel<4>", "ts": 400,
         "dur": 3.0, "args": {"External id": 9}},
    ]
    return {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA A100-SXM4-80GB",
                                                       "totalGlobalMem": 85e9}], "traceEvents": ev}


def test_kernel_families_by_name():
    fam = ingest.kernel_family
    assert fam("ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_tn") == "gemm"
    assert fam("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n") == "gemm"
    assert fam("cutlass::Kernel<cutlass_80_tensorop_s1688gemm>") == "gemm"
    assert fam("gemv2T_kernel_val") == "gemm"
    assert fam("flash_fwd_kernel<...>") == "attention"
    assert fam("fmha_cutlassF_f16_aligned_64x64_rf_sm80") == "attention"
    assert fam("ncclDevKernel_AllReduce_Sum_f32_RING_LL") == "collective"
    assert fam("void at::native::vectorized_elementwise_kernel<4>") == "memory"


def test_chrome_trace_ops_and_summary():
    ms, summary = ingest.parse_chrome_trace(_trace())
    by = {m["family"]: m for m in ms}
    g = by["gemm"]
    assert g["workload"] == {"kind": "gemm", "m": 128, "n": 512, "k": 256, "dtype": "fp16"}
    t = (10e-6 + 16e-6) / 2                          # median of the two calls; the split-K reduce belongs to its op
    assert g["values"]["time_s"][0] == pytest.approx(t)
    assert g["values"]["tflops"][0] == pytest.approx(2 * 128 * 512 * 256 / t / 1e12)
    a = by["attention"]
    assert a["workload"]["causal"] is True and a["workload"]["dtype"] == "bf16"
    assert a["values"]["tflops"][0] == pytest.approx(2 * 2 * 8 * 512 * 512 * 64 / 40e-6 / 1e12)   # causal: half
    names = {s["name"]: s for s in summary}
    assert names["ncclDevKernel_AllReduce_Sum_f32_RING_LL"]["family"] == "collective"
    assert len(ms) == 2                              # the nccl and elementwise kernels have no shapes: no rows


def test_ingest_chrome_trace_file(tmp_path):
    f = tmp_path / "trace.json"
    f.write_text(json.dumps(_trace()))
    n, _ = ingest.ingest_file(f, tmp_path / "m")
    df = load_measured(tmp_path / "m")
    assert n == len(df) == 4 and set(df["hardware"]) == {"A100-SXM4-80GB"}
    assert set(df["metric"]) == {"time_s", "tflops"}


def test_chrome_trace_without_shapes_is_refused(tmp_path):
    t = _trace()
    t["traceEvents"] = [e for e in t["traceEvents"] if e["cat"] == "kernel"]
    f = tmp_path / "noshapes.json"
    f.write_text(json.dumps(t))
    with pytest.raises(InputError, match="record_shapes"):
        ingest.ingest_file(f, tmp_path / "m")
