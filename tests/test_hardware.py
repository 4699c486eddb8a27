"""The hardware zoo against published figures and the closed forms behind them.

Datasheet peaks are products of a few architectural numbers (SMs, Tensor Cores per SM, FMA per clock,
clock); memory bandwidth is bus width x pin rate; host DRAM is channels x transfer rate x 8 bytes. The
tests hold every zoo file to those products and to the rows of shared/reference/hardware_specs.csv
(copied below with their row ids, and re-read from the CSV when a checkout has it), and check that bad
input is refused with an error naming the file and the field.
"""
from __future__ import annotations

import copy
import csv
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

import sim.hardware as hw
from sim.errors import InputError
from sim.hardware import load_device, load_host, load_link, names
from sim.hardware.spec import DTYPES, DeviceSpec, HostSpec, LinkSpec
from sim.hardware.system import pcie_Bps

DEVICES = ["V100-SXM2-32GB", "A100-SXM4-40GB", "A100-SXM4-80GB", "A100-PCIe-80GB", "H100-SXM5-80GB",
           "H100-PCIe-80GB", "H800-SXM", "H200-SXM-141GB", "GH200", "B200", "RTX-4090", "RTX-3090",
           "RTX-A6000", "L40S", "A10", "T4", "MI250X", "MI300X"]
HOSTS = ["DGX-2", "DGX-A100", "DGX-H100", "DGX-H200", "PCIe-Gen4-workstation", "PCIe-Gen5-workstation"]
LINKS = ["NVLink-2", "NVLink-3", "NVLink-4", "NVLink-5", "PCIe-3", "PCIe-4", "PCIe-5", "InfiniBand-HDR",
         "InfiniBand-NDR", "Ethernet-100G", "Ethernet-400G"]


def _required(schema) -> set[str]:
    return {k for k, f in schema.model_fields.items() if f.is_required()} | {"notes"}


def _raw(kind_folder: str, name: str) -> dict:
    return yaml.safe_load((hw.ZOO / kind_folder / f"{name}.yaml").read_text())


# --------------------------------------------------------------------------------------------
# Every required name loads, fills every field and cites a source for it.
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DEVICES)
def test_device_loads_and_fills_every_field(name):
    d = load_device(name)
    raw = _raw("devices", name)
    # Every required schema field plus notes is written out (nvlink: null counts); optional extras such as
    # efficiency overrides or a calibration profile stay optional.
    missing = _required(DeviceSpec) - set(raw)
    assert not missing, f"{name}: fields left to defaults: {missing}"
    assert d.notes.strip(), f"{name}: notes should say what the file assumes"
    assert all(s.strip() for s in d.sources.values())
    assert set(d.peak_tflops) <= set(DTYPES)
    assert load_host(d.default_host).name == d.default_host


@pytest.mark.parametrize("name", HOSTS)
def test_host_loads_and_fills_every_field(name):
    h = load_host(name)
    missing = _required(HostSpec) - set(_raw("hosts", name))
    assert not missing, f"{name}: fields left to defaults: {missing}"
    assert h.notes.strip() and all(s.strip() for s in h.sources.values())
    assert h.nvme_bytes > 0 and h.nvme_read_Bps > 0 and h.dram_Bps > 0


@pytest.mark.parametrize("name", LINKS)
def test_link_loads(name):
    link = load_link(name)
    assert _required(LinkSpec) <= set(_raw("links", name))
    assert link.kind == {"NVLink": "nvlink", "PCIe": "pcie", "InfiniBand": "infiniband",
                         "Ethernet": "ethernet"}[name.split("-")[0]]


def test_zoo_holds_exactly_the_required_names():
    """Extra files are welcome later, but every required one is present under its exact name."""
    assert set(DEVICES) <= set(names("device"))
    assert set(HOSTS) <= set(names("host"))
    assert set(LINKS) <= set(names("link"))


