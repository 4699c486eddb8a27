"""Build traces/published/ from shared/reference: every reference row that can be held against a
scenario becomes one trace row; the rest are listed in UNMAPPED.md with the reason.

Run ``python -m analysis.build_published [REFERENCE_DIR] [OUT_DIR]``. The output is deterministic
(rows sorted by id, JSON with sorted keys, fixed float formatting), so running it again
reproduces the committed CSVs byte for byte; ``gpusim validate`` reads only traces/, never the
reference folder. Every assumption made turning a vague row into a scenario is written into the
row's ``notes``. Model dimensions come from the model zoo by name where the row names a zoo
model; other models are given inline with the dimensions from the row or its cited config.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from pathlib import Path

from analysis.traces import COLUMNS, METRIC_UNITS, PUBLISHED, check_row

REPO = Path(__file__).resolve().parent.parent


class Unmapped(Exception):
    """The row cannot be expressed as a scenario; the message is the reason (one line)."""


def reference_dir() -> Path:
    """$GPUSIM_REFERENCE, else shared/reference in the checkout, else /work/shared/reference."""
    for p in (os.environ.get("GPUSIM_REFERENCE"), REPO / "shared" / "reference", "/work/shared/reference"):
        if p and (Path(p) / "kernel_measurements.csv").exists():
            return Path(p)
    raise FileNotFoundError("shared/reference not found; set GPUSIM_REFERENCE")


# ---- small parsers -------------------------------------------------------------------------------

def parse_params(text: str) -> tuple[dict[str, str], list[str]]:
    """'pass=fwd;seqlen=4096;M=N=K=4096;weight 72k x 18k' -> ({'pass': 'fwd', 'seqlen': '4096',
    'm': '4096', 'n': '4096', 'k': '4096'}, ['weight 72k x 18k']). Keys are lower-cased."""
    kv, free = {}, []
    for part in (text or "").split(";"):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            free.append(part)
            continue
        m = re.fullmatch(r"((?:[A-Za-z_][A-Za-z0-9_ ]*=)+)(.*)", part)   # 'M=N=K=4096' or 'k=v (note=x)'
        keys = [k.strip() for k in m.group(1).split("=") if k.strip()] if m else []
        if m and len(keys) > 1 and not re.fullmatch(r"[A-Za-z0-9_ ]*", m.group(2)):
            keys, value = keys[:1], part.split("=", 1)[1].strip()
        elif m:
            value = m.group(2).strip()
        else:
            free.append(part)
            continue
        for k in keys:
            kv[k.lower()] = value
    return kv, free


def lead_int(text: str) -> int | None:
    m = re.match(r"\s*(\d+)", text or "")
    return int(m.group(1)) if m else None


def lead_bool(text: str) -> bool | None:
    m = re.match(r"\s*(true|false)", text or "", re.I)
    return None if not m else m.group(1).lower() == "true"


def sj(obj) -> str:
    """Canonical JSON: sorted keys, no spaces; the same scenario always serialises the same."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def fmt(v: float) -> str:
    return format(float(v), ".10g")


# ---- hardware names ------------------------------------------------------------------------------

ZOO_DEVICES = ("V100-SXM2-32GB", "A100-SXM4-40GB", "A100-SXM4-80GB", "A100-PCIe-80GB", "H100-SXM5-80GB",
               "H100-PCIe-80GB", "H800-SXM", "H200-SXM-141GB", "GH200", "B200", "RTX-4090", "RTX-3090",
               "RTX-A6000", "L40S", "A10", "T4", "MI250X", "MI300X")

# reference hardware text -> (zoo device, note on the mapping) or (None, reason it is unmapped)
HARDWARE = {
    "A100-SXM4-80GB": ("A100-SXM4-80GB", ""),
    "A100-SXM4-40GB": ("A100-SXM4-40GB", ""),
    "A100-PCIe-80GB": ("A100-PCIe-80GB", ""),
    "H100-SXM5-80GB": ("H100-SXM5-80GB", ""),
    "H100-PCIe-80GB": ("H100-PCIe-80GB", ""),
    "RTX 4090": ("RTX-4090", ""),
    "A10": ("A10", ""),
    "L40S-48GB": ("L40S", ""),
    "H100-SXM5-80GB (reported as 'NVIDIA H100 80GB HBM3', docker cloud)":
        ("H100-SXM5-80GB", "reported as 'NVIDIA H100 80GB HBM3' (the SXM5 part), cloud container"),
    "A10 (24GB GDDR6, ECC off)": ("A10", "ECC off"),
    "RTX 3090 (24GB GDDR6X)": ("RTX-3090", ""),
    "A100 (README: 'evaluated on NVIDIA A100 GPUs')":
        ("A100-SXM4-80GB", "A100 variant not stated; 80GB SXM4 assumed because the figure's dense cuBLAS "
                           "bars (27 TFLOP/s at 16x36864x9216) imply ~1.7 TB/s of weight reads, above the "
                           "40GB part's 1.555 TB/s"),
    "H100": ("H100-SXM5-80GB", "H100 variant not stated; SXM5 assumed"),
    "H100 (FA3 requires Hopper; variant not stated)": ("H100-SXM5-80GB", "H100 variant not stated; SXM5 assumed"),
    "A100 (SXM4, 40GB launch part assumed)": ("A100-SXM4-40GB", "row assumes the 40GB SXM4 launch part"),
    "A100-80GB": ("A100-SXM4-80GB", "A100 80GB form factor not stated; SXM4 assumed"),
    "A100 node, 8 GPUs, NVLink 3 / NVSwitch (300 GB/s uni-dir per GPU)":
        ("A100-SXM4-80GB", "A100 memory size not stated; 80GB SXM4 assumed (NVLink is the same on 40GB)"),
    "V100 (HBM2 900 GB/s spec)": ("V100-SXM2-32GB", "V100 variant not stated; SXM2 32GB assumed "
                                                   "(its 900 GB/s HBM2 matches the row's spec)"),
    "H100-PCIe-80GB (114 SMs, HBM2e 2.0 TB/s spec)": ("H100-PCIe-80GB", ""),
    "H100 (user-reported, SXM assumed)": ("H100-SXM5-80GB", "user-reported H100; SXM assumed by the row"),
    "H100 PCIe x2 with NVLink bridge": ("H100-PCIe-80GB", "two H100 PCIe cards joined by an NVLink bridge"),
    "H100 (8-GPU cluster node, PCIe Gen5 host link)": ("H100-SXM5-80GB", "8-GPU node; SXM5 (HGX) assumed"),
    "H100 (8-GPU cluster node)": ("H100-SXM5-80GB", "8-GPU node; SXM5 (HGX) assumed"),
    "RTX 4090 x8 (PCIe Gen4)": ("RTX-4090", "one of 8 RTX 4090 in a PCIe Gen4 server, measured one at a time"),
    "L40 (GDDR6 864 GB/s spec)": (None, "L40 is not in the device zoo (L40S is a different part)"),
    "RTX 6000 Ada": (None, "RTX 6000 Ada is not in the device zoo (RTX-A6000 is the Ampere card)"),
    "V100-PCIE-32GB": (None, "V100 PCIe is not in the device zoo (only V100-SXM2-32GB)"),
    "V100": ("V100-SXM2-32GB", "V100 variant not stated; SXM2 32GB assumed"),
}


def device(text: str) -> tuple[str, str]:
    if text not in HARDWARE:
        raise Unmapped(f"hardware '{text}' not mapped to a zoo device")
    name, note = HARDWARE[text]
    if name is None:
        raise Unmapped(note)
    return name, note


# ---- kernel rows ----------------------------------------------------------------------------------

