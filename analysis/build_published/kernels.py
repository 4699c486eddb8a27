"""Kernel rows (kernel_measurements.csv) -> kernel scenarios: ``map_kernel`` sorts a row by its
category; the compute kernels (dense attention, decode attention, GEMM, low-bit and sparse GEMMs)
are mapped here, the data-movement ones (memory, L2, collectives, host transfers, NVMe) in
``data_movement``. Rows whose category has no single-shape scenario are refused with the reason.
"""
from __future__ import annotations

import re

from .common import Unmapped, device, lead_bool, lead_int, parse_params
from .data_movement import collective, l2, memory, storage, transfer

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


def map_kernel(r: dict):
    """One kernel_measurements row -> (family, scenario, baseline, metric, value, notes)."""
    cat = r["category"]
    p, free = parse_params(r["params"])
    notes: list[str] = []
    if cat == "memory latency":
        raise Unmapped("latency in clock cycles: no scenario metric (the model predicts bandwidths and times)")
    if cat == "NVMe I/O":
        return storage(r, notes)
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
        out = memory(r, p, notes)
    elif cat in ("L2 bandwidth", "L1 bandwidth"):
        out = l2(r, p, notes)
    elif cat.startswith("collective"):
        *out, extra = collective(r, p, notes, dev)
    elif cat.startswith("host-device transfer"):
        *out, extra = transfer(r, p, notes, dev)
    else:
        raise Unmapped(f"category '{cat}' has no mapping")
    family, wl, metric, value, base = out
    if r["notes"]:
        notes.append(f"reference note: {r['notes']}")
    scen = {"hardware": dev, **extra, "workload": wl}
    bscen = {"hardware": dev, **extra, "workload": base} if base else None
    return family, scen, bscen, metric, value, notes