@pytest.mark.parametrize("name", DEVICES)
def test_unpublished_l2_bandwidth_says_how_it_was_obtained(name):
    """No vendor prints L2 bandwidth: each source must say derived / estimated / measured-derived."""
    d = load_device(name)
    src = d.sources["l2_bandwidth_gbps"]
    assert src.split(":")[0] in ("derived", "estimated", "measured-derived, an achieved plateau (a lower bound on the peak)")
    # An achieved figure already contains the loss l2_efficiency models for peak figures: not twice.
    if "achieved" in src:
        assert d.efficiency.get("l2_efficiency") == 1.0
    else:
        assert "l2_efficiency" not in d.efficiency


# --------------------------------------------------------------------------------------------
# Published figures: rows of shared/reference/hardware_specs.csv, with their ids.
# --------------------------------------------------------------------------------------------

# (row id, device, attribute path, value in the zoo's unit, csv value -> zoo unit factor)
CSV_ROWS = [
    ("H0014", "A100-SXM4-80GB", "memory.capacity_gb", 80, 1),
    ("H0015", "A100-SXM4-80GB", "memory.bandwidth_gbps", 2039, 1),
    ("H0012", "A100-SXM4-80GB", "sms", 108, 1),
    ("H0016", "A100-SXM4-80GB", "l2_mb", 40, 1),
    ("H0018", "A100-SXM4-80GB", "smem_kb_per_sm", 164, 1),
    ("H0020", "A100-SXM4-80GB", "boost_clock_mhz", 1410, 1),
    ("H0022", "A100-SXM4-80GB", "nvlink.bandwidth_gbps", 300, 0.5),     # row is bidirectional
    ("H0025", "A100-SXM4-80GB", "tdp_w", 400, 1),
    ("H0006", "A100-SXM4-80GB", "peak_tflops.bf16", 312, 1),
    ("H0004", "A100-SXM4-80GB", "peak_tflops.tf32", 156, 1),
    ("H0010", "A100-SXM4-80GB", "peak_tflops.int4", 1248, 1),
    ("H0040", "H100-SXM5-80GB", "memory.capacity_gb", 80, 1),
    ("H0041", "H100-SXM5-80GB", "memory.bandwidth_gbps", 3350, 1),
    ("H0038", "H100-SXM5-80GB", "sms", 132, 1),
    ("H0042", "H100-SXM5-80GB", "l2_mb", 50, 1),
    ("H0043", "H100-SXM5-80GB", "smem_kb_per_sm", 228, 1),
    ("H0048", "H100-SXM5-80GB", "nvlink.bandwidth_gbps", 450, 0.5),
    ("H0031", "H100-SXM5-80GB", "peak_tflops.bf16", 989.4, 1),
    ("H0033", "H100-SXM5-80GB", "peak_tflops.fp8", 1978.9, 1),
    ("H0051", "H100-SXM5-80GB", "tdp_w", 700, 1),
    ("H0052", "H100-PCIe-80GB", "sms", 114, 1),
    ("H0053", "H100-PCIe-80GB", "memory.bandwidth_gbps", 2000, 1),
    ("H0054", "H100-PCIe-80GB", "peak_tflops.fp16", 756, 1),
    ("H0055", "H100-PCIe-80GB", "peak_tflops.fp8", 1513, 1),
    ("H0057", "H100-PCIe-80GB", "nvlink.bandwidth_gbps", 300, 0.5),
    ("H0058", "H200-SXM-141GB", "memory.capacity_gb", 141, 1),
    ("H0059", "H200-SXM-141GB", "memory.bandwidth_gbps", 4800, 1),
    ("H0062", "H200-SXM-141GB", "peak_tflops.bf16", 989, 1),
    ("H0066", "H200-SXM-141GB", "l2_mb", 50, 1),
    ("H0068", "H200-SXM-141GB", "tdp_w", 700, 1),
    ("H0069", "H200-SXM-141GB", "nvlink.bandwidth_gbps", 450, 0.5),
    ("H0070", "V100-SXM2-32GB", "sms", 80, 1),
    ("H0073", "V100-SXM2-32GB", "smem_kb_per_sm", 96, 1),
    ("H0074", "V100-SXM2-32GB", "memory.bandwidth_gbps", 900, 1),
    ("H0077", "V100-SXM2-32GB", "peak_tflops.fp16", 125, 1),
    ("H0079", "V100-SXM2-32GB", "nvlink.bandwidth_gbps", 150, 0.5),
    ("H0080", "V100-SXM2-32GB", "tdp_w", 300, 1),
    ("H0084", "L40S", "peak_tflops.fp16", 362, 1),
    ("H0085", "L40S", "peak_tflops.fp8", 733, 1),
    ("H0087", "L40S", "memory.capacity_gb", 48, 1),
    ("H0088", "L40S", "memory.bandwidth_gbps", 864, 1),
    ("H0089", "L40S", "tdp_w", 350, 1),
    ("H0091", "RTX-4090", "sms", 128, 1),
    ("H0093", "RTX-4090", "l2_mb", 72, 1),
    ("H0095", "RTX-4090", "memory.bandwidth_gbps", 1008, 1),
    ("H0096", "RTX-4090", "tdp_w", 450, 1),
    ("H0097", "RTX-4090", "peak_tflops.fp16", 165.2, 1),
    ("H0098", "RTX-4090", "peak_tflops.fp8", 330.3, 1),
    ("H0100", "B200", "peak_tflops.bf16", 2250, 1),
    ("H0102", "B200", "peak_tflops.fp4", 9000, 1),
    ("H0104", "B200", "memory.capacity_gb", 180, 1),
    ("H0105", "B200", "memory.bandwidth_gbps", 8000, 1),
    ("H0106", "B200", "nvlink.bandwidth_gbps", 900, 0.5),
]