ATTN_IMPL = {
    "FlashAttention-2": "flash2", "FlashAttention(v1)": "flash1", "FlashAttention-3": "flash3",
    "FlashAttention-3 (flash_v3)": "flash3", "PyTorch standard attention": "naive", "Standard attention": "naive",
    "xformers": "xformers", "FlashAttention Triton": "triton", "Triton": "triton",
    "Triton tutorial flash_v2": "triton", "cuDNN": "cudnn", "torch SDPA": "sdpa",
    "Colfax CUTLASS FA (Hopper)": "cutlass",
}
DECODE_IMPL = {
    "vLLM 0.2.6 PageAttention v2": "paged",
    "FlashInfer 0.0.1 batch decode (PageAttention)": "flashinfer",
    "FlashInfer single-request decode (fp16 KV)": "flashinfer",
    "FlashInfer single-request decode (fp8 KV)": "flashinfer",
    "FlashInfer single_decode_with_kv_cache (experimental SM70 bypass)": "flashinfer",
}
GEMM_DTYPE = {"FP16/BF16": "fp16", "FP16": "fp16", "BF16": "bf16", "FP32": "fp32", "TF32": "tf32",
              "FP32 (no tensor core)": "fp32", "FP8 e4m3": "fp8"}
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
SMS = {"A10": 72, "RTX-3090": 82}          # Marlin sizes its benchmark layer by the SM count


def _attention(r, p, notes):
    impl = ATTN_IMPL.get(r["implementation"])
    if impl is None:
        raise Unmapped(f"attention implementation '{r['implementation']}' has no impl name")
    if "pass" not in p or "seqlen" not in p or "head_dim" not in p:
        raise Unmapped("not one attention shape (best case over a sweep of lengths and head sizes)")
    seq, hd = int(p["seqlen"]), int(p["head_dim"])
    batch = None if "/" in p.get("batch", "") else lead_int(p.get("batch", ""))
    if "16k/seqlen" in p.get("batch", ""):
        batch = 16384 // seq
        notes.append(f"batch = 16384/seqlen = {batch} (FlashAttention benchmark setting)")
    heads = lead_int(p.get("heads", ""))
    if heads is None and p.get("hidden", "").startswith("2048"):
        heads = 2048 // hd
        notes.append(f"heads = hidden 2048 / head_dim = {heads} (FlashAttention benchmark setting)")
    causal = lead_bool(p.get("causal", ""))
    if causal is None:
        causal = False
        notes.append("causal not stated; non-causal assumed")
    if batch is None or heads is None:
        raise Unmapped("attention batch or heads not given")
    dtype = "bf16" if r["dtype"].startswith("BF16") and "FP16" not in r["dtype"] else "fp16"
    if "/" in r["dtype"]:
        notes.append(f"dtype '{r['dtype']}' taken as fp16 (same Tensor-Core peak as bf16)")
    pas = {"fwd": "fwd", "bwd": "bwd", "fwd+bwd": "fwd_bwd"}[p["pass"]]
    wl = {"kind": "attention", "batch": batch, "heads": heads, "kv_heads": heads, "seq_q": seq, "seq_kv": seq,
          "head_dim": hd, "causal": causal, "dtype": dtype, "pass": pas, "impl": impl}
    return "attention", wl, "tflops", float(r["value"]), None


def _decode_attention(r, p, notes):
    impl = DECODE_IMPL.get(r["implementation"])
    if impl is None:
        raise Unmapped(f"decode kernel '{r['implementation']}' has no impl name")
    kv = lead_int(p.get("kv_len per request", p.get("kv_len", "")))
    wl = {"kind": "attention", "batch": lead_int(p["batch"]), "heads": lead_int(p["heads"]),
          "kv_heads": lead_int(p["heads"]), "seq_q": 1, "seq_kv": kv, "head_dim": lead_int(p["head_dim"]),
          "causal": False, "dtype": "fp16", "pass": "fwd", "impl": impl}
    if "FP8 KV" in r["dtype"]:
        wl["kv_dtype"] = "fp8"
    if r["unit"] == "%":
        notes.append("memory-bandwidth utilisation = KV bytes read / latency / spec HBM bandwidth "
                     "(the blog's peak figure equals the spec)")
        return "decode_attention", wl, "hbm_utilization", float(r["value"]) / 100, None
    return "decode_attention", wl, "time_s", float(r["value"]) * TIME_UNITS[r["unit"]], None


def _gemm(r, p, notes):
    dtype = GEMM_DTYPE[r["dtype"]]
    if "best shape" in r["params"]:
        notes.append("shape is the best one of a brute-force shape search (maximum achievable matmul FLOPS)")
    wl = {"kind": "gemm", "m": int(p["m"]), "n": int(p["n"]), "k": int(p["k"]), "dtype": dtype}
    return "gemm", wl, "tflops", float(r["value"]), None


def _marlin_shape(dev, free, p, notes):
    """'weight 72k x 18k;batch=8' -> (m, n, k). Marlin's benchmark layer is k = 4*256*SMs, n = 256*SMs,
    which the figure titles round ('72k x 18k' on A10, '82k x 20k' on RTX 3090)."""
    if not any(f.startswith("weight ") for f in free):
        raise Unmapped("summed runtime over several layer GEMMs: no single gemm scenario")
    sms = SMS[dev]
    notes.append(f"shape: Marlin's benchmark layer k = 4*256*SMs = {1024 * sms}, n = 256*SMs = {256 * sms} "
                 f"({sms} SMs), m = batch")
    return lead_int(p["batch"]), 256 * sms, 1024 * sms


def _lowbit(r, p, free, notes, dev):
    impl = r["implementation"]
    if r["unit"] == "ms":       # Conch Triton W4A16 GEMM, a median kernel time
        notes.append("uint4b8 = 4-bit weights with bias 8; group size not stated, 128 assumed")
        wl = {"kind": "gemm", "m": int(p["m"]), "n": int(p["n"]), "k": int(p["k"]), "dtype": "fp16",
              "w_dtype": "int4", "group_size": 128}
        return "lowbit_gemm", wl, "time_s", float(r["value"]) * 1e-3, None
    if not impl.startswith(("Marlin", "Sparse-Marlin")):
        raise Unmapped(f"'{impl}' (a baseline curve of Marlin's figure): the gemm schema has no "
                       "implementation field; the figure's Marlin rows are mapped")
    m, n, k = _marlin_shape(dev, free, p, notes)
    wl = {"kind": "gemm", "m": m, "n": n, "k": k, "dtype": "fp16", "w_dtype": "int4", "group_size": 128}
    family = "lowbit_gemm"
    if impl.startswith("Sparse-Marlin"):
        wl.update(sparsity=0.5, sparsity_pattern="2:4")
        family = "sparse_gemm"
    base = {"kind": "gemm", "m": m, "n": n, "k": k, "dtype": "fp16"}
    notes.append("speedup = FP16 dense GEMM time (PyTorch/CUTLASS) / this kernel's time, same shape")
    return family, wl, "speedup", float(r["value"]), base


def _flashllm(r, p, free, notes):
    impl = r["implementation"]
    if r["unit"] != "TFLOP/s":
        raise Unmapped("average speedup over a set of shapes, not one scenario")
    if impl.startswith(("Sputnik", "SparTA")):
        raise Unmapped(f"kernel '{impl}' is another sparse library: the gemm schema has no implementation field")
    m = re.search(r"'(\d+)k/(\d+)k(?:/(\d+)%)?'", r["params"])
    n_rows, k_cols = int(m.group(1)) * 1024, int(m.group(2)) * 1024
    batch = lead_int(p["batch n"])
    wl = {"kind": "gemm", "m": batch, "n": n_rows, "k": k_cols, "dtype": "fp16"}
    notes.append(f"weight {m.group(1)}k x {m.group(2)}k = {n_rows} x {k_cols} (rows = n, columns = k), m = batch N")
    notes.append("TFLOP/s counted as dense 2*m*n*k (Flash-LLM's convention)")
    if m.group(3):
        wl.update(sparsity=int(m.group(3)) / 100, sparsity_pattern="unstructured")
        return "sparse_gemm", wl, "tflops", float(r["value"]), None
    return "gemm", wl, "tflops", float(r["value"]), None


