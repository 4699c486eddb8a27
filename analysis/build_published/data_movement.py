"""Kernel rows that move data rather than compute -> memory, collective and transfer scenarios:
STREAM-like HBM kernels, the L2 plateau, nccl-tests all-reduce, host <-> GPU copies
(nvbandwidth) and NVMe I/O (fio-scan, DeepNVMe). Each pins the buffer size, host and path the
source used, since bandwidth depends on them more than on the kernel.
"""
from __future__ import annotations

import re

from .common import Unmapped

def memory(r, p, notes):
    op = {"read": "read", "scale": "scale", "triad": "triad", "init": "write"}
    impl = r["implementation"]
    if "kernel" in p:
        notes.append(f"gpu-stream '{p['kernel']}' kernel; array size not stated ('large array'), "
                     "1 GiB assumed (far above L2)")
        wl = {"kind": "memory", "op": op[p["kernel"]], "bytes": 1 << 30}
    elif "beyond-L2" in impl:
        notes.append("data set > 150 MB; 1 GiB assumed (far above L2)")
        wl = {"kind": "memory", "op": "read", "bytes": 1 << 30}
    else:
        raise Unmapped("not a STREAM-like kernel")
    notes.append("bytes counted as gpu-stream does: every load and store stream")
    return "memory", wl, "gbps", float(r["value"]), None


def l2(r, p, notes):
    if r["category"] != "L2 bandwidth":
        raise Unmapped("L1 bandwidth: the memory workload has levels hbm and l2 only")
    notes.append("data set ~18-37 MB (fits L2); 24 MiB assumed; gpu-l2-cache launches 100000 blocks that each "
                 "read 256 KiB of the set (main.cu: N=32 doubles x 1024 threads), i.e. 1042 passes over 24 MiB "
                 "in one kernel")
    wl = {"kind": "memory", "op": "read", "bytes": 24 << 20, "level": "l2", "passes": 1042}
    return "l2", wl, "gbps", float(r["value"]), None


def collective(r, p, notes, dev):
    size = p["message_bytes"]
    nbytes = int(size[:-3]) << 30 if size.endswith("GiB") else int(size)
    gpus = int(p["ranks"])
    wl = {"kind": "collective", "op": "all_reduce", "bytes": nbytes, "gpus": gpus}
    notes.append("nccl-tests all_reduce_perf, bytes = per-GPU buffer; busbw = algbw * 2(n-1)/n")
    scen = {"cluster": {"gpus": gpus, "gpus_per_node": gpus, "intra_node": "nvlink"}}
    if dev == "H100-PCIe-80GB":
        scen["host"] = "PCIe-Gen5-workstation"
        notes.append("host: PCIe Gen5 workstation assumed")
    return "collective", wl, "busbw_gbps", float(r["value"]), None, scen


def transfer(r, p, notes, dev):
    metric = r["metric"]
    value = r["value"]
    if "-" in value:
        lo, hi = (float(x) for x in value.split("-"))
        value = (lo + hi) / 2
        notes.append(f"range {r['value']} GB/s over 8 GPUs; midpoint stored")
    src, dst = ("hbm", "host") if metric.startswith("D2H") else ("host", "hbm")
    nbytes = 512 << 20
    if "512 MiB" not in r["params"]:
        notes.append("buffer size not stated; 512 MiB assumed (large-transfer regime)")
    notes.append("pinned host memory (nvbandwidth allocates pinned buffers)")
    host = {"H100-SXM5-80GB": "DGX-H100", "A100-SXM4-40GB": "DGX-A100", "RTX-4090": "PCIe-Gen4-workstation"}[dev]
    notes.append(f"host {host} assumed")
    wl = {"kind": "transfer", "src": src, "dst": dst, "bytes": nbytes, "pinned": True}
    return "transfer", wl, "gbps", float(value), None, {"host": host}


