"""The GPU's link to host memory: PCIe on every host that names no gpu_link, NVLink-C2C on Grace-GH200.

Every host<->GPU rate goes through ``sim.hardware.system.host_link``. Existing hosts must give exactly
the PCIe closed form they gave before; GH200 on its Grace host crosses NVLink-C2C (NVIDIA GH200
datasheet: 900 GB/s total, 450 per direction) and is bounded by that rate x its efficiency and by the
Grace LPDDR5X; a link-bound offload is faster on the Grace host than on a PCIe one.
"""
import copy

import pytest
import yaml
from hypothesis import given, settings, strategies as st

import sim.hardware as hw
import sim.cost.transfer  # noqa: F401  (declares the transfer parameters read below)
from sim.cost import cost
from sim.cost.efficiency import PARAMS, eff
from sim.errors import InputError
from sim.hardware import load_device, load_host, load_link, names
from sim.hardware.system import Cluster, System, host_link, host_link_Bps, pcie_Bps
from sim.ops import Transfer
from sim.scenario import predict

P = {k: v.default for k, v in PARAMS.items()}
GH200 = load_device("GH200")
GRACE = load_host("Grace-GH200")
C2C = load_link("NVLink-C2C")


def _raw(folder, name):
    return yaml.safe_load((hw.ZOO / folder / f"{name}.yaml").read_text())


def _grace_over_pcie(**dram):
    """The Grace host with its GPU link taken away: the same CPU, LPDDR5X and NVMe, a PCIe Gen5 x16 path."""
    raw = _raw("hosts", "Grace-GH200")
    raw.pop("gpu_link")
    raw["sources"].pop("gpu_link")
    raw["dram"].update(dram)
    raw["name"] = "Grace-GH200-over-PCIe"
    return load_host(raw)


def _rate(system, src, dst, nbytes, pinned=True):
    c = cost(Transfer(src, dst, nbytes, pinned), system)
    return nbytes / c.time_s, c


# ---- every existing host: unchanged PCIe path ------------------------------------------------------
PCIE_HOSTS = [h for h in names("host") if load_host(h).gpu_link is None]


@pytest.mark.parametrize("host", PCIE_HOSTS)
@pytest.mark.parametrize("dev", names("device"))
def test_hosts_without_a_gpu_link_keep_the_pcie_closed_form(dev, host):
    d, h = load_device(dev), load_host(host)
    link = host_link(System(d, h))
    gen, lanes = min(d.pcie.generation, h.pcie_generation), min(d.pcie.lanes, h.pcie_lanes_per_gpu)
    assert link.kind == "pcie"
    assert link.Bps == pcie_Bps(gen, lanes)           # exactly the formula, not a copied number
    assert host_link_Bps(System(d, h)) == link.Bps


def test_every_existing_host_still_names_no_gpu_link():
    assert set(PCIE_HOSTS) == set(names("host")) - {"Grace-GH200"}


@pytest.mark.parametrize("dev", ["H100-SXM5-80GB", "A100-SXM4-40GB", "T4", "GH200"])
def test_pcie_transfer_term_is_the_pcie_rate_times_its_efficiency(dev):
    d = load_device(dev)
    h = load_host("DGX-H100")
    raw = pcie_Bps(min(d.pcie.generation, h.pcie_generation), min(d.pcie.lanes, h.pcie_lanes_per_gpu))
    s = System(d, h)
    S = 4e9
    up = cost(Transfer("host", "hbm", S), s)
    down = cost(Transfer("hbm", "host", S), s)
    assert up.terms["pcie"] == pytest.approx(S / (raw * eff(d, "pcie_h2d_efficiency")))
    assert down.terms["pcie"] == pytest.approx(S / (raw * eff(d, "pcie_efficiency")))


