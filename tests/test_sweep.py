"""Sweeps: expansion, atomic resumable output, identical results after a kill, and Dask."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.sweep import evaluate, expand, run_sweep
from sim.errors import InputError

SPEC = {
    "base": {"hardware": "H100-SXM5-80GB",
             "workload": {"kind": "gemm", "m": 1, "n": 4096, "k": 4096, "dtype": "bf16"}},
    "grid": {"workload.m": [1, 8, 64, 512, 4096], "whatif.hbm_bandwidth": [0.5, 1, 2, 4]},
    "list": [{"workload.dtype": "fp8"}],
    "chunk": 2,
}


def test_expand_is_the_cartesian_product_plus_list():
    configs = expand(SPEC)
    assert len(configs) == 5 * 4 + 1
    assert [c["config_id"] for c in configs] == list(range(21))
    assert configs[0]["scenario"]["workload"]["m"] == 1
    assert configs[0]["scenario"]["whatif"]["hbm_bandwidth"] == 0.5
    assert configs[-1]["scenario"]["workload"]["dtype"] == "fp8"
    assert SPEC["base"]["workload"]["m"] == 1          # the base is not mutated


def test_bad_sweep_names_the_field():
    with pytest.raises(InputError, match="grid.workload.m"):
        expand({"base": {}, "grid": {"workload.m": 3}})
    with pytest.raises(InputError, match="gird"):
        expand({"base": {}, "gird": {}})


def test_more_hbm_bandwidth_never_slower_in_a_sweep():
    rows = [evaluate(c) for c in expand(SPEC)[:4]]           # m=1 across 0.5x..4x HBM
    times = [r["time_s"] for r in rows]
    assert times == sorted(times, reverse=True)
    assert times[0] > times[-1]                                # a skinny GEMM is HBM-bound


def test_a_bad_configuration_is_a_row_not_a_crash():
    row = evaluate({"config_id": 0, "overrides": {}, "scenario": {"hardware": "nope", "workload": {"kind": "gemm"}}})
    assert "unknown device" in row["error"]


def _clean(df):
    return df.drop(columns=[c for c in df.columns if c == "provenance"]).reset_index(drop=True)


def test_killed_sweep_resumes_with_exactly_the_clean_rows(tmp_path):
    spec = dict(SPEC, chunk=1)
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(yaml.safe_dump(spec))
    gpusim = [sys.executable, "-m", "analysis.cli"]
    killed_out = tmp_path / "killed.parquet"
    parts = killed_out.with_name(killed_out.name + ".parts")
    env = dict(os.environ, GPUSIM_SWEEP_DELAY_S="0.2")
    proc = subprocess.Popen(gpusim + ["sweep", str(sweep_file), "--out", str(killed_out), "--workers", "1",
                                      "--no-progress"], start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts.glob("chunk-*.parquet"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(parts.glob("chunk-*.parquet")))
    assert 3 <= done_before < 21 and not killed_out.exists()
    subprocess.run(gpusim + ["sweep", str(sweep_file), "--out", str(killed_out), "--workers", "1", "--no-progress"],
                   check=True, capture_output=True)
    clean_out = tmp_path / "clean.parquet"
    subprocess.run(gpusim + ["sweep", str(sweep_file), "--out", str(clean_out), "--workers", "1", "--no-progress"],
                   check=True, capture_output=True)
    resumed, clean = pd.read_parquet(killed_out), pd.read_parquet(clean_out)
    assert len(resumed) == 21 and not parts.exists()
    pd.testing.assert_frame_equal(_clean(resumed), _clean(clean))


def test_local_threads_client_matches_serial(tmp_path):
    from dask.distributed import Client, LocalCluster
    with Client(LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)) as c:
        df = run_sweep(SPEC, tmp_path / "x.parquet", c, progress=False)
    serial = _clean(pd.DataFrame([evaluate(cfg) for cfg in expand(SPEC)]))
    pd.testing.assert_frame_equal(_clean(df)[serial.columns.tolist()], serial, check_dtype=False)
