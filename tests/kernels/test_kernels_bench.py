"""``gpusim bench`` without a GPU, the rows it writes, and the scenarios of every kernel case."""
import argparse
import importlib
import json

import pandas as pd
import pytest

from analysis import bench
from analysis.traces import check_row, load_measured


@pytest.mark.parametrize("name,mem,zoo", [
    ("NVIDIA H100 80GB HBM3", 85e9, "H100-SXM5-80GB"),
    ("NVIDIA H100 PCIe", 85e9, "H100-PCIe-80GB"),
    ("NVIDIA A100-SXM4-40GB", 42e9, "A100-SXM4-40GB"),
    ("NVIDIA A100-SXM4-80GB", 85e9, "A100-SXM4-80GB"),
    ("NVIDIA A100 80GB PCIe", 85e9, "A100-PCIe-80GB"),
    ("NVIDIA H200", 150e9, "H200-SXM-141GB"),
    ("NVIDIA GeForce RTX 4090", 25e9, "RTX-4090"),
    ("NVIDIA A10", 24e9, "A10"),
    ("Tesla T4", 16e9, "T4"),
    ("NVIDIA H100 NVL", 100e9, "NVIDIA H100 NVL"),          # no zoo entry: the raw name
    ("Some Future GPU", 1e9, "Some Future GPU"),
])
def test_zoo_name(name, mem, zoo):
    assert bench.zoo_name(name, mem) == zoo


def test_rows_follow_the_trace_schema():
    fp = {"id": "NVIDIA-H100-80GB-HBM3-0123abcd"}
    ms = [{"family": "gemm", "kernel": "triton.gemm", "workload": {"kind": "gemm", "m": 8, "n": 8, "k": 8,
                                                                    "dtype": "fp16"},
           "values": {"time_s": (1e-5, "s"), "tflops": (1e-7, "TFLOP/s")}, "notes": ""},
          {"family": "collective", "kernel": "nccl.all_reduce",
           "workload": {"kind": "collective", "op": "all_reduce", "bytes": 1024.0, "gpus": 8},
           "values": {"time_s": (2e-5, "s"), "busbw_gbps": (0.0, "GB/s")}, "notes": ""}]
    rows = bench.rows_from(ms, fp, "H100-SXM5-80GB", "s1")
    assert len(rows) == 3                                   # the zero busbw is dropped
    for r in rows:
        check_row(r, "test", measured=True)
    assert json.loads(rows[2]["scenario"])["cluster"] == {"gpus": 8, "gpus_per_node": 8}
    assert len({r["id"] for r in rows}) == 3


def test_every_case_scenario_predicts():
    """Each Triton and vendor case maps onto a scenario the model prices, with the metrics the
    case reports (hbm_utilization is derived from time, bytes and the spec)."""
    from sim.scenario import predict
    n = 0
    for name in bench.TRITON_MODULES + ("kernels.vendor",):
        for c in importlib.import_module(name).cases(quick=False):
            p = predict({"hardware": "H100-SXM5-80GB", "workload": c.workload})
            assert p.time_s > 0
            assert all(m in p.metrics for m in c.metrics if m not in ("time_s", "hbm_utilization")), c.kernel
            n += 1
    assert n > 100


def test_bench_without_gpu_runs_host_probes(tmp_path, capsys):
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    out = tmp_path / "measured"
    args = p.parse_args(["--out", str(out), "--host-mb", "8", "--storage-dir", str(tmp_path),
                         "--only", "host_memory,storage,cpu_adam"])
    assert bench.run(args) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "no CUDA GPU: running host probes only"
    df = load_measured(out)
    assert set(df["family"]) == {"host_memory", "storage", "cpu_adam"}
    assert (df["confidence"] == "measured").all() and (df["source"] == "gpusim bench").all()
    csv = next(out.glob("*/*.csv"))
    copy = pd.read_csv(csv)
    assert len(copy) == len(df) and "fingerprint_json" in copy.columns
    # the CSV carried to another checkout gives the same rows there
    from analysis.ingest import ingest_file
    n, _ = ingest_file(csv, tmp_path / "elsewhere")
    other = load_measured(tmp_path / "elsewhere")
    assert n == len(df) and sorted(other["id"]) == sorted(df["id"])