def _memory(r, p, notes):
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


def _l2(r, p, notes):
    if r["category"] != "L2 bandwidth":
        raise Unmapped("L1 bandwidth: the memory workload has levels hbm and l2 only")
    notes.append("data set ~18-37 MB (fits L2); 24 MiB assumed; gpu-l2-cache launches 100000 blocks that each "
                 "read 256 KiB of the set (main.cu: N=32 doubles x 1024 threads), i.e. 1042 passes over 24 MiB "
                 "in one kernel")
    wl = {"kind": "memory", "op": "read", "bytes": 24 << 20, "level": "l2", "passes": 1042}
    return "l2", wl, "gbps", float(r["value"]), None


def _collective(r, p, notes, dev):
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


def _transfer(r, p, notes, dev):
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


def _storage(r, notes):
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


def map_kernel(r: dict):
    """One kernel_measurements row -> (family, scenario, baseline, metric, value, notes)."""
    cat = r["category"]
    p, free = parse_params(r["params"])
    notes: list[str] = []
    if cat == "memory latency":
        raise Unmapped("latency in clock cycles: no scenario metric (the model predicts bandwidths and times)")
    if cat == "NVMe I/O":
        return _storage(r, notes)
    if cat.startswith("weight-only GEMV"):
        raise Unmapped("vendor-stated expected speedup for a GPU family, not one measured shape")
    if cat.startswith("mixed-input GEMM (W6A16)"):
        raise Unmapped("mean over a set of layer shapes, or relative to another low-bit kernel "
                       "(no shape stated)")
    if cat.startswith("sparse GEMM (unstructured, 70-90%"):
        raise Unmapped("mean speedup over another sparse library across shapes")
    if r["hardware"] in ("A100",) and "transformer block" in r["params"]:
        raise Unmapped("summed runtime over several layer GEMMs: no single gemm scenario")
    if cat.startswith("collective") and "message_bytes" not in p:
        raise Unmapped("expected/asymptotic bus bandwidth without a message size")
    dev, hw_note = device(r["hardware"])
    if hw_note:
        notes.append(hw_note)
    extra: dict = {}
    if cat == "attention":
        out = _attention(r, p, notes)
    elif cat.startswith("decode attention"):
        out = _decode_attention(r, p, notes)
    elif cat == "GEMM":
        out = _gemm(r, p, notes)
    elif cat.startswith("mixed-input GEMM") or cat.startswith("sparse GEMM (2:4"):
        out = _lowbit(r, p, free, notes, dev)
    elif cat == "sparse GEMM (unstructured)":
        out = _flashllm(r, p, free, notes)
    elif cat.startswith("DRAM bandwidth"):
        out = _memory(r, p, notes)
    elif cat in ("L2 bandwidth", "L1 bandwidth"):
        out = _l2(r, p, notes)
    elif cat.startswith("collective"):
        *out, extra = _collective(r, p, notes, dev)
    elif cat.startswith("host-device transfer"):
        *out, extra = _transfer(r, p, notes, dev)
    else:
        raise Unmapped(f"category '{cat}' has no mapping")
    family, wl, metric, value, base = out
    if r["notes"]:
        notes.append(f"reference note: {r['notes']}")
    scen = {"hardware": dev, **extra, "workload": wl}
    bscen = {"hardware": dev, **extra, "workload": base} if base else None
    return family, scen, bscen, metric, value, notes


# ---- end-to-end rows ------------------------------------------------------------------------------

def _cluster(gpus: int, inter_gbps: float | None = None, intra: str = "nvlink") -> dict:
    c = {"gpus": gpus, "gpus_per_node": min(gpus, 8), "intra_node": intra}
    if inter_gbps is not None:
        c["inter_node_gbps"] = inter_gbps
    return c


def _gpt(layers: int, hidden: int, heads: int, vocab: int, seq_len: int) -> dict:
    """A Megatron GPT inline: MHA, 4h GeLU MLP, LayerNorm, biases, learned positions, tied output."""
    return {"layers": layers, "hidden": hidden, "heads": heads, "ffn": 4 * hidden, "vocab": vocab,
            "seq_len": seq_len, "norm": "layernorm", "bias": "all", "position_embedding": "learned",
            "tied_embeddings": True}


# Megatron-LM / Megatron-DeepSpeed before FlashAttention, at their argument defaults
# (megatron/arguments.py: --attention-dropout 0.1, --hidden-dropout 0.1, masked-softmax fusion on,
# fp16_lm_cross_entropy off): core attention with the fused scale-mask-softmax kernel, dropout 0.1,
# the vocab-parallel cross entropy on output.float().
MEGATRON_KERNELS = {"attn_impl": "megatron", "dropout": 0.1, "cross_entropy": "megatron"}
MEGATRON_KERNELS_NOTE = ("Megatron argument defaults: core attention (baddbmm, fused scale-mask-softmax, bmm; "
                         "attn_impl megatron), attention and hidden dropout 0.1, vocab-parallel cross entropy in "
                         "fp32 (cross_entropy megatron)")

MEGATRON_2021_ZOO = {"76B": "megatron-76b", "145B": "megatron-145b", "310B": "megatron-310b",
                     "530B": "megatron-530b", "1T": "megatron-1t"}


def _megatron_2021(r, notes):
    size = re.match(r"GPT (\w+) ", r["model"]).group(1)
    layers = int(re.search(r"(\d+) layers", r["model"]).group(1))
    mp = int(re.search(r"=(\d+);", r["parallelism"]).group(1))
    dp = int(re.search(r"DP=(\d+)", r["parallelism"]).group(1))
    tp, pp = 8, mp // 8
    per_stage = layers // pp
    v = min(d for d in range(2, per_stage + 1) if per_stage % d == 0)
    notes += [f"TP 8 x PP {pp} (the row gives TP x PP = {mp}; TP 8 per Narayanan et al. 2021 Table 1)",
              f"interleaved schedule with {v} virtual stages assumed (smallest split of the {per_stage} "
              "layers per stage); micro-batch size not in the row, 1 assumed",
              "full activation recomputation (counted in the row's TFLOP/s: hardware FLOPs)",
              "Megatron-LM 2021 reduced data-parallel gradients after the backward pass (no overlap)",
              "Selene: DGX A100 nodes, one 200 Gb/s HDR InfiniBand adapter per GPU; vocab 51200, seq 2048",
              MEGATRON_KERNELS_NOTE + " (the 2021 code predates FlashAttention)"]
    wl = {"kind": "training", "global_batch": int(r["global_batch"]), "micro_batch": 1,
          "seq_len": int(r["seq_len"]), "precision": "fp16",
          "parallel": {"tp": tp, "pp": pp, "dp": dp, "schedule": "interleaved", "virtual_stages": v,
                       "zero": 0, "overlap_grad_reduce": False},
          "recompute": "full", **MEGATRON_KERNELS}
    scen = {"hardware": "A100-SXM4-80GB", "host": "DGX-A100", "cluster": _cluster(int(r["num_gpus"]), 200),
            "model": MEGATRON_2021_ZOO[size], "workload": wl}
    return "training", scen, None, "hfu_tflops_per_gpu", float(r["value"])


