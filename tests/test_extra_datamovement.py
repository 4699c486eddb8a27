"""The hand-kept data-movement rows (traces/published/extra_datamovement.csv) and the physics they
exercise on devices the reference barely covers: H200 and H100 with NVLS, MI300X's Infinity Fabric
mesh, GH200's NVLink-C2C host link, HBM streams on H200 and MI300X.

Tests hold the model to bounds and to the published facts, never to its own output."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.traces import read_published_csv
from sim.cost import cost
from sim.cost.collective import BUSBW_FACTOR, algorithms
from sim.cost.efficiency import eff
from sim.hardware import load_device
from sim.hardware.system import host_link
from sim.ops import Collective, Elementwise, Transfer
from sim.scenario import resolve

FILE = Path(__file__).resolve().parents[1] / "traces" / "published" / "extra_datamovement.csv"


def system(hw, gpus=8, host=None):
    scen = {"hardware": hw, "cluster": {"gpus": gpus, "gpus_per_node": gpus, "intra_node": "nvlink"},
            "workload": {"kind": "collective", "op": "all_reduce", "bytes": 1, "gpus": gpus}}
    if host:
        scen["host"] = host
    return resolve(scen)[1]


def test_the_file_loads_with_sources_and_its_own_id_range():
    df = read_published_csv(FILE)
    assert len(df) > 0
    assert set(df["family"]) <= {"collective", "memory", "transfer"}
    assert all(i.startswith("X1") for i in df["id"])
    assert df["source"].str.len().min() > 0 and df["source_locator"].str.len().min() > 0
    for scen in df["scenario"]:
        s = json.loads(scen) if isinstance(scen, str) else scen
        assert s["workload"]["kind"] in ("collective", "memory", "transfer")


def test_mi300x_mesh_has_no_in_switch_reduction():
    """MI300X OAMs are joined point to point (no NVSwitch), so NVLS is never offered."""
    sysm = system("MI300X")
    assert "nvls" not in algorithms("all_reduce", 8, sysm)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=20, max_value=34))
def test_mesh_ring_busbw_never_above_the_achievable_fabric_rate(log2_bytes):
    sysm = system("MI300X")
    d = sysm.device
    oc = cost(Collective("all_reduce", float(2 ** log2_bytes), 8), sysm)
    assert oc.detail["busbw_Bps"] <= d.nvlink_Bps * eff(d, "nvlink_efficiency") * (1 + 1e-9)


@pytest.mark.parametrize("hw", ["H100-SXM5-80GB", "H200-SXM-141GB"])
def test_nvls_beats_ring_for_large_messages_on_hopper_nvswitch(hw):
    """NCCL's maintainers: ~480 GB/s busbw with NVLS against ~370 with NCCL_ALGO=RING on 8 Hopper
    GPUs (nccl-tests #212); NVLS is what NCCL picks there by default."""
    sysm = system(hw)
    S = float(1 << 30)
    nvls = cost(Collective("all_reduce", S, 8, algo="nvls"), sysm).detail["busbw_Bps"]
    ring = cost(Collective("all_reduce", S, 8, algo="ring"), sysm).detail["busbw_Bps"]
    assert nvls > ring
    assert cost(Collective("all_reduce", S, 8), sysm).detail["algo"] == "nvls"


@pytest.mark.parametrize("hw", ["H100-SXM5-80GB", "H200-SXM-141GB"])
def test_nvls_busbw_bounded_by_switch_reduction_rate(hw):
    """With the switch reducing, a GPU moves S(g+1)/g each way: busbw <= 2(g-1)/(g+1) x link x
    nvlink_efficiency x nvls_efficiency."""
    sysm = system(hw)
    d, g = sysm.device, 8
    bound = 2 * (g - 1) / (g + 1) * d.nvlink_Bps * eff(d, "nvlink_efficiency") * eff(d, "nvls_efficiency")
    for log2 in (20, 24, 28, 33):
        b = cost(Collective("all_reduce", float(2 ** log2), g, algo="nvls"), sysm).detail["busbw_Bps"]
        assert b <= bound * (1 + 1e-9)


def test_busbw_factor_is_nccl_tests_definition():
    assert BUSBW_FACTOR["all_reduce"](8) == pytest.approx(1.75)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["H200-SXM-141GB", "MI300X", "GH200", "B200"]), st.integers(min_value=12, max_value=36))
def test_streams_never_beat_the_sustainable_hbm_rate(hw, log2_bytes):
    d = load_device(hw)
    n = float(2 ** log2_bytes)
    oc = cost(Elementwise(bytes_read=2 * n, bytes_written=n, flops=0.0, level="hbm"), resolve(
        {"hardware": hw, "workload": {"kind": "memory", "op": "triad", "bytes": n}})[1])
    assert oc.detail["achieved_Bps"] <= d.hbm_Bps * eff(d, "hbm_efficiency") * (1 + 1e-9)


def test_gh200_host_copy_bounded_by_c2c_and_lpddr():
    """A host-to-device copy on GH200 crosses NVLink-C2C and reads LPDDR5X once: it can be no faster
    than the slower of the two achievable rates (and it is far above any PCIe Gen5 x16 rate)."""
    sysm = resolve({"hardware": "GH200", "host": "Grace-GH200",
                    "workload": {"kind": "transfer", "src": "host", "dst": "hbm", "bytes": 1}})[1]
    S = float(512 << 20)
    t = cost(Transfer("host", "hbm", S, True), sysm).time_s
    h = sysm.host
    link = host_link(sysm)
    assert link.kind == "nvlink-c2c"
    c2c = link.Bps * eff(sysm.device, "c2c_efficiency")
    dram = h.dram_Bps * eff(h, "dram_efficiency")
    assert S / t <= min(c2c, dram) * (1 + 1e-9)
    assert S / t > 64e9