def _attr(obj, path: str):
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


@pytest.mark.parametrize("row,device,path,value,_f", CSV_ROWS, ids=[r[0] for r in CSV_ROWS])
def test_matches_reference_row(row, device, path, value, _f):
    assert _attr(load_device(device), path) == pytest.approx(value, rel=1e-3)


def _reference_csv() -> Path | None:
    for base in (Path(__file__).resolve().parents[1], Path("/work")):
        p = base / "shared" / "reference" / "hardware_specs.csv"
        if p.exists():
            return p
    return None


def test_copied_rows_equal_the_reference_csv():
    """The row values copied above are the CSV's own (checked wherever the shared folder exists)."""
    path = _reference_csv()
    if path is None:
        pytest.skip("shared/reference/hardware_specs.csv not in this checkout")
    rows = {r["id"]: r for r in csv.DictReader(path.open())}
    for row, _device, _path, value, factor in CSV_ROWS:
        assert float(rows[row]["value"]) * factor == pytest.approx(value, rel=1e-3), row


# --------------------------------------------------------------------------------------------
# Closed forms: peak = SMs x units x ops/clk x 2 x clock; bandwidth = bus x pin rate.
# --------------------------------------------------------------------------------------------

# Tensor Cores per SM and dense FP16 FMA per clock per Tensor Core (FP32 accumulate on GeForce).
# GA100 and GH100 rates are the reference table's (H0013/H0021: 4 x 256; H0039/H0047: 4 x 512);
# the others are the architecture whitepapers' (Volta and Turing 8 x 64, GA102 4 x 128, AD102 4 x 128,
# GeForce FP32 accumulate at half rate). Devices whose clock was itself derived from this product
# (H100 PCIe, B200) are left out: the check would be circular.
TENSOR = {
    "A100-SXM4-80GB": (4, 256), "A100-SXM4-40GB": (4, 256), "A100-PCIe-80GB": (4, 256),
    "H100-SXM5-80GB": (4, 512), "H200-SXM-141GB": (4, 512), "H800-SXM": (4, 512), "GH200": (4, 512),
    "V100-SXM2-32GB": (8, 64), "T4": (8, 64),
    "RTX-A6000": (4, 128), "A10": (4, 128), "RTX-3090": (4, 64),
    "L40S": (4, 128), "RTX-4090": (4, 64),
}


