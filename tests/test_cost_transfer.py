"""Transfers between GPU memory, host DRAM and NVMe: PCIe arithmetic, pipelined stages, pinned
vs pageable, and physical bounds."""
import pytest
from hypothesis import given, settings, strategies as st

from sim.cost.efficiency import PARAMS
from sim.cost.transfer import price
from sim.hardware import load_device
from sim.hardware.spec import HostSpec
from sim.hardware.system import Cluster, System, pcie_Bps
from sim.ops import Transfer

GiB = 2 ** 30
P = {k: v.default for k, v in PARAMS.items()}
H100 = load_device("H100-SXM5-80GB")


def host(gen=5, lanes=16, dram_gbps=600.0, drives=8, read=6.9, write=4.2):
    return HostSpec(name="test-host", gpus=8, cpu={"model": "x", "sockets": 2, "cores": 112, "fp32_tflops": 8},
                    dram={"capacity_gb": 2048, "bandwidth_gbps": dram_gbps}, pcie_generation=gen,
                    pcie_lanes_per_gpu=lanes, network_gbps_per_gpu=100,
                    nvme={"drives": drives, "capacity_tb_per_drive": 3.84 if drives else 0,
                          "read_gbps_per_drive": read, "write_gbps_per_drive": write},
                    sources={k: "t" for k in ("gpus", "cpu", "dram", "pcie_generation", "pcie_lanes_per_gpu", "network_gbps_per_gpu", "nvme")})


def system(device=H100, **kw):
    return System(device, host(**kw), Cluster())


def rate(src, dst, nbytes=16 * GiB, pinned=True, s=None):
    c = price(Transfer(src, dst, nbytes, pinned), s or system())
    return nbytes / c.time_s, c


def test_pinned_h2d_and_d2h_reach_the_pcie_payload_rate():
    raw = pcie_Bps(5, 16)
    h2d, c = rate("host", "hbm")
    d2h, _ = rate("hbm", "host")
    assert c.bound == "pcie"
    assert h2d == pytest.approx(raw * P["pcie_h2d_efficiency"], rel=1e-3)
    assert d2h == pytest.approx(raw * P["pcie_efficiency"], rel=1e-3)
    # Gen5 x16: 32 GT/s x 16 lanes x 128/130 / 8 = 63.0 GB/s per direction before packet overhead
    assert raw == pytest.approx(63.0e9, rel=2e-3)


def test_pcie_path_takes_the_slower_generation_and_the_fewer_lanes():
    full, _ = rate("host", "hbm")
    gen4, _ = rate("host", "hbm", s=system(gen=4))
    x8, _ = rate("host", "hbm", s=system(lanes=8))
    assert gen4 == pytest.approx(full / 2, rel=1e-3)
    assert x8 == pytest.approx(full / 2, rel=1e-3)


@settings(max_examples=50, deadline=None)
@given(nbytes=st.floats(1.0, 64 * GiB), to_gpu=st.booleans(), gen=st.sampled_from([3, 4, 5]))
def test_pinned_is_faster_than_pageable(nbytes, to_gpu, gen):
    src, dst = ("host", "hbm") if to_gpu else ("hbm", "host")
    s = system(gen=gen)
    pinned = price(Transfer(src, dst, nbytes, True), s).time_s
    pageable = price(Transfer(src, dst, nbytes, False), s).time_s
    assert pinned <= pageable
    if nbytes > 2 ** 26:
        assert pinned < pageable


@settings(max_examples=50, deadline=None)
@given(nbytes=st.floats(1.0, 64 * GiB), gen=st.sampled_from([3, 4, 5, 6]), lanes=st.sampled_from([4, 8, 16]),
       src_dst=st.sampled_from([("host", "hbm"), ("hbm", "host"), ("nvme", "hbm"), ("hbm", "nvme")]),
       pinned=st.booleans())
def test_never_faster_than_the_raw_pcie_link(nbytes, gen, lanes, src_dst, pinned):
    src, dst = src_dst
    t = price(Transfer(src, dst, nbytes, pinned), system(gen=gen, lanes=lanes)).time_s
    assert nbytes / t <= pcie_Bps(min(gen, H100.pcie.generation), min(lanes, H100.pcie.lanes))


def test_pageable_is_bounded_by_the_staging_copy_and_dram():
    r, c = rate("host", "hbm", pinned=False)
    assert c.bound == "cpu"
    assert r == pytest.approx(P["pageable_staging_Bps"], rel=1e-3)
    # a host whose DRAM is slow: the staging copy's read+write plus the DMA read (3 bytes per byte)
    r, c = rate("host", "hbm", pinned=False, s=system(dram_gbps=20.0))
    assert c.bound == "dram_bandwidth"
    assert r == pytest.approx(20e9 * P["dram_efficiency"] / 3, rel=1e-3)


def test_nvme_host_legs_run_at_the_striped_drive_rate():
    r, c = rate("nvme", "host")
    assert c.bound == "nvme_read"
    assert r == pytest.approx(8 * 6.9e9 * P["nvme_read_efficiency"], rel=1e-2)
    r, c = rate("host", "nvme")
    assert c.bound == "nvme_write"
    assert r == pytest.approx(8 * 4.2e9 * P["nvme_write_efficiency"], rel=1e-2)


@pytest.mark.parametrize("drives", [1, 2, 8, 16])
def test_nvme_to_gpu_through_a_bounce_buffer_is_the_slower_of_nvme_and_pcie(drives):
    s = system(drives=drives)
    r, _ = rate("nvme", "hbm", s=s)
    nvme = drives * 6.9e9 * P["nvme_read_efficiency"]
    pcie = pcie_Bps(5, 16) * P["pcie_h2d_efficiency"]
    assert r == pytest.approx(min(nvme, pcie), rel=1e-2)
    w, _ = rate("hbm", "nvme", s=s)
    assert w == pytest.approx(min(drives * 4.2e9 * P["nvme_write_efficiency"], pcie_Bps(5, 16) * P["pcie_efficiency"]),
                              rel=1e-2)


def test_host_to_host_copy_reads_and_writes_dram():
    r, c = rate("host", "host")
    assert c.bound == "dram_bandwidth"
    assert r == pytest.approx(600e9 * P["dram_efficiency"] / 2, rel=1e-3)


def test_small_transfers_pay_the_fixed_latency():
    c = price(Transfer("host", "hbm", 64, True), system())
    assert c.bound == "latency"
    assert c.time_s == pytest.approx(P["transfer_latency_s"], rel=1e-3)
    c = price(Transfer("nvme", "host", 4096, True), system())
    assert c.time_s == pytest.approx(P["nvme_latency_s"], rel=1e-2)


def test_impossible_transfers_are_rejected():
    with pytest.raises(ValueError, match="memory"):
        price(Transfer("hbm", "hbm", GiB), system())
    with pytest.raises(ValueError, match="NVMe"):
        price(Transfer("nvme", "hbm", GiB), system(drives=0, read=0, write=0))
