"""NVMe request-size pricing and GPUDirect Storage in the transfer model, and the two storage hosts.

The physics: a stream of b-byte requests with q in flight completes at min(q / L, k x IOPS) requests
per second (Little's law with the queue-depth-1 latency L = 1 / IOPS_QD1, capped by k drives' rated
IOPS), and never faster than the drives' sequential bandwidth or host DRAM. Expected values are
built from the test host's datasheet-style figures and the declared parameter defaults, never from
the model's output.
"""
import math

import pytest
from hypothesis import given, settings, strategies as st

from sim.cost.efficiency import PARAMS
from sim.cost.transfer import price
from sim.errors import InputError
from sim.hardware import load_device, load_host
from sim.hardware.spec import HostSpec
from sim.hardware.system import Cluster, System, pcie_Bps
from sim.ops import Transfer
from sim.scenario import predict

GiB = 2 ** 30
KiB4 = 4096
P = {k: v.default for k, v in PARAMS.items()}
A100P = load_device("A100-PCIe-80GB")
BASE = ("gpus", "cpu", "dram", "pcie_generation", "pcie_lanes_per_gpu", "network_gbps_per_gpu", "nvme")
IOPS_FIELDS = ("random_read_iops_per_drive", "random_write_iops_per_drive",
               "random_read_iops_qd1_per_drive", "random_write_iops_qd1_per_drive")


def host(drives=1, read=7.0, write=5.1, iops=1e6, wiops=1e6, qd1=22e3, wqd1=60e3, dram_gbps=400.0, gen=4):
    nvme = {"drives": drives, "capacity_tb_per_drive": 2.0, "read_gbps_per_drive": read,
            "write_gbps_per_drive": write, "random_read_iops_per_drive": iops, "random_write_iops_per_drive": wiops,
            "random_read_iops_qd1_per_drive": qd1, "random_write_iops_qd1_per_drive": wqd1}
    return HostSpec(name="test-host", gpus=1, cpu={"model": "x", "sockets": 1, "cores": 16, "fp32_tflops": 1.7},
                    dram={"capacity_gb": 64, "bandwidth_gbps": dram_gbps}, pcie_generation=gen,
                    pcie_lanes_per_gpu=16, network_gbps_per_gpu=10, nvme=nvme,
                    sources={k: "t" for k in BASE + tuple(f"nvme.{f}" for f in IOPS_FIELDS)})


def system(**kw):
    return System(A100P, host(**kw), Cluster())


def io(src="nvme", dst="host", nbytes=64 * GiB, block=KiB4, qd=1024, pattern="random", s=None, **kw):
    op = Transfer(src, dst, nbytes, pattern=pattern, block_bytes=block, queue_depth=qd, **kw)
    return price(op, s or system())


def rate(c, nbytes=64 * GiB):
    return nbytes / c.time_s


# ---------------------------------------------------------------------------------- the bound
@pytest.mark.parametrize("iops", [2e5, 1e6, 3e6])
def test_deep_random_4k_read_is_min_of_iops_x_block_and_sequential_bandwidth(iops):
    c = io(s=system(iops=iops))
    expected = min(iops * P["nvme_iops_efficiency"] * KiB4, 7.0e9 * P["nvme_read_efficiency"])
    assert rate(c) == pytest.approx(expected, rel=1e-3)
    assert c.bound == ("nvme_iops" if iops * KiB4 < 7e9 else "nvme_read")


def test_deep_random_4k_write_uses_the_write_figures():
    c = io("host", "nvme", s=system(wiops=5e5))
    assert rate(c) == pytest.approx(5e5 * P["nvme_iops_efficiency"] * KiB4, rel=1e-3)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 5000), drives=st.sampled_from([1, 2, 4, 8]), qd1=st.floats(5e3, 1e5))
def test_queue_depth_one_is_one_latency_per_request(n, drives, qd1):
    """At QD1 every request waits for the one before: n requests take n x L, L = 1 / IOPS_QD1, and a
    RAID0 does not shorten it (one request is on one drive at a time)."""
    c = io(nbytes=n * KiB4, qd=1, s=system(drives=drives, qd1=qd1, dram_gbps=4000.0))
    assert c.time_s >= n / qd1 * (1 - 1e-12)
    # exact but for host DRAM streaming one request's bytes (4 KiB at 3.2 TB/s: ~1 ns)
    assert c.time_s == pytest.approx(n / qd1, rel=1e-3)