@pytest.mark.parametrize("name", sorted(TENSOR))
def test_tensor_peak_is_sms_x_tc_x_fma_x_clock(name):
    d = load_device(name)
    tcs, fma = TENSOR[name]
    closed = d.sms * tcs * fma * 2 * d.boost_clock_mhz * 1e6
    assert d.peak_flops("fp16") == pytest.approx(closed, rel=0.02)


def test_reference_table_fma_rates_reproduce_a100_and_h100():
    """H0013/H0021 and H0039/H0047 (tensor cores, FMA/clk/TC) give the datasheet dense BF16 peaks."""
    a, h = load_device("A100-SXM4-80GB"), load_device("H100-SXM5-80GB")
    assert 432 * 256 * 2 * a.boost_clock_mhz * 1e6 == pytest.approx(a.peak_flops("bf16"), rel=0.02)
    assert 528 * 512 * 2 * h.boost_clock_mhz * 1e6 == pytest.approx(h.peak_flops("bf16"), rel=0.02)


# FP32 lanes per SM (CU) for devices whose vector figure is quoted at the boost clock in the file.
# Hopper/Blackwell quote vector rates at a higher clock than their tensor clock, so they are left out.
LANES = {"V100-SXM2-32GB": 64, "T4": 64, "A100-SXM4-80GB": 64, "A100-SXM4-40GB": 64, "A100-PCIe-80GB": 64,
         "RTX-3090": 128, "RTX-A6000": 128, "A10": 128, "RTX-4090": 128, "L40S": 128, "MI250X": 64}


@pytest.mark.parametrize("name", sorted(LANES))
def test_vector_fp32_is_sms_x_lanes_x_2_x_clock(name):
    d = load_device(name)
    assert d.vector_flops == pytest.approx(d.sms * LANES[name] * 2 * d.boost_clock_mhz * 1e6, rel=0.02)


@pytest.mark.parametrize("name", DEVICES)
def test_dtype_ratios_of_the_matrix_units(name):
    """Across generations: fp8 = 2x fp16, tf32 = fp16 / 2, bf16 = fp16, int4 = 2x int8 where present.

    2% because the L40S datasheet itself prints FP16 362 (2490 MHz) beside FP8 733 and TF32 183 (2520 MHz)."""
    p = load_device(name).peak_tflops
    if "fp8" in p:
        assert p["fp8"] == pytest.approx(2 * p["fp16"], rel=0.02)
    if "tf32" in p:
        assert p["tf32"] == pytest.approx(p["fp16"] / 2, rel=0.02)
    if "bf16" in p:
        assert p["bf16"] == p["fp16"]
    if "int4" in p:
        assert p["int4"] == pytest.approx(2 * p["int8"], rel=0.02)


def test_h100_fp8_is_twice_fp16():
    p = load_device("H100-SXM5-80GB").peak_tflops
    assert p["fp8"] == pytest.approx(2 * p["fp16"], rel=0.001)


@pytest.mark.parametrize("name", DEVICES)
def test_generation_capabilities(name):
    """Which dtypes the matrix units lack, by architecture (whitepapers)."""
    d = load_device(name)
    p = d.peak_tflops
    if d.arch in ("volta", "turing", "ampere", "cdna2"):
        assert "fp8" not in p
    if d.arch in ("volta", "turing"):
        assert "bf16" not in p and "tf32" not in p and not d.sparse_24
    if d.arch in ("hopper", "blackwell", "cdna2", "cdna3"):
        assert "int4" not in p
    if d.arch in ("turing", "ampere"):
        assert "int4" in p
    assert "fp4" not in p or d.arch == "blackwell"
    # fp32 is the vector rate or, with a full-FP32 matrix path, a matrix rate at least as high.
    assert p["fp32"] >= d.vector_fp32_tflops


