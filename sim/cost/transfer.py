"""Transfers between memory tiers: GPU memory (hbm), host DRAM (host) and local NVMe (nvme).

A transfer is a pipeline of stages that stream in chunks, so its time is a fixed start-up latency
plus the slowest stage: PCIe between GPU and host (the slower of the device's and the host's
generation, the fewer of their lanes), the NVMe drives (all drives striped), host DRAM (every
stage that lands in or leaves host memory), and for pageable host memory the CPU copy into the
driver's pinned staging buffer. NVMe <-> GPU goes through a pinned bounce buffer in host memory
(as DeepSpeed's AIO path does); GPUDirect Storage (NVMe DMA straight into GPU memory) is not
modelled.

Host-side parameters (DRAM, staging copy, NVMe) are read from the host spec, so host probes can
calibrate them; PCIe and copy start-up from the device spec.
"""
from __future__ import annotations

from sim.cost import OpCost, pricer
from sim.cost.collective import pcie_path_Bps
from sim.cost.efficiency import eff, param
from sim.hardware.system import System
from sim.ops import Transfer

TIERS = ("hbm", "host", "nvme")

param("pcie_h2d_efficiency", 64 / (64 + 20),
      "payload share of host-to-device DMA: the GPU reads host memory and the root complex returns "
      "the data as completion TLPs of one 64-B cache line each, with 20 B of framing token, 3-DW "
      "header and LCRC",
      "PCIe base spec: completions may be split at the 64-B read completion boundary of a root port; "
      "NCCL's topo.h notes Intel root complexes turn GPU traffic into 64-B TLPs; 64/(64+4+12+4)",
      lo=0.3, hi=1.0)
param("pageable_staging_Bps", 10e9,
      "rate of the driver's CPU copy between pageable memory and its pinned staging buffer "
      "(one thread), bytes/s",
      "Little's law for one core: ~10-16 outstanding 64-B cache-line misses over ~100 ns of loaded "
      "DRAM latency give 6-10 GB/s, raised somewhat by the L2 streamer prefetcher; pageable copies "
      "are the slow path in NVIDIA's 'How to Optimize Data Transfers in CUDA C/C++' blog", lo=1e9, hi=200e9)
param("dram_efficiency", 0.80,
      "achievable fraction of peak host DRAM bandwidth for streaming reads and writes",
      "DDR refresh (tRFC/tREFI ~5-9% of time for 16-Gb DDR4/DDR5 devices) plus read/write bus "
      "turnarounds and page misses; STREAM on two-socket servers typically reaches 70-85% of peak",
      lo=0.3, hi=1.0)
param("nvme_read_efficiency", 1.0,
      "achievable fraction of the drives' rated sequential read rate (large direct I/O, all drives striped)",
      "vendor sequential figures are measured with large blocks at high queue depth, which bulk "
      "offload reproduces; 1.0 until calibration on measured runs", lo=0.1, hi=1.0)
param("nvme_write_efficiency", 1.0,
      "achievable fraction of the drives' rated sequential write rate",
      "as nvme_read_efficiency", lo=0.1, hi=1.0)
param("transfer_latency_s", 5e-6,
      "fixed cost of one host<->GPU copy: API call, doorbell, descriptor fetch and completion",
      "a copy-engine DMA needs a driver call of a few us plus descriptor-fetch and completion round "
      "trips over PCIe (~1 us each); small cudaMemcpy calls take several us", lo=0.0, hi=1e-3)
param("nvme_latency_s", 100e-6,
      "fixed latency of the first NVMe read or write of a transfer",
      "TLC NAND page read time tR is ~50-100 us (flash datasheets), plus controller and kernel "
      "block-layer time", lo=0.0, hi=1e-2)


def capacity(system: System, tier: str) -> float:
    """Bytes a tier holds: device memory, host DRAM, or all NVMe drives."""
    return {"hbm": system.device.hbm_bytes, "host": system.host.dram_bytes, "nvme": system.host.nvme_bytes}[tier]