def test_littles_law_between_qd1_and_the_iops_plateau():
    """q requests in flight: q / L per second until the rated IOPS cap; here 8 x 22k = 176k < 1M."""
    c = io(qd=8)
    assert rate(c) == pytest.approx(8 * 22e3 * KiB4, rel=1e-3)
    assert c.bound == "nvme_iops"


def test_larger_requests_add_their_transfer_time_to_the_qd1_latency():
    """A 1 MiB request at QD1 pays the 4 KiB latency plus the extra bytes at the drive's rate."""
    b = 2 ** 20
    c = io(nbytes=100 * b, block=b, qd=1)
    per_request = 1 / 22e3 + (b - KiB4) / 7.0e9
    assert c.time_s == pytest.approx(100 * per_request, rel=1e-6)


@pytest.mark.parametrize("drives", [1, 2, 4, 8])
def test_raid0_scales_iops_and_bandwidth_by_drives(drives):
    iops = 2e5                         # IOPS-bound on one drive: 0.82 GB/s
    c = io(s=system(drives=drives, iops=iops))
    assert rate(c) == pytest.approx(min(drives * iops * KiB4, drives * 7e9), rel=1e-3)
    seq = price(Transfer("nvme", "host", 64 * GiB), system(drives=drives))
    assert rate(seq) == pytest.approx(drives * 7e9 * P["nvme_read_efficiency"], rel=1e-2)


def test_raid0_scaling_is_capped_by_host_dram():
    """16 drives x 7 GB/s = 112 GB/s of reads land in a 51.2 GB/s DRAM: DRAM sets the rate."""
    for c in (io(block=2 ** 20, s=system(drives=16, dram_gbps=51.2)),
              price(Transfer("nvme", "host", 64 * GiB), system(drives=16, dram_gbps=51.2))):
        assert c.bound == "dram_bandwidth"
        assert rate(c) == pytest.approx(51.2e9 * P["dram_efficiency"], rel=1e-2)