# GDDR cards: bus width (bits) x pin rate (Gbit/s) / 8 = GB/s (whitepapers/datasheets).
GDDR = {"RTX-4090": (384, 21.0), "RTX-3090": (384, 19.5), "RTX-A6000": (384, 16.0), "A10": (384, 12.5),
        "L40S": (384, 18.0), "T4": (256, 10.0)}


@pytest.mark.parametrize("name", sorted(GDDR))
def test_gddr_bandwidth_is_bus_x_pin_rate(name):
    bits, gbps = GDDR[name]
    assert load_device(name).memory.bandwidth_gbps == pytest.approx(bits * gbps / 8, rel=0.005)


def test_mi250x_is_half_the_package():
    """AMD MI250X datasheet: 383 TF FP16, 95.7 TF FP64 matrix, 3.2768 TB/s, 128 GB per two-GCD OAM."""
    d = load_device("MI250X")
    assert 2 * d.peak_tflops["fp16"] == pytest.approx(383, rel=0.005)
    assert 2 * d.peak_tflops["fp64"] == pytest.approx(95.7, rel=0.005)
    assert 2 * d.memory.bandwidth_gbps == pytest.approx(3276.8, rel=0.001)
    assert 2 * d.memory.capacity_gb == 128


# --------------------------------------------------------------------------------------------
# Links and hosts against their closed forms.
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gen", [3, 4, 5])
def test_pcie_link_is_the_encoding_closed_form(gen):
    link = load_link(f"PCIe-{gen}")
    assert link.width == "x16"
    assert link.Bps == pytest.approx(pcie_Bps(gen, 16), rel=0.005)


@pytest.mark.parametrize("name,gbit", [("InfiniBand-HDR", 200), ("InfiniBand-NDR", 400),
                                       ("Ethernet-100G", 100), ("Ethernet-400G", 400)])
def test_network_port_is_line_rate_over_8(name, gbit):
    assert load_link(name).bandwidth_gbps == gbit / 8


@pytest.mark.parametrize("gen,links,per_link", [(2, 6, 25), (3, 12, 25), (4, 18, 25), (5, 18, 50)])
def test_nvlink_is_links_x_rate(gen, links, per_link):
    assert load_link(f"NVLink-{gen}").bandwidth_gbps == links * per_link


def test_latencies_rank_nvlink_below_pcie_below_network():
    lat = {n: load_link(n).latency_us for n in LINKS}
    assert max(lat[f"NVLink-{g}"] for g in (2, 3, 4, 5)) < min(lat[f"PCIe-{g}"] for g in (3, 4, 5))
    assert max(lat[f"PCIe-{g}"] for g in (3, 4, 5)) < min(lat[n] for n in LINKS[7:])


@pytest.mark.parametrize("name", [d for d in DEVICES if not d.startswith("MI")])
def test_nvidia_nvlink_within_its_generation(name):
    d = load_device(name)
    if d.nvlink is not None:
        assert d.nvlink.bandwidth_gbps <= load_link(f"NVLink-{d.nvlink.generation}").bandwidth_gbps


# Host DRAM: channels x MT/s x 8 bytes; CPU fp32: cores x fp32 FMA per clock x 2 x base clock.
HOST_FORMS = {
    "DGX-2": (12, 2666, 48, 32, 2.7),
    "DGX-A100": (16, 3200, 128, 16, 2.25),
    "DGX-H100": (16, 4800, 112, 32, 2.0),
    "DGX-H200": (16, 4800, 112, 32, 2.0),
    "PCIe-Gen4-workstation": (8, 3200, 32, 16, 3.6),
    "PCIe-Gen5-workstation": (8, 5200, 32, 16, 4.0),
}


@pytest.mark.parametrize("name", HOSTS)
def test_host_closed_forms(name):
    ch, mts, cores, fma, ghz = HOST_FORMS[name]
    h = load_host(name)
    assert h.dram.bandwidth_gbps == pytest.approx(ch * mts * 8 / 1000, rel=0.002)
    assert h.cpu.cores == cores
    assert h.cpu.fp32_tflops == pytest.approx(cores * fma * 2 * ghz / 1000, rel=0.01)