@pricer(Transfer)
def price(op: Transfer, system: System) -> OpCost:
    d, h = system.device, system.host
    src, dst, S = op.src, op.dst, float(op.bytes)
    for tier in (src, dst):
        if tier not in TIERS:
            raise ValueError(f"unknown memory tier '{tier}'; expected one of {TIERS}")
    if src == dst and src != "host":
        raise ValueError(f"{src} -> {dst} is not a transfer between tiers (a device copy is a 'memory' op)")
    if "nvme" in (src, dst) and (h.nvme_read_Bps <= 0 or h.nvme_write_Bps <= 0):
        raise ValueError(f"host {h.name} has no NVMe drives")

    terms: dict[str, float] = {}
    moved: dict[str, float] = {}
    latency = 0.0
    dram_bytes = 0.0
    notes = []
    if "hbm" in (src, dst):                      # the PCIe leg between GPU and host memory
        h2d = dst == "hbm"
        e = eff(d, "pcie_h2d_efficiency" if h2d else "pcie_efficiency")
        raw = pcie_path_Bps(system)
        terms["pcie"] = S / (raw * e)
        moved["pcie"] = S
        latency += eff(d, "transfer_latency_s")
        dram_bytes += S                          # DMA reads (H2D) or writes (D2H) host memory once
        notes.append(f"PCIe Gen{min(d.pcie.generation, h.pcie_generation)} "
                     f"x{min(d.pcie.lanes, h.pcie_lanes_per_gpu)}: {raw / 1e9:.3g} GB/s raw, "
                     f"{raw * e / 1e9:.3g} GB/s achievable {'host-to-device' if h2d else 'device-to-host'}")
        if not op.pinned:                        # CPU copy through the driver's pinned staging buffer
            terms["cpu"] = S / eff(h, "pageable_staging_Bps")
            dram_bytes += 2 * S                  # the staging copy reads and writes host memory
            notes.append("pageable: staged through a pinned buffer by one CPU thread, pipelined with the DMA")
    if "nvme" in (src, dst):
        if src == "nvme":
            terms["nvme_read"] = S / (h.nvme_read_Bps * eff(h, "nvme_read_efficiency"))
        else:
            terms["nvme_write"] = S / (h.nvme_write_Bps * eff(h, "nvme_write_efficiency"))
        moved["nvme"] = S
        latency += eff(h, "nvme_latency_s")
        dram_bytes += S                          # the drives DMA into / out of host memory
        if "hbm" in (src, dst):
            notes.append("NVMe <-> GPU through a pinned bounce buffer in host memory (GPUDirect Storage not modelled)")
    if src == dst == "host":
        dram_bytes += 2 * S                      # a copy reads and writes every byte
    terms["dram_bandwidth"] = dram_bytes / (h.dram_Bps * eff(h, "dram_efficiency"))
    moved["dram"] = dram_bytes

    bound = max(terms, key=terms.get)
    t = latency + terms[bound]
    if latency > terms[bound]:
        bound = "latency"
    terms["latency"] = latency
    detail = {"src": src, "dst": dst, "pinned": op.pinned, "path": notes,
              "explanation": _explain(bound, S, terms, t, latency)}
    return OpCost(t, bound, 0.0, moved, terms, detail)


_WHAT = {"pcie": "PCIe", "nvme_read": "NVMe read", "nvme_write": "NVMe write",
         "dram_bandwidth": "host DRAM", "cpu": "pageable staging copy (one CPU thread)"}


def _explain(bound, S, terms, t, latency) -> str:
    if bound == "latency":
        return f"latency-bound: {latency * 1e6:.3g} us of fixed start-up cost against {S:.3g} bytes"
    rate = S / terms[bound]
    return (f"{_WHAT[bound]}-bound: {S:.3g} bytes at {rate / 1e9:.3g} GB/s effective for this stage, "
            f"plus {latency * 1e6:.3g} us start-up")