def _megatron_core(r, notes):
    m = re.search(r"hidden (\d+), (\d+) layers, (\d+) heads", r["model"])
    hidden, layers, heads = (int(x) for x in m.groups())
    par = dict(re.findall(r"(TP|PP|DP)=(\d+)", r["parallelism"]))
    notes += ["model inline from the row: vocab 131072 (README); Megatron GPT block assumed (4h GeLU MLP, "
              "MHA, LayerNorm, biases, learned positions, tied output)",
              "precision bf16 assumed (README does not state it); micro-batch size not stated, 1 assumed",
              "recompute not stated, none assumed",
              "README: --overlap-grad-reduce --overlap-param-gather and --tp-comm-overlap; Megatron-LM's "
              "argument checks accept --overlap-param-gather only with --use-distributed-optimizer (zero 1) and "
              "--tp-comm-overlap only with --sequence-parallel (on when tp > 1)",
              "dropout and loss fusion not stated: Megatron-LM argument defaults (--attention-dropout and "
              "--hidden-dropout 0.1; --cross-entropy-loss-fusion off, so the vocab-parallel cross entropy runs "
              "on logits.float(): cross_entropy megatron); attention: Transformer Engine's fused kernel, taken "
              "as flash2",
              "gradients accumulated and reduce-scattered in fp32: megatron/training/arguments.py sets "
              "accumulate_allreduce_grads_in_fp32 for bf16 (grad_reduce_in_fp32)",
              "pipeline schedule not stated, 1F1B assumed; DGX H100: 400 Gb/s NDR per GPU",
              "metric: model FLOPs per GPU (MFU numerator), no recompute counted"]
    tp = int(par["TP"])
    wl = {"kind": "training", "global_batch": int(r["global_batch"]), "micro_batch": 1,
          "seq_len": int(r["seq_len"]), "precision": "bf16",
          "parallel": {"tp": tp, "pp": int(par["PP"]), "dp": int(par["DP"]), "schedule": "1f1b",
                       "zero": 1, "overlap_grad_reduce": True, "overlap_param_gather": True,
                       "tp_comm_overlap": True, "sequence_parallel": tp > 1, "grad_reduce_in_fp32": True},
          "recompute": "none", "dropout": 0.1, "cross_entropy": "megatron"}
    scen = {"hardware": "H100-SXM5-80GB", "host": "DGX-H100", "cluster": _cluster(int(r["num_gpus"]), 400),
            "model": _gpt(layers, hidden, heads, 131072, 4096), "workload": wl}
    return "training", scen, None, "tflops_per_gpu", float(r["value"])


# FlashAttention repo GPT-3 runs: batches from training/configs/experiment/pile/*.yaml
# (gpt3s-flash, gpt3l-flash, gpt3xl-flash) at 80 GB per GPU; dims are the zoo's GPT-3 entries.
FA_GPT = {"GPT3-125M": ((12, 768, 12), 32, 256, 0, "gpt3s-flash"),
          "GPT3-760M": ((24, 1536, 16), 16, 256, 1, "gpt3l-flash"),
          "GPT3-1.3B": ((24, 2048, 16), 8, 512, 1, "gpt3xl-flash")}
FA_VOCAB = 50264          # GPT-2's 50257 padded to pad_vocab_size_multiple: 8 (gpt3s-flash.yaml)
FA_VOCAB_FORMULA = 50257  # GPT-2's vocabulary in the README's FLOP count (50264 differs by 1e-4)


def fa_flops_per_token(layers: int, hidden: int, seq: int = 2048, vocab: int = FA_VOCAB_FORMULA) -> float:
    """Model FLOPs per token as the FlashAttention README counts them: the Megatron-LM paper's formula
    (Narayanan et al. 2021, section 5.1) for a step with recomputation, 96 B s l h^2 (1 + s/6h + V/16lh),
    scaled by 3/4 (training/README.md 'Training speed'); per token, B s = 1."""
    return 72.0 * layers * hidden ** 2 * (1 + seq / (6 * hidden) + vocab / (16 * layers * hidden))


def _fa_gpt(r, notes):
    (layers, hidden, heads), mb, gb, zero, cfg = FA_GPT[r["model"]]
    tok = float(r["value"]) * 1e12 * 8 / fa_flops_per_token(layers, hidden)
    notes += [f"config training/configs/experiment/pile/{cfg}.yaml of Dao-AILab/flash-attention: per-GPU batch "
              f"{mb} (80 GB GPUs), global batch {gb}, ZeRO stage {zero}, seq 2048, bf16",
              f"model: {layers} layers, hidden {hidden}, {heads} heads (the config's n_layer/n_embd/n_head); "
              f"vocab 50257 padded to {FA_VOCAB} (pad_vocab_size_multiple: 8)",
              "dropout 0.1: transformers.GPT2Config defaults (resid/embd/attn_pdrop 0.1), not overridden by the "
              "configs; FlashAttention drops inside its kernel, fused_dropout_add_ln the hidden states",
              f"metric: the row's TFLOP/s per GPU use the README's convention, Narayanan et al. 2021's "
              f"96 B s l h^2 (1 + s/6h + V/16lh) x 3/4, whose LM head is 3/4 of the model's 6 B s h V; compared "
              f"as tokens/s = value x 8 GPUs / (72 s l h^2 (1 + s/6h + V/16lh)) per sequence token "
              f"({tok / 1e3:.0f}k; the README's own table: 1310k, 245k, 169k tokens/s for 125M, 760M, 1.3B)",
              "FlashAttention (v1) kernels: the figure predates FlashAttention-2 (Dao 2023, Table 1 gives the same "
              "GPT3-1.3B 2k run as 189 TFLOP/s with FlashAttention and 196 with FlashAttention-2; its 'without "
              "FlashAttention' GPT3-2.7B 149 is this figure's Megatron-LM bar, E0034)",
              "fused kernels (fused dense, fused MLP, apex cross entropy), no activation checkpointing"]
    wl = {"kind": "training", "global_batch": gb, "micro_batch": mb, "seq_len": 2048, "precision": "bf16",
          "parallel": {"tp": 1, "pp": 1, "dp": 8, "zero": zero}, "recompute": "none", "dropout": 0.1,
          "attn_impl": "flash1"}
    scen = {"hardware": "A100-SXM4-80GB", "host": "DGX-A100", "cluster": _cluster(8),
            "model": _gpt(layers, hidden, heads, FA_VOCAB, 2048), "workload": wl}
    return "training", scen, None, "tokens_per_s", tok


GPTJ = {"layers": 28, "hidden": 4096, "heads": 16, "ffn": 16384, "vocab": 50400, "norm": "layernorm"}
LLAMA_68M = {"layers": 2, "hidden": 768, "heads": 12, "ffn": 3072, "vocab": 32000, "gated_mlp": True}

# reference model text -> zoo name (a note where the zoo entry is a same-dimension stand-in)
MODELS = {"OPT-30B": "opt-30b", "OPT-175B": "opt-175b", "BLOOM-176B": "bloom-176b", "OPT-6.7B": "opt-6.7b",
          "LLaMA(-2) 7B": "llama-2-7b", "LLaMA(-2) 70B": "llama-2-70b", "Llama-2-7B": "llama-2-7b",
          "Llama-2-70B": "llama-2-70b", "Llama-2-13B": "llama-2-13b", "LLaMA-v2-7B": "llama-2-7b",
          "Llama-3-8B": "llama-3-8b", "Llama-3.1-8B-Instruct-FP8": "llama-3.1-8b", "Llama-3.1-8B": "llama-3.1-8b",
          "Llama-3.3-70B-Instruct-FP8": "llama-3.1-70b", "Llama-3.1-405B-Instruct-FP8": "llama-3.1-405b",
          "Llama 3 8B": "llama-3-8b", "Llama 3 70B": "llama-3-70b", "Vicuna-7B-v1.3": "llama-7b",
          "Vicuna-33B-v1.3": "llama-33b", "Qwen1.5-72B": "qwen1.5-72b"}
