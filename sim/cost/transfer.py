"""Transfers between memory tiers: GPU memory (hbm), host DRAM (host) and local NVMe (nvme).

A transfer is a pipeline of stages that stream in chunks, so its time is a fixed start-up latency
plus the slowest stage: the GPU's link to host memory (``sim.hardware.system.host_link``: PCIe, the
slower of the device's and the host's generation and the fewer of their lanes, or the host's
``gpu_link`` such as GH200's NVLink-C2C; the stage keeps the name ``pcie``), the NVMe drives (all drives striped), host DRAM (every
stage that lands in or leaves host memory), and for pageable host memory the CPU copy into the
driver's pinned staging buffer. NVMe <-> GPU goes through a pinned bounce buffer in host memory
(as DeepSpeed's AIO path does) unless the op asks for GPUDirect Storage (``gds``): then the drives
DMA straight into or out of GPU memory over the GPU's PCIe link and host DRAM is not touched.

Small requests (``block_bytes``, any ``pattern``) are bounded by the drives' command rate as well as
their bandwidth: by Little's law, ``q`` requests in flight, each taking the drive's queue-depth-1
latency ``L`` (1 / the datasheet's QD1 IOPS), complete at ``q / L`` per second, until the drives'
rated high-depth IOPS caps them. A RAID0 of ``k`` drives spreads requests over all of them, so the
cap and the bandwidth scale by ``k`` while the QD1 latency does not; host DRAM bounds the sum.

A consumer drive writes into an SLC cache at its burst (datasheet) rate and, once the cache is full,
at its native rate: with the host's optional ``nvme.write_cache_gb_per_drive`` and
``nvme.sustained_write_gbps_per_drive``, the first cache-size bytes per drive of a write go at the
burst rate and the rest at the sustained one (absent: no cache effect).

The bounce-buffer path is pipelined by default (chunks overlap both legs); ``bounce='serial'`` moves
the whole buffer across one leg and then the other, as DeepSpeed's ds_io benchmark does (pread into a
pinned buffer, wait, then one copy to the GPU), so its time is the sum of the two legs.

Host-side parameters (DRAM, staging copy, NVMe) are read from the host spec, so host probes can
calibrate them; PCIe and copy start-up from the device spec.
"""
from __future__ import annotations

import math

from sim.cost import OpCost, pricer
from sim.cost.efficiency import eff, param
from sim.hardware.system import System, host_link
from sim.ops import Transfer

TIERS = ("hbm", "host", "nvme")
PATTERNS = ("sequential", "random")
BOUNCES = ("pipelined", "serial")
DATASHEET_BLOCK = 4096          # the request size vendors rate random IOPS at (4 KiB)

param("pcie_h2d_efficiency", 64 / (64 + 20),
      "payload share of host-to-device DMA: the GPU reads host memory and the root complex returns "
      "the data as completion TLPs of one 64-B cache line each, with 20 B of framing token, 3-DW "
      "header and LCRC",
      "PCIe base spec: completions may be split at the 64-B read completion boundary of a root port; "
      "NCCL's topo.h notes Intel root complexes turn GPU traffic into 64-B TLPs; 64/(64+4+12+4)",
      lo=0.3, hi=1.0)