# ---- GH200 on its Grace host: NVLink-C2C -----------------------------------------------------------
def test_gh200_defaults_to_the_grace_host_joined_by_c2c():
    assert GH200.default_host == "Grace-GH200"
    assert GRACE.gpu_link == "NVLink-C2C" and GRACE.gpus == 1
    link = host_link(System(GH200, GRACE))
    assert link.kind == "nvlink-c2c" and link.Bps == C2C.Bps
    # NVIDIA GH200 datasheet: 900 GB/s total between CPU and GPU, i.e. 450 per direction, 7x PCIe Gen5 x16
    assert C2C.bandwidth_gbps == 900 / 2
    assert 6.5 < C2C.Bps / pcie_Bps(5, 16) < 7.5


def test_grace_host_figures_follow_their_sources():
    # 72 Neoverse V2 cores x 4 SVE2 pipes x 4 fp32 lanes x 2 FLOP (FMA) x 3.1 GHz base
    assert GRACE.cpu.cores == 72
    assert GRACE.cpu.fp32_tflops == pytest.approx(72 * 4 * 4 * 2 * 3.1 / 1000, rel=0.005)
    # Grace CPU Superchip datasheet: 768 GB/s for 2 x 480 GB; the Grace benchmarking guide's STREAM floor for
    # Grace Hopper 480 GB (307 GB/s) is 80-95% of peak: at its 80% end it gives the same peak
    assert GRACE.dram.capacity_gb == 480 and GRACE.dram.bandwidth_gbps == 768 / 2
    assert GRACE.dram.bandwidth_gbps == pytest.approx(307 / 0.8, rel=0.005)


@settings(max_examples=40, deadline=None)
@given(nbytes=st.floats(1e3, 1e12), h2d=st.booleans())
def test_gh200_copies_never_beat_the_c2c_link_or_the_lpddr5x(nbytes, h2d):
    src, dst = ("host", "hbm") if h2d else ("hbm", "host")
    r, _ = _rate(System(GH200, GRACE), src, dst, nbytes)
    assert r <= C2C.Bps * P["c2c_efficiency"] * (1 + 1e-9)
    assert r <= GRACE.dram_Bps * P["dram_efficiency"] * (1 + 1e-9)


def test_large_h2d_reaches_the_slower_of_c2c_and_lpddr5x():
    S = 64e9
    r, c = _rate(System(GH200, GRACE), "host", "hbm", S)
    roof = min(C2C.Bps * P["c2c_efficiency"], GRACE.dram_Bps * P["dram_efficiency"])
    assert r == pytest.approx(roof, rel=1e-3)
    assert c.terms["pcie"] == pytest.approx(S / (C2C.Bps * P["c2c_efficiency"]))
    # with LPDDR5X fast enough to keep up, the link itself is the bound
    wide = _raw("hosts", "Grace-GH200")
    wide["dram"]["bandwidth_gbps"] = 4000
    r2, c2 = _rate(System(GH200, load_host(wide)), "host", "hbm", S)
    assert r2 == pytest.approx(C2C.Bps * P["c2c_efficiency"], rel=1e-3) and c2.bound == "pcie"
    assert "NVLink-C2C" in c2.detail["explanation"] and "NVLink-C2C" in c2.detail["path"][0]


@settings(max_examples=30, deadline=None)
@given(nbytes=st.floats(1e3, 5e11), h2d=st.booleans(), pinned=st.booleans())
def test_c2c_is_never_slower_than_the_same_host_over_pcie(nbytes, h2d, pinned):
    src, dst = ("host", "hbm") if h2d else ("hbm", "host")
    t_c2c = cost(Transfer(src, dst, nbytes, pinned), System(GH200, GRACE)).time_s
    t_pcie = cost(Transfer(src, dst, nbytes, pinned), System(GH200, _grace_over_pcie())).time_s
    assert t_c2c <= t_pcie * (1 + 1e-12)