MODEL_NOTES = {"Llama-3.3-70B-Instruct-FP8": "Llama-3.3-70B has the dimensions of llama-3.1-70b",
               "Vicuna-7B-v1.3": "Vicuna-7B is a LLaMA-7B fine-tune (llama-7b dims)",
               "Vicuna-33B-v1.3": "Vicuna-33B is a LLaMA-33B fine-tune (llama-33b dims)",
               "LLaMA(-2) 7B": "LLaMA(-2) 7B taken as llama-2-7b", "LLaMA(-2) 70B": "LLaMA(-2) 70B taken as llama-2-70b"}
# one-layer draft heads at the target's width (EAGLE; Medusa/Hydra approximated so)
DRAFT_HEAD = {"llama-7b": {"layers": 1, "hidden": 4096, "heads": 32, "ffn": 11008, "vocab": 32000, "gated_mlp": True},
              "llama-33b": {"layers": 1, "hidden": 6656, "heads": 52, "ffn": 17920, "vocab": 32000,
                            "gated_mlp": True}}


def _model(text: str, notes: list[str]):
    if text == "GPT-J 6B":
        notes.append("GPT-J 6B inline: 28 layers, hidden 4096, 16 heads, ffn 16384, vocab 50400, LayerNorm, "
                     "rotary positions")
        return GPTJ
    if text not in MODELS:
        raise Unmapped(f"model '{text}' has no zoo name or dimensions")
    if text in MODEL_NOTES:
        notes.append(MODEL_NOTES[text])
    return MODELS[text]


def _lens(text: str) -> tuple[int, int]:
    """'in 1024 / out 512', 'prompt 4 / gen 10', 'in 512 / out 32' -> (prompt, output) lengths."""
    a, b = re.findall(r"\d+", text)[:2]
    return int(a), int(b)


def _inference(dev, model, batch, prompt, gen, weights, kv, tp=1, host=None, **extra) -> dict:
    wl = {"kind": "inference", "batch": batch, "prompt_len": prompt, "gen_len": gen, "weights": weights,
          "kv_cache": kv, **extra}
    if tp > 1:
        wl["tp"] = tp
    scen = {"hardware": dev, "model": model, "workload": wl}
    if host:
        scen["host"] = host
    if tp > 1:
        scen["cluster"] = _cluster(tp)
    return scen


def _trtllm_static(r, notes):
    """TensorRT-LLM v0.6.1 peak-throughput tables (static batch): output tokens/s."""
    dev, hw_note = device(r["hardware"].split(" (")[0])
    tp = int(r["num_gpus"])
    prompt, gen = (int(x) for x in re.findall(r"\d+", r["seq_len"]))
    fp8 = r["precision"].startswith("FP8")
    dt = "fp8" if fp8 else "fp16"
    value = float(r["value"])
    if r["unit"] == "tokens/s/GPU":
        value *= tp
        notes.append(f"per-GPU output throughput x {tp} GPUs = total tokens/s")
    elif tp > 1:
        raise Unmapped("per-GPU vs total throughput not stated for the A100 table with TP > 1")
    if fp8:
        notes.append("FP8 weights, activations and KV cache")
    notes.append("TensorRT-LLM v0.6.1 generation attention is the masked-MHA plugin kernel, which reads the "
                 "KV cache once per query head; the GQA-aware XQA kernel came in v0.8 (TensorRT-LLM blog "
                 "XQA-kernel.md: 2.4x Llama-70B throughput at 128/2048): kv_head_sharing false")
    scen = _inference(dev, _model(r["model"], notes), int(r["global_batch"]), prompt, gen, dt, dt, tp,
                      kv_head_sharing=False)
    return "inference", scen, None, "tokens_per_s", value


def _ttft(r, notes):
    dev = device(r["hardware"].split(" (")[0])[0]
    tp = int(r["num_gpus"])
    prompt = int(re.search(r"ISL (\d+)", r["seq_len"]).group(1))
    dt = "fp8" if r["precision"].startswith("FP8") else "fp16"
    notes.append("first-token latency = prefill of the prompt at batch 1; gen_len 1")
    scen = _inference(dev, _model(r["model"], notes), 1, prompt, 1, dt, dt, tp)
    return "inference", scen, None, "ttft_s", float(r["value"]) * 1e-3


WEIGHTS = {"BF16 base": "bf16", "BF16 TP": "bf16", "int8 weight-only": "int8", "INT8 weight-only": "int8",
           "int4 weight-only G=32": "int4", "INT4 weight-only g64 (tinygemm)": "int4",
           "INT4 g64 + 2:4 sparsity (Sparse-Marlin)": "int4", "FP16": "fp16"}


def _decode_batch1(r, notes, prompt: int, gen: int, why: str):
    """Batch-1 decode throughput (tokens/s) stored as time per output token = 1/value."""
    dev, hw_note = device(HW_E2E[r["hardware"]])
    if hw_note:
        notes.append(hw_note)
    tp = int(r["num_gpus"])
    w = WEIGHTS[r["precision"]]
    kv = "bf16" if w != "fp16" else "fp16"
    extra = {}
    if w == "int8" and "weight-only" in r["precision"]:
        extra["act_dtype"] = "bf16"
        notes.append(f"'{r['precision']}': int8 weights dequantised into bf16 GEMMs (act_dtype bf16; "
                     "weights 'int8' alone would mean W8A8)")
    if "2:4" in r["precision"]:
        extra.update(sparsity=0.5, sparsity_pattern="2:4")
        notes.append("2:4 sparse INT4 weights (Sparse-Marlin): sparsity 0.5, sparsity_pattern 2:4")
    m = re.search(r"\b[gG]=?(\d+)\b", r["precision"])
    if w == "int4" and m:
        extra["group_size"] = int(m.group(1))
        notes.append(f"weight group size {m.group(1)} as the precision column states")
    notes.append(f"batch-1 decode throughput stored as time per output token = 1/value; {why}")
    scen = _inference(dev, _model(r["model"], notes), 1, prompt, gen, w, kv, tp, **extra)
    return "inference", scen, None, "tpot_s", 1.0 / float(r["value"])


HW_E2E = {"A100-SXM4-80GB (330 W power cap)": "A100-SXM4-80GB", "A100-80GB (single A100)": "A100-80GB",
          "A100-80GB": "A100-80GB", "A100-SXM4-80GB": "A100-SXM4-80GB", "H100-80GB": "H100",
          "H100-SXM5-80GB": "H100-SXM5-80GB", "A100-SXM4-80GB (A100 80G)": "A100-SXM4-80GB",
          "L40S-48GB": "L40S-48GB", "H100-80GB (4x)": "H100", "A100-80GB (4x)": "A100-80GB",
          "RTX 3090 (24GB)": "RTX 3090 (24GB GDDR6X)",
          "H100 (single GPU; blog: all Hopper experiments on a single H100)": "H100"}


