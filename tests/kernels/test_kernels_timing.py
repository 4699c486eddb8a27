"""Timing helpers and the machine fingerprint."""
import re
import time

from kernels import timing


def test_rotation_exceeds_twice_l2_when_memory_allows():
    l2 = 50 * 2**20
    for set_bytes in (2**20, 7 * 2**20, 40 * 2**20, 300 * 2**20):
        n = timing.rotation_count(set_bytes, l2, free_bytes=80 * 2**30)
        assert n >= 1
        assert n * set_bytes > 2 * l2 or n == 64                    # cap on the number of sets
    assert timing.rotation_count(2**30, l2, free_bytes=2**30) == 1     # never more than half the free memory


def test_wall_bench_measures_sleep():
    t = timing.wall_bench(lambda: time.sleep(0.01), warmup_s=0.0, rep_s=0.05, min_runs=3)
    assert 0.01 <= t < 0.05


def test_bench_without_gpu_times_host_code():
    t = timing.bench(lambda x: sum(x), lambda: (list(range(1000)),), warmup_ms=1, rep_ms=10)
    assert 0 < t < 0.01


def test_case_values_units():
    c = timing.Case("k", "gemm", {}, lambda: (), lambda: None, flops=2e12, bytes=1e9,
                    metrics=("time_s", "tflops", "gbps", "hbm_utilization"))
    v = c.values(0.5, hbm_Bps=4e9)
    assert v["time_s"] == (0.5, "s")
    assert v["tflops"] == (4.0, "TFLOP/s")
    assert v["gbps"] == (2.0, "GB/s")
    assert v["hbm_utilization"] == (0.5, "fraction")
    assert "hbm_utilization" not in c.values(0.5)                   # needs the spec bandwidth


def test_fingerprint_cpu_machine():
    fp = timing.fingerprint()
    assert fp["kind"] in ("cpu", "gpu")
    assert fp["cpu_cores"] >= 1 and fp["host_memory_bytes"] > 0
    assert fp["torch"] and fp["triton"]
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*-[0-9a-f]{8}", fp["id"])
    assert timing.fingerprint()["id"] == fp["id"]                    # stable


def test_fingerprint_id_tracks_the_stack():
    fp = {"gpu_name": "NVIDIA H100 80GB HBM3", "driver": "550.54", "torch": "2.4.0", "triton": "3.0.0"}
    a = timing.fingerprint_id(fp)
    assert a.startswith("NVIDIA-H100-80GB-HBM3-")
    assert timing.fingerprint_id({**fp, "torch": "2.5.0"}) != a
    assert timing.fingerprint_id({**fp, "sm_clock_now": 1}) == a     # transient fields do not change it