# NVMe rows: reference hardware text -> (device, host, note). Their transfers touch the GPU only on an hbm leg.
STORAGE_HOSTS = {
    "Azure NC96ads_A100_v4 (A100-80GB, 4x NVMe RAID0, 13 GB/s theoretical read)":
        ("A100-PCIe-80GB", "NC96ads-A100-v4", "host NC96ads-A100-v4: four local NVMe disks in RAID0 (13 GB/s "
                                              "read); its A100 80GB is the PCIe card"),
    "Samsung SSD 980 PRO 2TB (PCIe 4.0 NVMe, consumer)":
        ("RTX-4090", "Gen4-desktop-980PRO", "host Gen4-desktop-980PRO (one Samsung 980 PRO 2 TB); the box's GPU "
                                            "is not stated and an NVMe <-> host transfer does not touch it "
                                            "(RTX 4090 named as a Gen4 consumer card)"),
}


def storage(r, notes):
    """An NVMe I/O row -> a transfer scenario in the 'nvme' family, bandwidth in GB/s ('storage' is the
    family of `gpusim bench` host probes, which calibrate a probed host rather than validate)."""
    dev, host, note = STORAGE_HOSTS[r["hardware"]]
    notes.append(note)
    wl, value = (_fio_scan if r["hardware"].startswith("Samsung") else _deepnvme)(r, notes)
    if r["notes"]:
        notes.append(f"reference note: {r['notes']}")
    return "nvme", {"hardware": dev, "host": host, "workload": wl}, None, "gbps", value, notes


def _fio_scan(r, notes):
    """ml-engineering's storage/fio-scan: --readwrite=read|write (sequential) --blocksize=4k --iodepth=64
    --numjobs=16 --direct=1 --filesize=16k|1m|1g --time_based --runtime=3m."""
    p = dict(re.fullmatch(r"(file size|op) (\w+)", x.strip()).groups() for x in r["params"].split(";"))
    src, dst = ("nvme", "host") if p["op"] == "read" else ("host", "nvme")
    notes += ["fio-scan (storage/fio-scan in the source repo): sequential (--readwrite=read/write), 4 KiB direct "
              "I/O, 16 jobs x iodepth 64 = 1024 requests in flight",
              f"3-minute time-based run (--time_based --runtime=3m): duration_s 180, bytes = the 2 TB drive as the "
              f"most it could move (it does not bind); each job cycles over its own {p['file size']} file, a span "
              f"the model does not see",
              "a write starts with the drive's SLC write cache empty (fio-scan runs a 3-minute read between "
              "write runs, idle time for the drive to fold its cache into TLC)",
              f"{r['value']} MiB/s converted to GB/s (x 2^20 / 1e9)"]
    wl = {"kind": "transfer", "src": src, "dst": dst, "bytes": 2e12, "duration_s": 180.0, "pinned": True,
          "pattern": "sequential", "block_bytes": 4096, "queue_depth": 16 * 64}
    return wl, float(r["value"]) * 2 ** 20 / 1e9


def _deepnvme(r, notes):
    """DeepSpeed's DeepNVMe microbenchmarks: 1 GB between NVMe (RAID0 of 4) and CPU or GPU memory."""
    metric = r["metric"]
    src, dst = {"CPU->NVMe": ("host", "nvme"), "NVMe->GPU": ("nvme", "hbm"),
                "GPU->NVMe": ("hbm", "nvme")}[metric.split()[0]]
    wl = {"kind": "transfer", "src": src, "dst": dst, "bytes": 2 ** 30, "pinned": True}
    path = "CPU buffer"
    if "hbm" in (src, dst):
        wl["gds"] = "(GDS)" in metric
        path = "GPUDirect Storage" if wl["gds"] else "bounce buffer in pinned host memory (no GDS)"
        if not wl["gds"]:   # deepspeed/nvme/ds_aio_handle.py: pread into the pinned buffer, wait, then copy_
            wl["bounce"] = "serial"
            path += ("; ds_io reads the whole buffer into pinned memory, waits, then copies it to the GPU "
                     "(serial legs)")
    notes += [f"DeepNVMe microbenchmark, '1GB' taken as 1 GiB in large requests (bandwidth-bound); {path}",
              "the blog's maximum over its runs"]
    return wl, float(r["value"])