def _qserve(r, notes):
    dev = device(HW_E2E[r["hardware"]])[0]
    prompt, gen = _lens(r["seq_len"])
    notes += ["QServe W4A8KV4: 4-bit weights into INT8 Tensor Cores (weights w4a8), 8-bit activations, 4-bit KV",
              "max-throughput batch from QServe's table; generation throughput = output tokens/s"]
    extra = {}
    g = re.search(r"per-group g(\d+)", r["precision"])
    if g:
        extra["group_size"] = int(g.group(1))
        notes.append(f"per-group weight scales, group {g.group(1)} (precision column)")
    elif "per-channel" in r["precision"]:
        extra["group_size"] = "channel"
        notes.append("per-channel weight scales (precision column)")
    scen = _inference(dev, _model(r["model"], notes), int(r["global_batch"]), prompt, gen, "w4a8", "int4", **extra)
    return "inference", scen, None, "tokens_per_s", float(r["value"])


def _fp8_speedup(r, notes):
    dev, note = device(HW_E2E[r["hardware"]])
    notes += [note, "FP8 W8A8 weights and activations; KV cache fp16 assumed", "speedup = FP16 time / FP8 time"]
    prompt, gen = (int(x) for x in re.findall(r"\d+", r["seq_len"]))
    b = int(r["global_batch"])
    model = _model(r["model"], notes)
    scen = _inference(dev, model, b, prompt, gen, "fp8", "fp16")
    base = _inference(dev, model, b, prompt, gen, "fp16", "fp16")
    return "inference", scen, base, "speedup", float(r["value"])


def _spec_bench(r, notes):
    dev, note = device(HW_E2E[r["hardware"]])
    if note:
        notes.append(note)
    method = r["framework"].split(": ", 1)[1]
    acc = float(re.search(r"mean accepted tokens per step ([\d.]+)", r["notes"]).group(1))
    model = _model(r["model"], notes)
    if method.startswith("SpS"):
        draft, k = LLAMA_68M, 5
        notes.append("SpS draft: LLaMA-68M (2 layers, hidden 768); k = 5 drafted tokens assumed")
    elif method.startswith(("EAGLE", "Hydra", "Medusa")):
        draft, k = DRAFT_HEAD[model], 5
        notes.append(f"{method} draft head taken as one decoder layer at the target's width "
                     "(Medusa/Hydra heads approximated so); tree drafting taken as a chain of k = 5")
    else:
        raise Unmapped(f"{method} drafts without a draft model (prompt lookup / Jacobi lookahead)")
    notes += ["mean accepted tokens per step as Spec-Bench prints it (tokens per target forward)",
              "prompt and output lengths not in the row: 256 / 512 assumed (the ratio barely depends on them)",
              "speedup = autoregressive time / speculative time, batch 1, greedy",
              "Spec-Bench runs each method's Hugging Face / PyTorch code eagerly (leaderboard: PyTorch 2.5.1), "
              "baseline included: no CUDA graphs (cuda_graphs false)"]
    spec = {"draft_model": draft, "k": k, "mean_accepted": acc}
    scen = _inference(dev, model, 1, 256, 512, "fp16", "fp16", speculative=spec, cuda_graphs=False)
    base = _inference(dev, model, 1, 256, 512, "fp16", "fp16", cuda_graphs=False)
    return "speculative", scen, base, "speedup", float(r["value"])


def _vllm_perf(r, notes):
    dev, note = device(HW_E2E[r["hardware"]])
    if note:
        notes.append(note)
    m = re.search(r"in (\d+) / out (\d+)", r["seq_len"]) or re.search(r"~(\d+) in / (\d+) out", r["seq_len"])
    prompt, gen = int(m.group(1)), int(m.group(2))
    tp = int(r["num_gpus"])
    notes += [f"{r['framework']}: 500 requests sent at once (arrival rate 1e6/s stands for 'QPS inf')",
              "scheduler limit 256 sequences in flight assumed (vLLM's default max_num_seqs)",
              f"request throughput x mean output {gen} tokens = output tokens/s",
              "dtype not stated: bf16 weights and KV assumed"]
    arrival = {"rate_per_s": 1e6, "requests": 500}
    if "ShareGPT" in r["seq_len"]:
        arrival["length_dist"] = "exponential"
        notes.append("ShareGPT prompts keep each conversation's own lengths (widely spread, long-tailed; the "
                     "source gives only the means): exponential lengths around the means assumed (CV 1)")
    else:
        notes.append("sonnet synthetic prompts: fixed input and output lengths")
    fw = r["framework"]
    if fw.startswith(("vLLM v0.6", "SGLang")):
        arrival["scheduler"] = "prefill_first"
        notes.append(f"{fw} schedules waiting prefills in their own steps, not mixed with decodes (vLLM v0 "
                     "scheduler, chunked prefill off below 32K context; SGLang's default, mixed chunks off): "
                     "scheduler prefill_first")
    else:
        arrival["scheduler"] = "chunked"
        notes.append(f"{fw} in-flight batching runs new contexts in the same iterations as decodes: "
                     "scheduler chunked (mixed steps)")
    scen = _inference(dev, _model(r["model"], notes), 256, prompt, gen, "bf16", "bf16", tp, arrival=arrival)
    return "serving", scen, None, "tokens_per_s", float(r["value"]) * gen


def _zero_inference(r, notes):
    tier = "nvme" if "NVMe" in r["framework"] else "cpu"
    notes += ["V100-32GB of a DGX-2 assumed (SXM; the blog names no machine); host DGX-2",
              f"all weights offloaded to {tier} and streamed per layer; prompt 4, generate 10 tokens"]
    if "prefetch" in r["framework"]:
        notes.append("layer prefetch on")
    elif r["id"] == "E0041":
        notes.append("Table 2 runs without layer prefetch (its NVMe figure equals Table 3's no-prefetch figure)")
    scen = _inference("V100-SXM2-32GB", _model(r["model"], notes), int(r["global_batch"]), 4, 10, "fp16", "fp16",
                      host="DGX-2", offload={"weights": tier, "kv_cache": "none"})
    return "offload", scen, None, "tokens_per_s", float(r["value"])


def _deepnvme_inference(r, notes):
    """DeepNVMe blog, Figure 3: Llama-3-70B on one A100 with every weight streamed from the RAID0 of 4 NVMe."""
    prompt, gen = _lens(r["seq_len"])
    notes += ["host NC96ads-A100-v4 (4 local NVMe disks in RAID0, 13 GB/s read); A100 80GB PCIe",
              f"all fp16 weights offloaded to NVMe and streamed per layer; KV cache assumed on the GPU (it fits); "
              f"prompt {prompt}, generate {gen} tokens",
              "DeepNVMe with GDS: NVMe reads go straight to the GPU (offload gds: true)"]
    scen = _inference("A100-PCIe-80GB", "llama-3-70b", int(r["global_batch"]), prompt, gen, "fp16", "fp16",
                      host="NC96ads-A100-v4", offload={"weights": "nvme", "kv_cache": "none", "gds": True})
    return "offload", scen, None, "tokens_per_s", float(r["value"])