def test_raid0_does_not_help_at_queue_depth_one():
    one, eight = io(qd=1, s=system(drives=1)), io(qd=1, s=system(drives=8))
    assert one.time_s == pytest.approx(eight.time_s, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(iops=st.floats(1e4, 5e6), more=st.floats(1.0, 10.0), qd1=st.floats(1e3, 2e5), qd=st.integers(1, 4096),
       block=st.sampled_from([512, 4096, 65536, 2 ** 20]), nbytes=st.floats(4096, 16 * GiB),
       write=st.booleans(), drives=st.integers(1, 8))
def test_more_iops_or_depth_is_never_slower(iops, more, qd1, qd, block, nbytes, write, drives):
    src, dst = ("host", "nvme") if write else ("nvme", "host")
    kw = dict(drives=drives)

    def t(i, q1, q):
        return io(src, dst, nbytes, block, q, s=system(iops=i, wiops=i, qd1=q1, wqd1=q1, **kw)).time_s
    base = t(iops, qd1, qd)
    assert t(iops * more, qd1, qd) <= base * (1 + 1e-12)
    assert t(iops, qd1 * more, qd) <= base * (1 + 1e-12)
    assert t(iops, qd1, qd * 2) <= base * (1 + 1e-12)
    # and a request stream is never faster than streaming the same bytes in large requests
    stream = price(Transfer(src, dst, nbytes), system(iops=iops, wiops=iops, qd1=qd1, wqd1=qd1, **kw))
    assert nbytes / base <= nbytes / (stream.time_s - P["nvme_latency_s"]) * (1 + 1e-9)


def test_sequential_small_requests_are_priced_with_the_same_command_rate():
    seq, rnd = io(pattern="sequential"), io(pattern="random")
    assert seq.time_s == pytest.approx(rnd.time_s, rel=1e-12)
    assert "sequential small requests" in " ".join(seq.detail["path"])


def test_breakdown_explains_the_bound():
    c = io(s=system(iops=2e5))
    assert "IOPS" in c.detail["explanation"]
    path = " ".join(c.detail["path"])
    assert "Little" in path or "rated IOPS" in path
    assert c.detail["request"] == {"pattern": "random", "block_bytes": KiB4, "queue_depth": 1024}


# ---------------------------------------------------------------------------------- GPUDirect Storage
def test_gds_skips_host_dram_and_runs_at_the_slower_of_nvme_and_pcie():
    s = system(drives=8, read=7.0, dram_gbps=25.0)      # DRAM too slow for 56 GB/s of NVMe reads
    bounce = price(Transfer("nvme", "hbm", 64 * GiB), s)
    gds = price(Transfer("nvme", "hbm", 64 * GiB, gds=True), s)
    assert gds.bytes["dram"] == 0 and bounce.bytes["dram"] > 0
    pcie = pcie_Bps(4, 16) * P["pcie_efficiency"]       # the drives write GPU memory: posted writes
    assert rate(gds) == pytest.approx(min(8 * 7e9 * P["nvme_read_efficiency"], pcie), rel=1e-2)
    assert gds.time_s < bounce.time_s


def test_gds_is_never_slower_than_the_bounce_buffer():
    for kw in ({}, {"drives": 4}, {"dram_gbps": 20.0}):
        for src, dst in (("nvme", "hbm"), ("hbm", "nvme")):
            s = system(**kw)
            assert price(Transfer(src, dst, GiB, gds=True), s).time_s <= price(Transfer(src, dst, GiB), s).time_s


# ---------------------------------------------------------------------------------- bad input
def scen(**wl):
    return {"hardware": "RTX-4090", "host": "Gen4-desktop-980PRO",
            "workload": {"kind": "transfer", "src": "nvme", "dst": "host", "bytes": GiB, **wl}}


@pytest.mark.parametrize("wl,field", [
    ({"block_bytes": -4096}, "workload.block_bytes"),
    ({"block_bytes": 0}, "workload.block_bytes"),
    ({"pattern": "strided", "block_bytes": 4096}, "workload.pattern"),
    ({"pattern": "random"}, "workload.block_bytes"),
    ({"queue_depth": 0, "block_bytes": 4096}, "workload.queue_depth"),
    ({"src": "host", "dst": "hbm", "block_bytes": 4096}, "workload.block_bytes"),
    ({"gds": True}, "workload.gds"),
])
def test_bad_request_fields_name_the_field(wl, field):
    with pytest.raises(InputError) as e:
        predict(scen(**wl))
    assert e.value.field == field


def test_a_host_without_iops_figures_refuses_request_sizes():
    s = {"hardware": "A100-PCIe-80GB", "host": "NC96ads-A100-v4",
         "workload": {"kind": "transfer", "src": "nvme", "dst": "host", "bytes": GiB, "block_bytes": 4096}}
    with pytest.raises(InputError) as e:
        predict(s)
    assert e.value.field == "workload.block_bytes" and "random_read_iops" in str(e.value)


def test_op_level_checks_raise_for_direct_callers():
    with pytest.raises(ValueError, match="pattern"):
        price(Transfer("nvme", "host", GiB, pattern="strided", block_bytes=4096), system())
    with pytest.raises(ValueError, match="block_bytes"):
        price(Transfer("nvme", "host", GiB, block_bytes=-1.0), system())
    with pytest.raises(ValueError, match="gds"):
        price(Transfer("host", "hbm", GiB, gds=True), system())


def test_an_iops_figure_without_a_source_is_refused():
    raw = host().model_dump()
    del raw["sources"]["nvme.random_read_iops_qd1_per_drive"]
    with pytest.raises(InputError) as e:
        load_host(raw)
    assert "nvme.random_read_iops_qd1_per_drive" in str(e.value)


# ---------------------------------------------------------------------------------- the two hosts
@pytest.mark.parametrize("name", ["NC96ads-A100-v4", "Gen4-desktop-980PRO"])
def test_storage_hosts_load_and_source_every_figure(name):
    h = load_host(name)
    assert h.name == name and h.notes.strip()
    figures = list(BASE) + [f"nvme.{f}" for f in IOPS_FIELDS if getattr(h.nvme, f) is not None]
    assert all(h.sources.get(f, "").strip() for f in figures)


def test_nc96ads_published_figures():
    """Azure size page: 4 GPUs, 96 non-SMT Milan cores, 880 GiB, 4 x 960 GB NVMe, 80 Gbit/s over 8 NICs;
    DeepNVMe blog: 3.25 GB/s reads per drive, 13 GB/s for the RAID0 of four."""
    h = load_host("NC96ads-A100-v4")
    assert (h.gpus, h.cpu.cores, h.nvme.drives) == (4, 96, 4)
    assert h.dram.capacity_gb == pytest.approx(880 * 2 ** 30 / 1e9, rel=0.002)
    assert h.nvme_read_Bps == pytest.approx(13e9)
    assert h.nvme_bytes == pytest.approx(4 * 960e9)
    assert h.network_gbps_per_gpu * h.gpus == pytest.approx(80)
    assert h.cpu.fp32_tflops == pytest.approx(96 * 8 * 2 * 2 * 2.45 / 1000, rel=0.01)
    assert h.dram.bandwidth_gbps == pytest.approx(2 * 8 * 3200 * 8 / 1000)
    assert h.nvme.random_read_iops_per_drive is None        # Azure publishes none for these disks


def test_980pro_datasheet_figures():
    """Samsung 980 PRO 2 TB: 7,000 / 5,100 MB/s sequential, 1M random 4K IOPS each way, 22k QD1 reads."""
    n = load_host("Gen4-desktop-980PRO").nvme
    assert (n.drives, n.read_gbps_per_drive, n.write_gbps_per_drive) == (1, 7.0, 5.1)
    assert (n.random_read_iops_per_drive, n.random_write_iops_per_drive) == (1e6, 1e6)
    assert 1 / n.random_read_iops_qd1_per_drive == pytest.approx(45.5e-6, rel=0.01)   # ~45 us per read


def test_980pro_4k_requests_cannot_reach_its_sequential_rate():
    """1M IOPS x 4 KiB = 4.1 GB/s < 7 GB/s: a deep 4 KiB stream is command-rate-bound on this drive."""
    p = predict(scen(block_bytes=4096, queue_depth=1024, bytes=16 * GiB))
    assert p.bound == "nvme_iops"
    assert p.metrics["gbps"] == pytest.approx(1e6 * KiB4 / 1e9, rel=1e-3)
    assert math.isclose(predict(scen(bytes=16 * GiB)).metrics["gbps"], 7.0, rel_tol=0.01)


# ---------------------------------------------------------------------------------- consumer write cache
def cached_system(cache_gb=200.0, sustained=2.0, **kw):
    h = host(**kw).model_dump()
    h["nvme"].update(write_cache_gb_per_drive=cache_gb, sustained_write_gbps_per_drive=sustained)
    h["sources"].update({"nvme.write_cache_gb_per_drive": "t", "nvme.sustained_write_gbps_per_drive": "t"})
    return System(A100P, load_host(h), Cluster())


def write(nbytes, s, **kw):
    return price(Transfer("host", "nvme", nbytes, **kw), s)


@pytest.mark.parametrize("drives", [1, 4])
def test_a_write_inside_the_cache_runs_at_the_burst_rate(drives):
    """Below the cache size the cache changes nothing: the same time as a drive without one."""
    nbytes = 0.5 * drives * 200e9
    assert write(nbytes, cached_system(drives=drives)).time_s == pytest.approx(
        write(nbytes, system(drives=drives)).time_s, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(cache_gb=st.floats(1.0, 500.0), sustained=st.floats(0.2, 5.0), drives=st.integers(1, 4))
def test_beyond_the_cache_the_average_rate_tends_to_the_sustained_rate(cache_gb, sustained, drives):
    s = cached_system(cache_gb, sustained, drives=drives)
    rates = [n / (write(n, s).time_s - P["nvme_latency_s"]) for n in (10, 100, 1000, 10000)
             for n in [n * drives * cache_gb * 1e9]]
    floor = drives * sustained * 1e9 * P["nvme_write_efficiency"]
    assert all(a >= b * (1 - 1e-9) for a, b in zip(rates, rates[1:]))          # more bytes, never faster
    assert rates[-1] == pytest.approx(floor, rel=2e-3)                           # -> the sustained rate
    # exactly: cache at the burst rate plus the rest at the sustained rate
    n = 3 * drives * cache_gb * 1e9
    c = drives * cache_gb * 1e9
    burst = drives * 5.1e9 * P["nvme_write_efficiency"]
    assert write(n, s).time_s - P["nvme_latency_s"] == pytest.approx(c / burst + (n - c) / floor, rel=1e-9)


def test_the_write_cache_never_slows_reads():
    s = cached_system()
    for kw in ({}, {"block_bytes": 4096, "queue_depth": 1024}):
        a = price(Transfer("nvme", "host", 1e12, **kw), s).time_s
        assert a == pytest.approx(price(Transfer("nvme", "host", 1e12, **kw), system()).time_s, rel=1e-12)


def test_small_writes_beyond_the_cache_are_bounded_by_both_command_rate_and_sustained_rate():
    """4 KiB writes at depth: min(IOPS x 4 KiB, burst) in the cache, min(IOPS x 4 KiB, sustained) after."""
    s = cached_system(cache_gb=10.0, sustained=2.0)
    n = 1e12
    c = io("host", "nvme", nbytes=n, s=s)
    r_cmd = 1e6 * P["nvme_iops_efficiency"] * KiB4
    expected = 10e9 / min(r_cmd, 5.1e9) + (n - 10e9) / min(r_cmd, 2.0e9 * P["nvme_write_efficiency"])
    assert c.time_s == pytest.approx(expected, rel=1e-3)
    assert c.bound == "nvme_write"


def test_a_cache_needs_both_its_size_and_its_sustained_rate():
    raw = host().model_dump()
    raw["nvme"]["write_cache_gb_per_drive"] = 100.0
    raw["sources"]["nvme.write_cache_gb_per_drive"] = "t"
    with pytest.raises(InputError):
        load_host(raw)


# ---------------------------------------------------------------------------------- serial bounce buffer
@settings(max_examples=30, deadline=None)
@given(drives=st.integers(1, 8), dram=st.floats(20.0, 400.0), nbytes=st.floats(1e6, 1e11),
       read=st.booleans())
def test_a_serial_bounce_is_the_sum_of_its_legs_and_never_faster_than_either(drives, dram, nbytes, read):
    s = system(drives=drives, dram_gbps=dram)
    src, dst = ("nvme", "hbm") if read else ("hbm", "nvme")
    serial = price(Transfer(src, dst, nbytes, bounce="serial"), s).time_s
    piped = price(Transfer(src, dst, nbytes), s).time_s
    leg_nvme = price(Transfer(src if read else "host", "host" if read else dst, nbytes), s).time_s
    leg_pcie = price(Transfer("host" if read else src, dst if read else "host", nbytes), s).time_s
    assert serial >= max(leg_nvme, leg_pcie) * (1 - 1e-9)
    assert serial >= piped * (1 - 1e-12)
    # the two legs one after the other (both start-up latencies paid once each, as in each leg alone)
    assert serial == pytest.approx(leg_nvme + leg_pcie, rel=1e-6)


def test_serial_bounce_is_refused_where_there_is_no_bounce_buffer():
    with pytest.raises(ValueError, match="bounce"):
        price(Transfer("nvme", "hbm", GiB, gds=True, bounce="serial"), system())
    with pytest.raises(ValueError, match="bounce"):
        price(Transfer("host", "hbm", GiB, bounce="serial"), system())
    with pytest.raises(InputError) as e:
        predict(scen(dst="host", bounce="serial"))
    assert e.value.field == "workload.bounce"


# ---------------------------------------------------------------------------------- time-based runs
def test_a_time_based_run_moves_what_the_model_moves_in_that_time():
    """Without a cache a long run's rate is the steady rate; with one, a 3-minute write averages the
    burst over the cache and the sustained rate over the rest (empty cache at the start)."""
    steady = predict(scen(bytes=2e12, duration_s=180.0, block_bytes=4096, queue_depth=1024))
    assert steady.metrics["gbps"] == pytest.approx(1e6 * KiB4 / 1e9, rel=1e-3)
    p = predict(scen(src="host", dst="nvme", bytes=2e12, duration_s=180.0))
    n = load_host("Gen4-desktop-980PRO").nvme
    c, burst, sust = n.write_cache_gb_per_drive * 1e9, 5.1e9, n.sustained_write_gbps_per_drive * 1e9
    moved = c + sust * (180.0 - P["nvme_latency_s"] - c / burst)
    assert p.time_s == pytest.approx(180.0)
    assert p.metrics["gbps"] == pytest.approx(moved / 180.0 / 1e9, rel=1e-6)
    assert sust / 1e9 < p.metrics["gbps"] < burst / 1e9


def test_a_time_based_run_that_finishes_early_reports_its_bytes():
    p = predict(scen(bytes=GiB, duration_s=3600.0))
    assert p.time_s < 3600.0 and p.metrics["gbps"] == pytest.approx(predict(scen()).metrics["gbps"])


def test_980pro_write_cache_figures():
    """Samsung 980 PRO 2 TB: 216 GB TurboWrite buffer, 2,000 MB/s after it (data sheet footnote)."""
    n = load_host("Gen4-desktop-980PRO").nvme
    assert (n.write_cache_gb_per_drive, n.sustained_write_gbps_per_drive) == (216, 2.0)
    assert load_host("NC96ads-A100-v4").nvme.write_cache_gb_per_drive is None