def test_dgx_published_host_figures():
    """DGX-2 datasheet (16 GPUs, 1.5 TB, 8x 3.84 TB) and reference rows H0107-H0114, H0117-H0119."""
    d2, a, h = load_host("DGX-2"), load_host("DGX-A100"), load_host("DGX-H100")
    assert (d2.gpus, d2.cpu.cores, d2.nvme.drives, d2.nvme.capacity_tb_per_drive) == (16, 48, 8, 3.84)
    assert d2.dram.capacity_gb == 24 * 64                        # "1.5 TB" as 24 x 64 GB DIMMs
    assert (a.gpus, a.cpu.cores) == (8, 128) and a.nvme_bytes == pytest.approx(15e12, rel=0.03)
    assert (h.gpus, h.cpu.cores, h.nvme.drives) == (8, 112, 8) and h.nvme_bytes == pytest.approx(30.72e12)
    assert load_host("DGX-H200").model_dump(exclude={"name", "sources", "notes"}) == \
        h.model_dump(exclude={"name", "sources", "notes"})


def test_t4_pcie_generation_is_its_own():
    """T4 is Gen3 on a Gen4 default host; the transfer model takes the lower generation."""
    d = load_device("T4")
    assert d.pcie.generation == 3 and load_host(d.default_host).pcie_generation == 4


# --------------------------------------------------------------------------------------------
# Bad input: one InputError naming the file and the field.
# --------------------------------------------------------------------------------------------

@pytest.fixture
def h100_dict():
    return copy.deepcopy(_raw("devices", "H100-SXM5-80GB"))