def _flexgen(r, notes):
    tier = re.search(r"lowest offload tier: (\w+)", r["parallelism"]).group(1)
    w = kv = "int4" if r["precision"].startswith("4-bit") else "fp16"
    prompt, gen = _lens(r["seq_len"])
    flexgen = r["framework"].startswith("FlexLLMGen")
    extra_mb = 1
    notes += [f"{r['framework']}; effective batch {r['global_batch']} from FlexGen's batch-size table",
              "generation throughput = generated tokens / (prefill + decode time)"]
    offload = None
    if tier == "CPU":
        offload = {"weights": "cpu", "kv_cache": "none"}
        notes += ["lowest tier CPU: weights offloaded to host DRAM",
                  "GCP host (208 GB DRAM, 1.5 TB SSD) is not in the host zoo: the T4's default host stands in "
                  "(the T4's own PCIe Gen3 x16 link bounds the streaming)"]
        if flexgen and w == "int4":
            offload["kv_cache"] = "cpu"
            notes.append("FlexGen's benchmark/flexgen/bench_suite.py (suite_175b_1x1_comp, prompt 512: "
                         "--percent 0 100 0 100 0 100, GPU batch 48 x 3, no --cpu): compressed KV cache in "
                         "host DRAM too, fetched to the GPU each step; attention on the GPU; 3 GPU batches "
                         "share each layer's weight fetch but decompress and compute one after another "
                         "(micro_batches 3)")
            extra_mb = 3

    elif tier != "GPU":
        raise Unmapped("mixed CPU/disk placement on a GCP host not in the host zoo: the stand-in host's "
                       "NVMe figures would decide the result")
    extra = {"offload": offload} if offload else {}
    if extra_mb > 1:
        extra["micro_batches"] = extra_mb
    if flexgen:
        extra["attn_impl"] = "naive"
        notes.append("FlexGen computes attention with torch.bmm + softmax (pytorch_backend.py "
                     "_attention_value): attn_impl naive")
    if w == "int4":
        extra.update(group_size=64, kv_group_size=64, dequant="torch")
        notes.append("4-bit group-wise compression of weights and KV cache, group 64 (FlexGen flex_opt.py "
                     "CompressionConfig(num_bits=4, group_size=64)); decompressed before every use by "
                     "PyTorch ops (compression.py decompress: nibble unpack, div_ scale, add_ min) into a "
                     "16-bit copy: dequant torch")
    scen = _inference("T4", _model(r["model"], notes), int(r["global_batch"]), prompt, gen, w, kv, **extra)
    return ("offload" if offload else "inference"), scen, None, "tokens_per_s", float(r["value"])


E2E_UNMAPPED = {
    "E0020": "strong-scaling MFU: parallel layout only in a figure, not in the row",
    "E0022": "HuggingFace baseline: framework inefficiency is not a training-schema field",
    "E0026": "Megatron-LM (no FlashAttention) baseline: its version, micro-batch, layout and recompute are not stated",
    "E0028": "HuggingFace baseline: framework inefficiency is not a training-schema field",
    "E0034": "Megatron-LM (no FlashAttention) baseline: its version, micro-batch, layout and recompute are not stated",
    "E0037": "12B of 30B parameters pinned on the GPU: partial weight offload is not expressible",
    "E0039": "10B of 30B parameters pinned on the GPU: partial weight offload is not expressible",
    "E0040": "10B of 30B parameters pinned on the GPU: partial weight offload is not expressible",
    "E0042": "same configuration as E0044 without layer prefetch (no prefetch switch in the schema)",
    "E0057": "model dimensions, batch and sequence length not given",
    "E0059": "model dimensions, batch and sequence length not given",
    "E0060": "model dimensions, batch and sequence length not given",
    "E0061": "model dimensions, batch and sequence length not given",
    "E0062": "model dimensions, batch and sequence length not given",
    "E0064": "model dimensions, batch and sequence length not given",
    "E0065": "model dimensions, batch and sequence length not given",
    "E0066": "aggregate PFLOP/s of an unspecified 100B+ model and layout",
    "E0068": "effective throughput under a latency SLA: not a predicted metric",
    "E0070": "effective throughput of 16 load-balanced replicas under an SLA: not a predicted metric",
    "E0072": "request lengths 'various': no scenario",
    "E0154": "3D layout and FLOP-counting convention not in the row (secondary quote)",
    "E0155": "parallel layout, batch and sequence length not in the row",
    "E0157": "TPU v4, not a GPU",
    "E0158": "TPU v4, not a GPU (and recalled)",
    "E0159": "181B model dimensions not in the row",
    "E0161": "model not specified ('best case')",
    "E1024": "Marlin vs exllamav2 inside TGI: the kernel implementation is not an inference-schema field",
    "E1025": "Marlin vs exllamav2 inside TGI: the kernel implementation is not an inference-schema field",
    "E1034": "vision model (SAM), not a transformer LM in the zoo",
    "E1043": "GPU not stated",
    "E1045": "GPU not stated",
    "E1065": "hierarchical speculation with a retrieval KV draft and offloading: acceptance not stated",
    "E1066": "hierarchical speculation with a retrieval KV draft and offloading: acceptance not stated",
    "E1068": "hierarchical speculation with a retrieval KV draft and offloading: acceptance not stated",
    "E1069": "hierarchical speculation with a retrieval KV draft and offloading: acceptance not stated",
    "E1075": "speculative acceptance not stated",
    "E1076": "speculative acceptance not stated",
    "E1093": "HuggingFace baseline; ShareGPT lengths not in the row",
    "E1095": "ShareGPT request lengths not in the row",
    "E1096": "maximum over five datasets whose lengths are not given",
    "E1097": "maximum over five datasets whose lengths are not given",
    "E1098": "maximum over five datasets whose lengths are not given",
    "E1099": "'up to' ratio between two serving systems",
    "E1100": "'up to' ratio between two serving systems",
    "E1102": "'up to' capacity gain under an SLO",
    "E1103": "'up to' capacity gain under an SLO",
    "E1104": "'up to' goodput gain, GPU not stated",
    "E1107": "mixed CPU/disk placement on a GCP host not in the host zoo",
    "E1111": "HuggingFace Accelerate baseline: offload schedule inefficiency is not a schema field",
    "E1112": "HuggingFace Accelerate baseline: offload schedule inefficiency is not a schema field",
    "E1115": "Petals: inference over a network of peers",
    "E1116": "GPU count not given",
    "E1118": "GPU count not given",
    "E1120": "GPU count not given",
    "E1126": "tuned partial optimizer offload ratio (Twin-Flow) is not expressible",
    "E1127": "tuned partial optimizer offload ratio (Twin-Flow) is not expressible",
    "E1128": "batch, sequence length and host not given",
    "E1129": "batch, sequence length and host not given",
    "E1130": "batch and sequence length not given",
    "E1131": "batch and sequence length not given",
    "E1133": "'up to' speedup, model and GPU not given",
    "E1134": "MFU over a range of models and lengths, not one configuration",
}