param("c2c_efficiency", 0.80,
      "achievable fraction of an NVLink-C2C host link's per-direction rate for host<->GPU copies "
      "(packet headers and flow control of the NVLink protocol C2C carries)",
      "NVLink-C2C is an NVLink-family link; NCCL's Hopper NVLink payload figure is 20.6 of 25 GB/s per "
      "link (src/graph/topo.h SM90_NVLINK_BW: 0.82), Blackwell's 40.1 of 50 (0.80); 0.80 taken, not fitted",
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
param("nvme_iops_efficiency", 1.0,
      "achievable fraction of the drives' rated high-queue-depth random IOPS",
      "vendors rate IOPS with fio/IOMeter at QD32 over several threads on a fresh drive, which a deep "
      "libaio/io_uring workload reproduces; 1.0 until calibration on measured runs", lo=0.05, hi=1.0)


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
    _check_request_fields(op, h)
    gds = op.gds

    terms: dict[str, float] = {}
    moved: dict[str, float] = {}
    latency = 0.0
    dram_bytes = 0.0
    notes = []
    link = host_link(system)
    if "hbm" in (src, dst):                      # the leg between GPU and host memory (PCIe or the host's gpu_link)
        h2d = dst == "hbm"
        if link.kind == "pcie":
            # GDS: the drive is the DMA master and writes GPU memory with posted writes (read) or reads it
            # and gets the GPU's completions (write): no root-port 64-B completion split either way
            e = eff(d, "pcie_h2d_efficiency" if h2d and not gds else "pcie_efficiency")
        else:                                    # NVLink-C2C: no PCIe TLPs, one NVLink payload share both ways
            e = eff(d, "c2c_efficiency")
        raw = link.Bps
        terms["pcie"] = S / (raw * e)
        moved["pcie"] = S
        latency += eff(d, "transfer_latency_s")
        if not gds:
            dram_bytes += S                      # DMA reads (H2D) or writes (D2H) host memory once
        notes.append(f"{link.label}: {raw / 1e9:.3g} GB/s raw, "
                     f"{raw * e / 1e9:.3g} GB/s achievable {'host-to-device' if h2d else 'device-to-host'}")
        # Pageable memory: priced as today's staging copy on every link. Over NVLink-C2C the GPU can
        # address pageable memory directly (ATS), which may remove this term: not modelled.
        if not op.pinned and not gds:            # CPU copy through the driver's pinned staging buffer
            terms["cpu"] = S / eff(h, "pageable_staging_Bps")
            dram_bytes += 2 * S                  # the staging copy reads and writes host memory
            notes.append("pageable: staged through a pinned buffer by one CPU thread, pipelined with the DMA")
    if "nvme" in (src, dst):
        read = src == "nvme"
        leg = "nvme_read" if read else "nvme_write"
        seq_Bps = (h.nvme_read_Bps * eff(h, "nvme_read_efficiency") if read
                   else h.nvme_write_Bps * eff(h, "nvme_write_efficiency"))
        terms[leg] = S / seq_Bps
        moved["nvme"] = S
        cache = None if read else _write_cache(h)
        if op.block_bytes is None:               # large streaming requests: bandwidth and a first-read latency
            latency += eff(h, "nvme_latency_s")
            if cache:
                terms[leg], note = _cached_write(S, seq_Bps, math.inf, *cache)
                notes.append(note)
        else:                                    # the first request's bytes are inside its latency
            lat, term, note = _request_bound(op, h, read, S)
            latency += lat
            terms["nvme_iops"] = term
            rest = max(0.0, S - op.block_bytes)
            terms[leg] = rest / seq_Bps
            notes.append(note)
            if cache:                            # the command rate holds in both phases
                cmd_Bps = rest / term if term > 0 else math.inf
                t_cached, note = _cached_write(rest, seq_Bps, cmd_Bps, *cache)
                if t_cached > term * (1 + 1e-9):
                    terms[leg] = t_cached
                notes.append(note)
        if gds:
            notes.append("GPUDirect Storage: the drives DMA straight to/from GPU memory over its "
                         f"{'PCIe' if link.kind == 'pcie' else link.label} link; host DRAM untouched")
        else:
            dram_bytes += S                      # the drives DMA into / out of host memory
            if "hbm" in (src, dst):
                notes.append("NVMe <-> GPU through a pinned bounce buffer in host memory, " +
                             ("the whole buffer over one leg, then the other (serial)" if op.bounce == "serial"
                              else "pipelined with the PCIe copy"))
    if src == dst == "host":
        dram_bytes += 2 * S                      # a copy reads and writes every byte
    dram_Bps = h.dram_Bps * eff(h, "dram_efficiency")
    terms["dram_bandwidth"] = dram_bytes / dram_Bps
    moved["dram"] = dram_bytes

    if op.bounce == "serial":                    # two phases, each the slower of its stage and its DRAM share
        t, bound = _serial(terms, S / dram_Bps)
        t += latency
    else:
        bound = max(terms, key=terms.get)
        t = latency + terms[bound]
    if latency > t - latency:
        bound = "latency"
    terms["latency"] = latency
    detail = {"src": src, "dst": dst, "pinned": op.pinned, "path": notes,
              "explanation": _explain(bound, S, terms, t, latency, link.label if link.kind != "pcie" else "PCIe")}
    if gds:
        detail["gds"] = True
    if op.block_bytes is not None:
        detail["request"] = {"pattern": op.pattern, "block_bytes": op.block_bytes, "queue_depth": op.queue_depth}
    return OpCost(t, bound, 0.0, moved, terms, detail)


_WHAT = {"pcie": "PCIe", "nvme_read": "NVMe read", "nvme_write": "NVMe write",
         "nvme_iops": "NVMe command rate (IOPS)",
         "dram_bandwidth": "host DRAM", "cpu": "pageable staging copy (one CPU thread)"}


def _explain(bound, S, terms, t, latency, link_label="PCIe") -> str:
    if bound == "latency":
        return f"latency-bound: {latency * 1e6:.3g} us of fixed start-up cost against {S:.3g} bytes"
    if bound == "nvme_iops":
        return (f"NVMe command-rate-bound (IOPS x request size below the drives' bandwidth): {S:.3g} bytes at "
                f"{S / t / 1e9:.3g} GB/s overall, the first wave's {latency * 1e6:.3g} us latency included")
    rate = S / terms[bound]
    what = link_label if bound == "pcie" else _WHAT[bound]
    return (f"{what}-bound: {S:.3g} bytes at {rate / 1e9:.3g} GB/s effective for this stage, "
            f"plus {latency * 1e6:.3g} us start-up")


def _check_request_fields(op: Transfer, h) -> None:
    """Request-size fields describe NVMe requests; refuse them where they mean nothing."""
    if op.pattern not in PATTERNS:
        raise ValueError(f"pattern: got {op.pattern!r}; expected one of {PATTERNS}")
    if op.block_bytes is not None and not op.block_bytes > 0:
        raise ValueError(f"block_bytes: got {op.block_bytes!r}; expected a request size > 0 bytes")
    if op.queue_depth < 1:
        raise ValueError(f"queue_depth: got {op.queue_depth!r}; expected >= 1 request in flight")
    nvme = "nvme" in (op.src, op.dst)
    if (op.block_bytes is not None or op.pattern == "random") and not nvme:
        raise ValueError("block_bytes/pattern: request sizes are modelled for NVMe legs only")
    if op.pattern == "random" and op.block_bytes is None:
        raise ValueError("block_bytes: a random pattern needs its request size")
    if op.gds and {op.src, op.dst} != {"nvme", "hbm"}:
        raise ValueError(f"gds: GPUDirect Storage moves between nvme and hbm, not {op.src} -> {op.dst}")
    if op.bounce not in BOUNCES:
        raise ValueError(f"bounce: got {op.bounce!r}; expected one of {BOUNCES}")
    if op.bounce == "serial" and ({op.src, op.dst} != {"nvme", "hbm"} or op.gds):
        raise ValueError("bounce: serial staging is the host bounce buffer of nvme <-> hbm without gds, "
                         f"not {op.src} -> {op.dst}{' with gds' if op.gds else ''}")
    if op.block_bytes is not None:
        rw = "read" if op.src == "nvme" else "write"
        for f in (f"random_{rw}_iops_per_drive", f"random_{rw}_iops_qd1_per_drive"):
            if getattr(h.nvme, f) is None:
                raise ValueError(f"block_bytes: host {h.name} gives no nvme.{f}; small requests need the "
                                 f"drive's IOPS figures")


def _request_bound(op: Transfer, h, read: bool, S: float) -> tuple[float, float, str]:
    """(start-up latency, command-rate term, note) for ``S`` bytes in requests of ``block_bytes``.

    One request at queue depth 1 takes L = 1/IOPS_QD1 (the datasheet's 4 KiB figure) plus the bytes
    beyond 4 KiB at the drive's sequential rate. With q requests in flight Little's law gives q/L
    completions per second; the drives' rated IOPS (x drives for RAID0) caps that. The first request
    costs one latency L (the start-up); the other N - 1 are paced by that rate. Exact at QD1 (N x L);
    with q > 1 and few requests it overstates the time by less than one L.
    """
    n = h.nvme
    rw = "read" if read else "write"
    per_drive_Bps = (n.read_gbps_per_drive if read else n.write_gbps_per_drive) * 1e9
    b = float(op.block_bytes)
    L = 1.0 / getattr(n, f"random_{rw}_iops_qd1_per_drive") + max(0.0, b - DATASHEET_BLOCK) / per_drive_Bps
    N = math.ceil(S / b)
    q = min(op.queue_depth, N)
    little = q / L
    cap = n.drives * getattr(n, f"random_{rw}_iops_per_drive") * eff(h, "nvme_iops_efficiency")
    iops = min(little, cap)
    which = "Little's law, q / L" if little < cap else f"the {n.drives} drive(s)' rated IOPS"
    note = (f"{op.pattern} {b:.6g}-byte {rw}s, {op.queue_depth} in flight: L = {L * 1e6:.3g} us per request "
            f"(1/QD1 IOPS), {iops:.4g} IOPS from {which} = {iops * b / 1e9:.3g} GB/s, against "
            f"{n.drives} x {per_drive_Bps / 1e9:.3g} GB/s sequential")
    if op.pattern == "sequential":
        note += ("; sequential small requests priced with the random-IOPS figures (the only per-command "
                 "figures datasheets print; drive read-ahead makes them conservative at low depth)")
    return L, (N - 1) / iops, note


def _write_cache(h) -> tuple[float, float] | None:
    """(cache bytes over all drives, sustained write bytes/s over all drives), or None without a cache."""
    n = h.nvme
    if n.write_cache_gb_per_drive is None:
        return None
    return (n.drives * n.write_cache_gb_per_drive * 1e9,
            n.drives * n.sustained_write_gbps_per_drive * 1e9 * eff(h, "nvme_write_efficiency"))


def _cached_write(S: float, burst_Bps: float, cmd_Bps: float, cache_bytes: float,
                  sustained_Bps: float) -> tuple[float, str]:
    """Time to write ``S`` bytes into drives with a write cache: the first ``cache_bytes`` at the burst
    rate, the rest at the native (sustained) rate, both phases also bounded by the command rate.

    A consumer TLC drive programs incoming data as SLC (one bit per cell, fast) until that region is
    full, then has to program TLC directly while folding the SLC data into TLC behind it (Samsung's
    'Intelligent TurboWrite'; vendors print the buffer size and the rate after it). The run is assumed
    to start with the cache empty.
    """
    cached = min(S, cache_bytes)
    t = cached / min(burst_Bps, cmd_Bps) + (S - cached) / min(sustained_Bps, cmd_Bps)
    note = (f"write cache: the first {cached:.3g} of {S:.3g} bytes at {min(burst_Bps, cmd_Bps) / 1e9:.3g} GB/s "
            f"(burst), the rest at {min(sustained_Bps, cmd_Bps) / 1e9:.3g} GB/s (after the "
            f"{cache_bytes / 1e9:.3g}-GB cache is full)")
    return t, note


def _serial(terms: dict, dram_s: float) -> tuple[float, str]:
    """Bounce buffer in series: the NVMe leg (drives, command rate, its DRAM pass) finishes before the
    PCIe leg (copy engine, pageable staging, its DRAM pass) starts, so the time is their sum; the
    bound is the stage that sets the longer phase."""
    nv = {k: terms[k] for k in ("nvme_read", "nvme_write", "nvme_iops") if k in terms}
    pc = {k: terms[k] for k in ("pcie", "cpu") if k in terms}
    nv["dram_bandwidth"] = pc["dram_bandwidth"] = dram_s
    b1, b2 = max(nv, key=nv.get), max(pc, key=pc.get)
    return nv[b1] + pc[b2], (b1 if nv[b1] >= pc[b2] else b2)