def test_pageable_copies_keep_the_staging_term_on_c2c():
    """Not modelled: the GPU's direct access to pageable memory over C2C; a pageable copy is priced as
    the staged one, so it is never faster than pinned."""
    s = System(GH200, GRACE)
    pinned = cost(Transfer("host", "hbm", 8e9, True), s)
    pageable = cost(Transfer("host", "hbm", 8e9, False), s)
    assert "cpu" in pageable.terms and pageable.time_s >= pinned.time_s


# ---- offload predictions: monotone in the link ----------------------------------------------------
def _infer(host):
    return predict({"hardware": "GH200", "host": host, "model": "llama-2-7b", "parameters": "spec",
                    "workload": {"kind": "inference", "batch": 1, "prompt_len": 128, "gen_len": 32,
                                 "offload": {"weights": "cpu"}}})


def test_weight_offload_inference_is_faster_over_c2c_than_over_pcie():
    grace = _infer("Grace-GH200")
    over_pcie = _infer(_grace_over_pcie(bandwidth_gbps=4000))
    dgx = _infer("DGX-H100")
    assert over_pcie.breakdown["decode_bound"] == "pcie" and dgx.breakdown["decode_bound"] == "pcie"
    assert grace.metrics["tpot_s"] < over_pcie.metrics["tpot_s"]
    assert grace.metrics["tpot_s"] < dgx.metrics["tpot_s"]
    # weight streaming is bounded by the slower of the link and the LPDDR5X, not by PCIe
    assert grace.breakdown["decode_bound"] in ("pcie", "dram_bandwidth")
    assert dgx.metrics["tpot_s"] / grace.metrics["tpot_s"] > 3


def test_zero_offload_step_is_never_slower_over_c2c():
    """Same Grace CPU and LPDDR5X, only the link differs: the C2C host is never slower."""
    wl = {"kind": "training", "global_batch": 4, "micro_batch": 1, "seq_len": 2048, "precision": "bf16",
          "offload": {"optimizer": "cpu", "params": "cpu"}, "parallel": {"zero": 3}}
    model = {"layers": 8, "hidden": 4096, "heads": 32, "ffn": 11008, "vocab": 32000, "gated_mlp": True,
             "seq_len": 2048}
    t = {}
    for name, host in (("c2c", "Grace-GH200"), ("pcie", _grace_over_pcie())):
        p = predict({"hardware": "GH200", "host": host, "model": model, "workload": wl, "parameters": "spec"})
        t[name] = p.metrics["iteration_time_s"]
    assert t["c2c"] <= t["pcie"] * (1 + 1e-9)


# ---- the loader holds the new field to its rules ----------------------------------------------------
def test_gpu_link_needs_a_source_and_a_host_link_kind(tmp_path):
    raw = _raw("hosts", "Grace-GH200")
    bad = copy.deepcopy(raw)
    bad["sources"].pop("gpu_link")
    with pytest.raises(InputError, match="gpu_link"):
        load_host(bad)
    bad = copy.deepcopy(raw)
    bad["gpu_link"] = "NVLink-C3C"
    with pytest.raises(InputError) as e:
        load_host(bad)
    assert e.value.field == "gpu_link" and "NVLink-C2C" in e.value.problem
    bad["gpu_link"] = "PCIe-5"
    with pytest.raises(InputError) as e:
        load_host(bad)
    assert e.value.field == "gpu_link" and "pcie_generation" in e.value.problem


def test_new_files_source_every_figure():
    link = _raw("links", "NVLink-C2C")
    assert {"bandwidth_gbps", "latency_us"} <= set(link["sources"])
    host = _raw("hosts", "Grace-GH200")
    figures = {"gpus", "cpu", "dram", "pcie_generation", "pcie_lanes_per_gpu", "gpu_link", "network_gbps_per_gpu", "nvme"}
    assert figures <= set(host["sources"]) and all(str(v).strip() for v in host["sources"].values())
    assert GRACE.nvme.drives == 0            # no sourced drives: said so, and NVMe transfers are refused
    with pytest.raises(ValueError, match="no NVMe"):
        cost(Transfer("nvme", "hbm", 1e9), System(GH200, GRACE, Cluster()))