def map_e2e(r: dict):
    """One end_to_end row -> (family, scenario, baseline, metric, value, notes)."""
    rid, fw, notes = r["id"], r["framework"], []
    if rid in E2E_UNMAPPED:
        raise Unmapped(E2E_UNMAPPED[rid])
    if fw.startswith("Megatron-LM (PTD-P"):
        out = _megatron_2021(r, notes)
    elif fw.startswith("Megatron-Core"):
        out = _megatron_core(r, notes)
    elif fw.startswith("FlashAttention repo"):
        out = _fa_gpt(r, notes)
    elif fw.startswith("ZeRO-Inference + DeepNVMe"):
        out = _deepnvme_inference(r, notes)
    elif fw.startswith("ZeRO-Inference (full") and r["num_gpus"] == "4":
        raise Unmapped("layer fetch partitioned over 4 GPUs then all-gathered: not expressible")
    elif fw.startswith("ZeRO-Inference"):
        out = _zero_inference(r, notes)
    elif fw.startswith("TensorRT-LLM v0.6.1"):
        out = _trtllm_static(r, notes)
    elif fw.startswith("TensorRT-LLM v0.5") and "first-token" in r["metric"]:
        out = _ttft(r, notes)
    elif fw.startswith("TensorRT-LLM v0.5") and r["metric"].startswith("decode throughput"):
        out = _decode_batch1(r, notes, 128, 128, "ISL/OSL 128/128")
    elif fw.startswith("TensorRT-LLM (PyTorch backend"):
        raise Unmapped("batch size chosen by the scheduler and not stated")
    elif fw.startswith("gpt-fast"):
        out = _decode_batch1(r, notes, 5, 200, "prompt 5 tokens; 200 new tokens assumed (gpt-fast default)")
        notes.append("GPUs power-capped at 330 W (README: ~1700 GB/s empirical peak); the cap is not modelled")
    elif fw.startswith("torchao"):
        out = _decode_batch1(r, notes, 5, 200, "prompt and output lengths not stated: 5 / 200 assumed "
                                               "(gpt-fast-style generate)")
    elif fw == "TensorRT-LLM" and r["task"].startswith("inference (offline max throughput, in-flight"):
        raise Unmapped("TensorRT-LLM baseline batch size not listed")
    elif fw == "QServe":
        out = _qserve(r, notes)
    elif fw == "TensorRT-LLM" and r["metric"] == "speedup vs FP16":
        out = _fp8_speedup(r, notes)
    elif fw.startswith(("Flash-LLM", "DeepSpeed inference", "FasterTransformer")):
        raise Unmapped("prompt/output lengths (and the pruned model's sparsity) not stated")
    elif fw.startswith("vLLM v0.19"):
        dev, note = device(HW_E2E[r["hardware"]])
        notes += [note, "150 requests at concurrency 8 taken as a steady batch of 8; ~20k in / ~2k out",
                  "BF16 weights and KV cache"]
        scen = _inference(dev, _model(r["model"], notes), 8, 20000, 2000, "bf16", "bf16")
        out = ("inference", scen, None, "tokens_per_s", float(r["value"]))
    elif fw.startswith("Spec-Bench harness"):
        out = _spec_bench(r, notes)
    elif fw.startswith("Lookahead decoding"):
        raise Unmapped("Jacobi lookahead decoding has no draft model: not expressible")
    elif r["source"].startswith("vllm-project/vllm-project.github.io _posts/2024-09-05"):
        out = _vllm_perf(r, notes)
    elif r["source"].startswith("FMInference/FlexLLMGen"):
        out = _flexgen(r, notes)
    else:
        raise Unmapped(f"no mapping for framework '{fw}'")
    family, scen, base, metric, value = out
    if r["notes"]:
        notes.append(f"reference note: {r['notes']}")
    return family, scen, base, metric, value, [n for n in notes if n]


# ---- vTrain rows -----------------------------------------------------------------------------------

VTRAIN_NOTES = ("vTrain single-node ground truth (Megatron-DeepSpeed, one node of 8 A100 with NVLink); "
                "A100 memory size not stated, A100-SXM4-80GB assumed; Megatron GPT with vocab 50257, 4h MLP, "
                "learned positions, tied output; fp16 mixed precision; activation checkpointing on (full recompute); 1F1B; "
                "gradient all-reduce not overlapped with backward (bucketing off); " + MEGATRON_KERNELS_NOTE +
                " (vTrain's model code src/model/gpt_modeling.py: baddbmm, FusedScaleMaskSoftmax, dropout 0.1; no "
                "FlashAttention in its configs); vocabulary unpadded, split vocab_size // tp per rank as vTrain's "
                "ShardedGptEmbeddings/ShardedGptLogit do (50257, 25128, 12564, 6282 rows), so the model's vocab is "
                "tp * (50257 // tp); Megatron's 128*tp padding would align every split, while the measured "
                "per-sequence LM-head cost is low only at tp 2, the one split that is a multiple of 8")


def map_vtrain(r: dict, n: int):
    gpus, gb, mb, hidden, heads, layers, seq, tp, dp, pp = (int(r[c]) for c in VTRAIN_COLS)
    wl = {"kind": "training", "global_batch": gb, "micro_batch": mb, "seq_len": seq, "precision": "fp16",
          "parallel": {"tp": tp, "pp": pp, "dp": dp, "schedule": "1f1b", "zero": 0, "overlap_grad_reduce": False},
          "recompute": "full", **MEGATRON_KERNELS}
    scen = {"hardware": "A100-SXM4-80GB", "host": "DGX-A100", "cluster": _cluster(gpus),
            "model": _gpt(layers, hidden, heads, tp * (VTRAIN_VOCAB // tp), seq),
            "workload": wl}
    return f"V{n:04d}", "training_single_node", scen, "iteration_time_s", float(r["iteration time (ms)"]) * 1e-3


VTRAIN_VOCAB = 50257
VTRAIN_COLS = ("# GPUs", "global batch", "micro batch", "hidden size", "attention heads", "# layers",
               "sequence length", "tensor parallelism", "data parallelism", "pipeline parallelism")


# ---- build -------------------------------------------------------------------------------------------

def _read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _row(r: dict, family, scen, base, metric, value, notes) -> dict:
    return {"id": r["id"], "family": family, "hardware": scen["hardware"], "scenario": sj(scen),
            "baseline_scenario": sj(base) if base else "", "metric": metric, "value": fmt(value),
            "unit": METRIC_UNITS[metric], "source": r["source"], "source_locator": r["source_locator"],
            "confidence": r["confidence"], "notes": "; ".join(notes), "fingerprint": ""}


def build(ref: Path) -> tuple[dict[str, list[dict]], list[tuple[str, str, str]]]:
    """-> ({csv name: rows}, [(file, id, reason)] unmapped)."""
    out: dict[str, list[dict]] = {"kernels": [], "end_to_end": [], "vtrain": []}
    unmapped = []
    for name, fname, fn in (("kernels", "kernel_measurements.csv", map_kernel),
                            ("end_to_end", "end_to_end.csv", map_e2e)):
        for r in _read(ref / fname):
            try:
                out[name].append(_row(r, *fn(r)))
            except Unmapped as e:
                unmapped.append((fname, r["id"], str(e)))
    vsrc = ("vTrain ground truth (VIA-Research/vTrain data/ground_truth_single.csv; Bang et al. 'vTrain', "
            "MICRO 2024), MIT license")
    for n, r in enumerate(_read(ref / "vtrain_single_node.csv"), start=1):
        rid, family, scen, metric, value = map_vtrain(r, n)
        row = {"id": rid, "source": vsrc, "source_locator": f"vtrain_single_node.csv data row {n}",
               "confidence": "read"}
        out["vtrain"].append(_row(row, family, scen, None, metric, value, [VTRAIN_NOTES]))
    for rows in out.values():
        rows.sort(key=lambda x: x["id"])
        for r in rows:            # fail the build, not the user, on a schema slip
            check_row(r, f"build_published: {r['id']}", measured=False)
    return out, unmapped


def render_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def render_unmapped(unmapped: list[tuple[str, str, str]]) -> str:
    lines = ["# Reference rows not in the validation set", "",
             "Rows of shared/reference that `analysis/build_published.py` cannot express as a scenario, one",
             "line each with the reason. They stay out of `gpusim validate`; adding the missing schema field,",
             "zoo entry or detail from the source would bring a row in.", "",
             f"{len(unmapped)} rows.", ""]
    for fname, rid, reason in sorted(unmapped):
        lines.append(f"- {rid} ({fname}): {reason}")
    return "\n".join(lines) + "\n"


def write(ref: Path, out_dir: Path) -> dict[str, int]:
    tables, unmapped = build(ref)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        (out_dir / f"{name}.csv").write_text(render_csv(rows))
    (out_dir / "UNMAPPED.md").write_text(render_unmapped(unmapped))
    return {**{k: len(v) for k, v in tables.items()}, "unmapped": len(unmapped)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ref = Path(argv[0]) if argv else reference_dir()
    out = Path(argv[1]) if len(argv) > 1 else PUBLISHED
    counts = write(ref, out)
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
