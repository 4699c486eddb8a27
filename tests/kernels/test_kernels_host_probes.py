"""Host probes at small sizes: real measurements, checked for sense and for scenarios the
model can price."""
import math

import pytest

from kernels import host_probes as hp


def _check(ms, family):
    assert ms
    for m in ms:
        assert m["family"] == family
        t = m["values"]["time_s"][0]
        assert math.isfinite(t) and t > 0
        gbps, unit = m["values"]["gbps"]
        assert unit == "GB/s"
        assert gbps == pytest.approx(m["workload"]["bytes"] / t / 1e9)   # GB/s is the workload's bytes per second


def test_host_memory_small():
    ms = hp.host_memory(array_mb=8, rep_s=0.05)
    _check(ms, "host_memory")
    kinds = {m["kernel"]: m["workload"] for m in ms}
    assert kinds["numpy.copyto"] == {"kind": "transfer", "src": "host", "dst": "host", "bytes": 8.0 * 2**20}
    assert kinds["numba.triad"]["bytes"] == 3 * 8 * 2**20         # STREAM triad: three arrays
    # a copy cannot beat memory: well under 10 TB/s on any host
    assert all(m["values"]["gbps"][0] < 1e4 for m in ms)


def test_cpu_adam_small():
    ms = hp.cpu_adam(params=2**18, steps=2)
    _check(ms, "cpu_adam")
    for m in ms:
        assert m["workload"]["bytes"] == 28 * 2**18 and m["workload"]["op"] == "adam"


def test_storage_small(tmp_path):
    ms = hp.storage(file_mb=8, chunk_mb=1, directory=str(tmp_path))
    _check(ms, "storage")
    assert {(m["workload"]["src"], m["workload"]["dst"]) for m in ms} == {("host", "nvme"), ("nvme", "host")}
    assert ("O_DIRECT" in ms[0]["notes"]) or ("buffered" in ms[0]["notes"])
    assert not list(tmp_path.iterdir())                             # the probe cleans up


def test_transfer_workloads_validate():
    """The scenarios of host rows the model has a kind for predict without error."""
    from sim.scenario import predict
    for wl in ({"kind": "transfer", "src": "host", "dst": "host", "bytes": 2**28},
               {"kind": "transfer", "src": "host", "dst": "nvme", "bytes": 2**29},
               {"kind": "transfer", "src": "host", "dst": "hbm", "bytes": 2**28, "pinned": True}):
        p = predict({"hardware": "H100-SXM5-80GB", "workload": wl})
        assert p.time_s > 0 and "gbps" in p.metrics