def _write(tmp_path: Path, data, name="dev.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def _err(ref, loader=load_device) -> InputError:
    with pytest.raises(InputError) as ei:
        loader(ref)
    return ei.value


def test_unknown_device_name_lists_the_zoo():
    e = _err("H100-SXM6-80GB")
    assert e.field == "hardware" and "unknown device 'H100-SXM6-80GB'" in e.problem
    assert "H100-SXM5-80GB" in e.problem


def test_missing_field_names_file_and_field(tmp_path, h100_dict):
    del h100_dict["l2_mb"]
    p = _write(tmp_path, h100_dict)
    e = _err(p)
    assert e.where == str(p) and e.field == "l2_mb"


def test_unknown_field_is_a_typo(tmp_path, h100_dict):
    h100_dict["l2_bandwith_gbps"] = h100_dict["l2_bandwidth_gbps"]
    p = _write(tmp_path, h100_dict)
    e = _err(p)
    assert e.where == str(p) and e.field == "l2_bandwith_gbps" and "unknown field" in e.problem


def test_negative_bandwidth_is_refused(tmp_path, h100_dict):
    h100_dict["memory"]["bandwidth_gbps"] = -3350
    p = _write(tmp_path, h100_dict)
    e = _err(p)
    assert e.where == str(p) and e.field == "memory.bandwidth_gbps"


def test_figure_without_source_is_refused(tmp_path, h100_dict):
    del h100_dict["sources"]["l2_bandwidth_gbps"]
    p = _write(tmp_path, h100_dict)
    e = _err(p)
    assert e.where == str(p) and "l2_bandwidth_gbps" in str(e) and "source" in str(e)


def test_unknown_dtype_is_refused(tmp_path, h100_dict):
    h100_dict["peak_tflops"]["fp12"] = 1.0
    e = _err(_write(tmp_path, h100_dict))
    assert "fp12" in str(e)


def test_non_mapping_yaml_is_refused(tmp_path):
    p = _write(tmp_path, "- H100\n- A100\n")
    e = _err(p)
    assert e.where == str(p) and e.field == "<root>" and "mapping" in e.problem


def test_name_must_equal_file_name(tmp_path, h100_dict, monkeypatch):
    (tmp_path / "devices").mkdir()
    h100_dict["name"] = "H100-SXM5"
    _write(tmp_path / "devices", h100_dict, "H100-SXM5-80GB.yaml")
    monkeypatch.setattr(hw, "ZOO", tmp_path)
    hw._load_named.cache_clear()
    try:
        e = _err("H100-SXM5-80GB")
    finally:
        hw._load_named.cache_clear()
    assert e.where.endswith("H100-SXM5-80GB.yaml") and e.field == "name"


def test_bad_host_and_link(tmp_path):
    host = copy.deepcopy(_raw("hosts", "DGX-H100"))
    host["dram"]["bandwidth_gbps"] = 0
    e = _err(_write(tmp_path, host, "host.yaml"), load_host)
    assert e.field == "dram.bandwidth_gbps" and e.where.endswith("host.yaml")
    link = copy.deepcopy(_raw("links", "NVLink-4"))
    link["kind"] = "nvswitch"
    e = _err(_write(tmp_path, link, "link.yaml"), load_link)
    assert e.field == "kind"


@settings(max_examples=30, deadline=None)
@given(bw=st.floats(min_value=-1e4, max_value=1e5, allow_nan=False))
def test_memory_bandwidth_sign_property(bw):
    """Any positive bandwidth loads and converts to bytes/s linearly; zero or negative never loads."""
    data = copy.deepcopy(_raw("devices", "A100-SXM4-80GB"))
    data["memory"]["bandwidth_gbps"] = bw
    if bw > 0:
        assert load_device(data).hbm_Bps == pytest.approx(bw * 1e9)
    else:
        e = _err(data)
        assert e.where == "inline device" and e.field == "memory.bandwidth_gbps"


# --------------------------------------------------------------------------------------------
# Adding a device is one file.
# --------------------------------------------------------------------------------------------

def test_hypothetical_device_is_one_file(tmp_path, h100_dict):
    """An H100 with HBM3e at 2x bandwidth and 2x capacity: write one YAML, load it by path, use it."""
    h100_dict["name"] = "H100-hypothetical-HBM3e"
    h100_dict["memory"] = {"type": "HBM3e", "capacity_gb": 160, "bandwidth_gbps": 6700}
    h100_dict["sources"]["memory"] = "hypothetical: twice H100 SXM5 capacity and bandwidth"
    p = _write(tmp_path, h100_dict, "H100-hypothetical-HBM3e.yaml")
    d = load_device(str(p))
    base = load_device("H100-SXM5-80GB")
    assert d.name == "H100-hypothetical-HBM3e"
    assert d.hbm_Bps == pytest.approx(2 * base.hbm_Bps) and d.hbm_bytes == pytest.approx(2 * base.hbm_bytes)
    assert d.peak_flops("bf16") == base.peak_flops("bf16")
    assert load_device(p) == d                                   # a Path works as well as a str
    assert load_host(d.default_host).name == "DGX-H100"


def test_docs_device_table_matches_the_zoo():
    """docs/hardware.md lists every device; its figures are the files' figures."""
    doc = Path(__file__).resolve().parents[1] / "docs" / "hardware.md"
    rows = {}
    for line in doc.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in DEVICES and len(cells) == 10:
            rows[cells[0]] = cells
    assert set(rows) == set(DEVICES)

    def num(s):
        s = s.strip()
        return None if s == "-" else float(s.split()[0])

    for name, c in rows.items():
        d = load_device(name)
        fp16, bf16 = (num(x) for x in c[2].split("/"))
        assert (fp16, bf16) == (d.peak_tflops["fp16"], d.peak_tflops.get("bf16")), name
        assert num(c[3]) == d.peak_tflops.get("fp8"), name
        assert (num(c[4]), num(c[5]), num(c[6]), num(c[8])) == \
            (d.memory.capacity_gb, d.memory.bandwidth_gbps, d.l2_mb, d.tdp_w), name
        assert num(c[7]) == (d.nvlink.bandwidth_gbps if d.nvlink else None), name
        assert c[9] == d.default_host, name
