"""GEMM cost: C[m,n] = A[m,k] @ B[k,n], ``batch`` times, as a tiled Tensor Core kernel runs it.

The model follows what a heuristic library (cuBLAS, CUTLASS) does: it tries a small set of CTA
tiles (and split-K for small m*n with a long k), predicts each one's time, and keeps the fastest.
For one tile choice:

* Tile and wave quantization: tiles = ceil(m/Tm) * ceil(n/Tn) * splits * batch. The busiest SM
  runs ceil(tiles/sms) tiles, each doing the full Tm x Tn x k/splits of MMA work whether the
  edge tile is full or not; wave efficiency = useful FLOPs / padded FLOPs. Each wave of
  co-resident CTAs (sms x ctas_per_sm) also pays a fixed per-tile prologue/epilogue cost
  (``tile_overhead_s``). Achieved TC rate = peak(dtype) x ``tc_peak_fraction``.
* Memory: CTAs read their A row-panel and B column-panel; summed over tiles that is
  A x ceil(n/Tn) + B x ceil(m/Tm) (the L2 traffic; on Hopper and later, thread-block clusters
  multicast one operand's panel to ``gemm_cluster_multicast`` CTAs per L2 read). CTAs running at the same time (one wave,
  rasterised as a near-square block of wr x wc tiles) share panels through L2, so HBM sees
  A x ceil(n/Tn)/wc + B x ceil(m/Tm)/wr, never less than the compulsory A + B + C once.
  HBM time = latency + bytes / min(achievable bandwidth, bytes in flight / latency) (Little's law:
  a skinny GEMM with few CTAs cannot cover the memory latency).
* Weight-only low bit (``w_dtype``): B bytes = k*n*bits/8 + one scale per ``group_size``
  weights (fp16; fp32 absmax for nf4). Each CTA dequantises its B tile on CUDA cores
  (``dequant_ops_per_weight`` ops per weight, ceil(m/Tm) times in all); the MMA runs at the
  activation dtype's rate. ``simt_overlap`` of that time hides under the TC/HBM time.
* Unstructured sparsity (Flash-LLM load-as-sparse, compute-as-dense): B bytes = nnz x (value +
  ``sparse_index_bytes``), Tensor Core work stays dense. Priced with Flash-LLM's own kernel, not the
  tile search (csrc/SpMM_Kernel.cuh, TilingConfig.h, SpMM_API.cu): the CTA tile is fixed by the token
  count (256 weight rows x 16/32 tokens up to 32 tokens, 128 x 64/128 above), Tk = 64, two shared-memory
  buffers of dense tiles (so 2 CTAs per A100 SM), split-K chosen as the fastest (the authors hand-tune
  it per shape) with fp16 partials summed by a second kernel launch. Each iteration a CTA issues the
  zero-fill of its dense tile (cp.async zfill) and the compressed tile's loads into registers, runs
  the MMAs of the previous tile, then waits for the loads and scatters the nonzeros
  (``sparse_extract_ops_per_nnz`` ops each). So one tile per CTA is in flight and the zero-fill and
  extraction are serial to it: an SM's CTAs form a closed loop over its shared-memory pipe, its
  share of the HBM bandwidth and the DRAM latency, solved by exact mean-value analysis; the
  iteration is never shorter than any SM unit (Tensor Cores, shared-memory pipe, ALUs) serving
  all its CTAs. At high sparsity the fixed per-tile work and exposed latency, not the bytes, bound it.
  2:4 structured: TC peak x2 (where the device has sparse Tensor Cores), B bytes = half the values
  + 2 bits of metadata per kept value.
* Split-K (s > 1): each split writes an fp32 partial C; after the main loops the partials are
  read back and summed into C (CUTLASS serial split-K, Marlin's global reduction, stream-K
  fixup), so that read adds serially to the kernel.
* Alignment: Tensor-Core kernels load their operands with 16-byte vector accesses (LDG.128 /
  16-byte cp.async), which needs every leading dimension to be a multiple of 16 bytes (8 fp16
  elements). The modelled layouts are a framework's: activations [tokens, features] and weights
  [out, in] row-major, so the contiguous dimensions are n and k (m, the token count, is the
  strided row count of A and C; a weight-gradient GEMM keeps its feature dims in m and n and its
  token dim in k). When n or k is not a multiple of 16 bytes (an unpadded vocabulary such as
  GPT-2's 50257), cuBLAS (11.0 and later) still runs Tensor Cores but with kernels of narrower
  loads (NVIDIA, 'Matrix Multiplication Background': "Tensor Cores may be used regardless, but
  efficiency is better when matrix dimensions are multiples of 16 bytes"): the GEMM is priced as
  the padded shape whose Tensor-Core rate is ``gemm_misaligned_tc_fraction`` of the aligned one,
  so it is never faster than the padded GEMM and the penalty vanishes when aligned.
* Fixed cost: one kernel launch (``launch_overhead_s``).

The reported FLOPs are 2*m*n*k*batch (dense-equivalent, also for sparse weights).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from sim.cost import OpCost, pricer
from sim.cost.common import (ASYNC_MMA_ARCHS, alu_ops_per_s, ceil_div, compose, device_of, hbm_time, l2_time, smem_Bps,
                             tc_peak)
from sim.cost.efficiency import eff, param
from sim.errors import InputError
from sim.hardware.spec import DeviceSpec
from sim.ops import DTYPE_BYTES, Gemm

# CTA tiles (Tm, Tn) of the modelled library: the CUTLASS/cuBLAS Ampere-Hopper families, plus
# skinny tiles of the kind mixed-input GEMV-like kernels use (Marlin: 16 x 256).
TILES = ((256, 128), (128, 256), (128, 128), (128, 64), (64, 128), (64, 64), (32, 128), (16, 256), (16, 128))
SPLITS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
SUB_16BIT_OUTPUT = 2          # fp8/int8 GEMMs write a 16-bit C (cuBLASLt FP8 default output is bf16)

ALIGN_BYTES = 16               # vector width of the fast Tensor-Core load path (LDG.128 / cp.async 16 B)

param("gemm_misaligned_tc_fraction", 0.5,
      "fraction of the aligned Tensor-Core rate a GEMM reaches when a contiguous dimension (n or k) is not "
      "a multiple of 16 bytes: the library falls back to kernels with narrower global loads",
      "NVIDIA Deep Learning Performance Guide, 'Matrix Multiplication Background' (Tensor Core "
      "Requirements: from cuBLAS 11.0 Tensor Cores are used regardless of alignment, with lower efficiency) "
      "and 'Optimizing Linear/Fully-Connected Layers' (padding a 33708-word vocabulary to 33712 and batch "
      "4095 to 4096 speeds the GEMMs up 1.3x-4x depending on the pass and cuBLAS version); nanoGPT "
      "(Karpathy, model.py, 2023): padding GPT-2's vocabulary 50257 -> 50304 speeds A100 training ~25%, "
      "which with the LM head at ~27% of the FLOPs means ~2x on its GEMMs: 0.5", lo=0.05, hi=1.0)
param("gemm_pipeline_stages", 4,
      "shared-memory pipeline stages of the GEMM main loop (cp.async / TMA multistage)",
      "CUTLASS Ampere/Hopper multistage kernels use 3-5 stages (CUTLASS docs, 'Efficient GEMM')",
      lo=2, hi=8)
param("gemm_register_overhead", 2.0,
      "registers per CTA relative to its fp32 accumulator tile (operand fragments, addresses)",
      "CUTLASS 128x128 fp16 kernels use ~128 KB of registers for a 64 KB accumulator tile "
      "(2 CTAs on a 256 KB register file); physical reasoning", lo=1.0, hi=4.0)
param("gemm_cluster_multicast", 2.0,
      "CTAs of a thread-block cluster that share one L2 read of an operand panel through TMA "
      "multicast (Hopper and later only; 1 = no sharing)",
      "CUTLASS sm90 GEMM kernels default to 2x1 / 1x2 clusters with TMA multicast (CUTLASS 3.x docs, "
      "'GEMM API 3.x'; Hopper whitepaper: thread block clusters, TMA multicast)", lo=1.0, hi=16.0)
param("dequant_ops_per_weight", 1.5,
      "CUDA-core instructions to turn one packed low-bit weight into a scaled 16-bit value",
      "LOP3/magic-number int4->fp16 conversion: ~10 instructions per 8 weights incl. scale "
      "(Kim et al. 2022, 'Who Says Elephants Can't Run', FasterTransformer; Marlin, Frantar et al. "
      "2024); a naive shift/mask/convert/scale path is 4", lo=0.25, hi=8.0)
param("sparse_index_bytes", 2.0,
      "index bytes stored per nonzero weight in the sparse format",
      "Flash-LLM Tiled-CSL: a 16-bit in-tile location packed with the 16-bit value, 4 B per nonzero "
      "(Xia et al., VLDB 2024)", lo=0.0, hi=8.0)
param("sparse_extract_ops_per_nnz", 4.0,
      "CUDA-core/shared-memory ops to extract one nonzero and scatter it into the dense SMEM tile",
      "Flash-LLM sparse-to-dense transformation: unpack value and location (shift/mask), one "
      "st.shared, address arithmetic (Xia et al., VLDB 2024, Sec. 4); physical reasoning",
      lo=0.5, hi=32.0)


def _check(op: Gemm, dev: DeviceSpec) -> None:
    for f in ("m", "n", "k", "batch"):
        if getattr(op, f) < 1:
            raise InputError("scenario", f"workload.{f}", f"must be a positive integer, got {getattr(op, f)}")
    if op.dtype not in DTYPE_BYTES:
        raise InputError("scenario", "workload.dtype", f"unknown dtype '{op.dtype}'; expected one of {sorted(DTYPE_BYTES)}")
    tc_peak(dev, op.dtype)
    if op.w_dtype is not None and op.w_dtype not in DTYPE_BYTES:
        raise InputError("scenario", "workload.w_dtype",
                         f"unknown weight dtype '{op.w_dtype}'; expected one of {sorted(DTYPE_BYTES)}")
    if not 0.0 <= op.sparsity < 1.0:
        raise InputError("scenario", "workload.sparsity", f"must be in [0, 1), got {op.sparsity}")
    if op.sparsity_pattern not in ("unstructured", "2:4"):
        raise InputError("scenario", "workload.sparsity_pattern",
                         f"expected 'unstructured' or '2:4', got '{op.sparsity_pattern}'")
    if op.sparsity_pattern == "2:4":
        if op.sparsity not in (0.0, 0.5):
            raise InputError("scenario", "workload.sparsity", f"2:4 sparsity is 0.5 by definition, got {op.sparsity}")
        if not dev.sparse_24:
            raise InputError("scenario", "workload.sparsity_pattern",
                             f"{dev.name} has no 2:4 sparse Tensor Cores (spec sparse_24: false)")
    if op.group_size < 1:
        raise InputError("scenario", "workload.group_size", f"must be >= 1, got {op.group_size}")


@dataclass(frozen=True)
class WeightFormat:
    """How B is stored: bytes in HBM, bytes per element on chip, SIMT work per element."""
    bytes: float              # B bytes in HBM (values + scales + indices/metadata)
    per_elem: float           # bytes per dense B element (B bytes / (k*n))
    simt_ops_per_elem: float  # CUDA-core ops per dense B element, per time the tile is loaded
    tc_speedup: float         # 2 for 2:4 sparse Tensor Cores
    kind: str
    smem_once: float = 0.0    # shared-memory bytes per dense B element moved once per CTA (stores, staging reads)
    smem_per_warp: float = 0.0   # shared-memory bytes per dense B element each warp reads for its fragments


def weight_format(op: Gemm, dev: DeviceSpec) -> WeightFormat:
    k, n = op.k, op.n
    wd = op.w_dtype or op.dtype
    vb = DTYPE_BYTES[wd]
    low_bit = op.w_dtype is not None and op.w_dtype != op.dtype
    scales = 0.0
    ops = 0.0
    if low_bit:
        scale_b = 4.0 if wd == "nf4" else 2.0   # bitsandbytes nf4: fp32 absmax per block; others fp16 scales
        scales = math.ceil(k / op.group_size) * n * scale_b
        ops += eff(dev, "dequant_ops_per_weight")
    if op.sparsity_pattern == "2:4":
        vals = k * n / 2 * (vb + 2 / 8)         # half the values + 2-bit position per kept value
        pe = (vals + scales) / (k * n)
        return WeightFormat(vals + scales, pe, ops / 2, 2.0, "2:4", pe, pe)
    if op.sparsity > 0:
        # load as sparse, compute as dense (Flash-LLM); gemm_plan prices it with Flash-LLM's kernel
        # (_sparse_candidate); the shared-memory fields are what a generic staged kernel would move
        dens = 1.0 - op.sparsity
        idx = eff(dev, "sparse_index_bytes")
        vals = dens * k * n * (vb + idx)
        ops = dens * (ops + eff(dev, "sparse_extract_ops_per_nnz"))
        once = 2 * dens * (vb + idx) + vb + dens * vb
        return WeightFormat(vals + scales, (vals + scales) / (k * n), ops, 1.0, "sparse_unstructured", once, vb)
    vals = k * n * vb
    pe = (vals + scales) / (k * n)              # dense: the tile as stored; low bit: packed, dequantised in registers
    return WeightFormat(vals + scales, pe, ops, 1.0, "low_bit" if low_bit else "dense", pe, pe)


def warp_tile(Tm: int, Tn: int) -> tuple[int, int]:
    """The warp tile of a CTA tile, CUTLASS style: 4 warps as 2 x 2 (8 as 4 x 2 / 2 x 4 above 128 x 128
    outputs), skinny tiles (Tm <= 32) with their warps side by side along N."""
    if Tm <= 32:
        return Tm, Tn // 4
    if Tm * Tn > 128 * 128:
        return (Tm // 4, Tn // 2) if Tm > Tn else (Tm // 2, Tn // 4)
    return Tm // 2, Tn // 2


def smem_bytes_per_k(Tm: int, Tn: int, a_b: float, b_once: float, b_per_warp: float) -> float:
    """Shared-memory bytes a CTA tile moves per unit of k with warp-level MMA: the A tile is written
    once and B's once-per-CTA traffic (``b_once`` per element), and every warp reads the A rows and B
    columns of its warp tile (ldmatrix; ``b_per_warp`` per B element)."""
    Wm, Wn = warp_tile(Tm, Tn)
    warps = (Tm // Wm) * (Tn // Wn)
    return Tm * a_b + Tn * b_once + warps * (Wm * a_b + Wn * b_per_warp)


def alignment_padded(op: Gemm) -> Gemm:
    """``op`` with n and k rounded up to the 16-byte alignment of its dtype (itself when aligned)."""
    eb = DTYPE_BYTES[op.dtype]
    al = max(1, int(ALIGN_BYTES // eb)) if eb >= 1 else 1
    n, k = ceil_div(op.n, al) * al, ceil_div(op.k, al) * al
    return op if (n, k) == (op.n, op.k) else replace(op, n=n, k=k)


def _tile_candidate(op: Gemm, dev: DeviceSpec, wf: WeightFormat, Tm: int, Tn: int, s: int,
                    tc_scale: float = 1.0) -> dict:
    m, n, k, batch = op.m, op.n, op.k, op.batch
    a_b = DTYPE_BYTES[op.dtype]
    c_b = a_b if a_b >= 2 else SUB_16BIT_OUTPUT
    Tk = max(16, int(64 / a_b))                          # 64 bytes of k per stage
    stages = int(eff(dev, "gemm_pipeline_stages"))
    smem_cta = stages * Tk * (Tm * a_b + Tn * wf.per_elem)
    reg_cta = Tm * Tn * 4 * eff(dev, "gemm_register_overhead")
    cps = max(1, min(int(dev.smem_bytes_per_sm // smem_cta), int(dev.register_file_kb_per_sm * 1024 // reg_cta)))
    gm, gn = ceil_div(m, Tm), ceil_div(n, Tn)
    k_cta = ceil_div(k, s)
    tiles = gm * gn * s * batch
    sms = dev.sms
    per_sm = ceil_div(tiles, sms)                        # tiles on the busiest SM
    waves = ceil_div(tiles, sms * cps)
    rate_sm = tc_peak(dev, op.dtype) * eff(dev, "tc_peak_fraction") * wf.tc_speedup * tc_scale / sms
    t_tile = 2.0 * Tm * Tn * k_cta / rate_sm
    if dev.arch not in ASYNC_MMA_ARCHS:  # mma.sync: every warp reloads its operand fragments from shared memory
        t_tile = max(t_tile, k_cta * smem_bytes_per_k(Tm, Tn, a_b, wf.smem_once, wf.smem_per_warp) / smem_Bps(dev))
    t_tc = per_sm * t_tile + waves * eff(dev, "tile_overhead_s")
    useful = 2.0 * m * n * k * batch
    padded = per_sm * sms * 2.0 * Tm * Tn * k_cta
    # memory traffic
    A, B, C = m * k * a_b, wf.bytes, m * n * c_b
    conc = min(tiles, sms * cps)                         # CTAs in flight at once
    per_item = gm * gn * s
    if conc >= per_item:
        wr, wc = gm, gn
    else:
        wr = min(gm, max(1, round(math.sqrt(conc / s))))
        wc = min(gn, max(1, conc // (wr * s)))
    partial = s * m * n * 4 * batch if s > 1 else 0.0         # fp32 split-K partials written by the GEMM kernel
    cl = eff(dev, "gemm_cluster_multicast") if dev.arch in ASYNC_MMA_ARCHS else 1.0
    l2_bytes = batch * (min(A * gn / cl + B * gm, A * gn + B * gm / cl) + C) + partial
    hbm_bytes = batch * (A * max(1.0, gn / wc) + B * max(1.0, gm / wr) + C)
    if partial > dev.l2_bytes:
        hbm_bytes += partial
    in_flight = conc * (stages - 1) * Tk * (min(Tm, m) * a_b + Tn * wf.per_elem)
    t_hbm = hbm_time(dev, hbm_bytes, in_flight)
    t_l2 = l2_time(dev, l2_bytes)
    t_dq = per_sm * wf.simt_ops_per_elem * k_cta * Tn / (alu_ops_per_s(dev) / sms)
    ov = op.dequant_overlap if op.dequant_overlap is not None else eff(dev, "simt_overlap")
    terms = {f"tensor_core_{op.dtype}": t_tc, "hbm_bandwidth": t_hbm, "l2_bandwidth": t_l2}
    serial = {}
    if t_dq > 0:
        terms["dequant_simt"] = ov * t_dq
        serial["dequant_simt"] = (1 - ov) * t_dq
    if s > 1:   # split-K fixup after the main loops: the fp32 partials are read back and summed into C
        serial["split_k_reduce"] = l2_time(dev, partial) if partial <= dev.l2_bytes else hbm_time(dev, partial)
    time, bound, allterms = compose(terms, serial, 1, dev)
    return dict(time=time, bound=bound, terms=allterms, hbm=hbm_bytes, l2=l2_bytes, tile=(Tm, Tn, Tk),
                split_k=s, ctas_per_sm=cps, tiles=tiles, waves=waves, wave_efficiency=useful / padded,
                dequant_s=t_dq, compulsory=batch * (A + B + C))


# ---- unstructured sparsity: Flash-LLM's SpMM kernel ---------------------------------------------------
# Structural constants of the modelled kernel (AlibabaResearch/flash-llm, csrc/TilingConfig.h, SpMM_API.cu,
# SpMM_Kernel.cuh). Flash-LLM computes W[M,K] x X[K,N] with the weight rows (our n) along the CTA's M tile
# and the tokens (our m) along its N tile; the tile is chosen by the token count, not searched.
SPARSE_TK = 64                 # TILE_K = MMA_K x BLOCK_K_TENSORS = 16 x 4
SPARSE_WARPS = 4               # BLOCK_ROW_WARPS x BLOCK_COL_WARPS = 4 in every dispatched TilingConfig
SPARSE_SMEM_BUFFERS = 2        # double buffer: one tile computed while the next is loaded
SPARSE_PARTIAL_BYTES = 2       # split-K partials are fp16 (Reduction_Workspace is half*)


def sparse_tiling(m: int) -> tuple[int, int, int, int]:
    """(Tm tokens, Tn weight rows, warps along the weight rows, MMA token columns) of the TilingConfig
    that SpMM_SplitK_API dispatches for m tokens: <4,1,1> (256 x 16; its N=8 variant issues half the
    MMAs), <4,1,2> (256 x 32), <2,2,2> (128 x 64), <2,2,4> (128 x 128) above 64 tokens."""
    if m <= 16:
        return 16, 256, 4, (8 if m <= 8 else 16)
    if m <= 32:
        return 32, 256, 4, 32
    if m <= 64:
        return 64, 128, 2, 64
    return 128, 128, 2, 128


def closed_loop_cycle(ctas: int, s_pipe: float, d_hbm: float, delay: float) -> float:
    """Exact mean-value analysis (Lazowska et al., 'Quantitative System Performance', 1984, ch. 6) of
    one SM's ``ctas`` CTAs as a closed loop: each iteration a CTA queues for the SM's shared-memory/LSU
    pipe (``s_pipe`` s of work), for its SM's share of the HBM bandwidth (``d_hbm`` s of transfer), and
    waits ``delay`` s (the DRAM round trip). Returns the mean iteration time of one CTA; it is never
    below ctas x d_hbm or ctas x s_pipe (the bottleneck law) nor below s_pipe + d_hbm + delay."""
    q_s = q_h = 0.0
    cycle = s_pipe + d_hbm + delay
    if cycle <= 0:
        return 0.0
    for n in range(1, ctas + 1):
        r_s, r_h = s_pipe * (1 + q_s), d_hbm * (1 + q_h)
        cycle = r_s + r_h + delay
        q_s, q_h = n * r_s / cycle, n * r_h / cycle
    return cycle


def _sparse_candidate(op: Gemm, dev: DeviceSpec, wf: WeightFormat, s: int, tc_scale: float = 1.0) -> dict:
    """One split-K choice of Flash-LLM's kernel for an unstructured-sparse weight (see the module doc)."""
    m, n, k, batch = op.m, op.n, op.k, op.batch
    a_b = DTYPE_BYTES[op.dtype]
    vb = DTYPE_BYTES[op.w_dtype or op.dtype]
    c_b = a_b if a_b >= 2 else SUB_16BIT_OUTPUT
    Tm, Tn, row_warps, Tm_mma = sparse_tiling(m)
    Tk = SPARSE_TK
    col_warps = SPARSE_WARPS // row_warps
    smem_cta = max(SPARSE_SMEM_BUFFERS * Tk * (Tn + Tm) * a_b, (Tn + 4) * Tm * 4)   # dense tiles | fp32 C staging
    cps = max(1, int(dev.smem_bytes_per_sm // smem_cta))
    gm, gn = ceil_div(m, Tm), ceil_div(n, Tn)
    iters = ceil_div(ceil_div(k, Tk), s)
    tiles = gm * gn * s * batch
    sms = dev.sms
    slots = sms * cps
    waves = ceil_div(tiles, slots)
    # bytes: the compressed weight once per token tile, activations once per weight-row panel (L2-shared)
    W, A = wf.bytes, m * k * a_b
    conc = min(tiles, slots)
    per_item = gm * gn * s
    wr = gm if conc >= per_item else min(gm, max(1, round(math.sqrt(conc / s))))
    partial = s * m * n * SPARSE_PARTIAL_BYTES * batch if s > 1 else 0.0
    out = partial if s > 1 else m * n * c_b * batch
    hbm_bytes = batch * (W * max(1.0, gm / wr) + A) + (out if out > dev.l2_bytes else m * n * c_b * batch)
    l2_bytes = batch * (W * gm + A * gn) + out
    # one CTA-iteration (a Tn x Tk weight tile)
    dens = 1.0 - op.sparsity
    nnz = dens * Tn * Tk
    b_it = hbm_bytes / (tiles * iters)                   # HBM bytes per CTA-iteration
    sm_Bps = smem_Bps(dev)
    rate_sm = tc_peak(dev, op.dtype) * eff(dev, "tc_peak_fraction") * tc_scale / sms
    t_tc = 2.0 * Tn * Tm_mma * Tk / rate_sm
    t_ldsm = (Tn * Tk * vb * col_warps + Tm * Tk * a_b * row_warps) / sm_Bps   # ldmatrix of both operands
    t_mma = max(t_tc, t_ldsm)
    # serial per iteration (no own load in flight): zero-fill the dense tile (cp.async zfill), receive the
    # compressed tile into registers and scatter it (shift/mask/st.shared), store the activation tile
    t_fill = (Tn * Tk * vb + nnz * (vb + eff(dev, "sparse_index_bytes")) + Tm * Tk * a_b) / sm_Bps
    t_ext = nnz * eff(dev, "sparse_extract_ops_per_nnz") / (alu_ops_per_s(dev) / sms)
    s_pipe = t_fill + t_ext
    lat = eff(dev, "dram_latency_s")
    bw = dev.hbm_Bps * eff(dev, "hbm_efficiency")
    t_main = 0.0
    cyc_full = None
    for w in range(waves):
        c = slots if w < waves - 1 else tiles - (waves - 1) * slots
        busy = ceil_div(c, sms)                          # CTAs on the busiest SM
        d_sm = b_it * c / (bw * busy)                    # this SM's share of the HBM bandwidth
        cyc = closed_loop_cycle(busy, s_pipe, d_sm, max(lat, t_mma))
        cyc = max(cyc, busy * max(t_tc, t_ldsm + t_fill, t_ext))   # each SM unit serves all its CTAs' work
        cyc_full = cyc if cyc_full is None else cyc_full
        t_main += iters * cyc + eff(dev, "tile_overhead_s")
    t_l2 = l2_time(dev, l2_bytes)
    per_sm = ceil_div(tiles, sms)
    terms = {f"tensor_core_{op.dtype}": per_sm * iters * t_mma,
             "hbm_bandwidth": hbm_time(dev, hbm_bytes),
             "l2_bandwidth": t_l2,
             "sparse_extract": per_sm * iters * s_pipe}
    serial = {}
    work = max(t_main, t_l2)
    if work > max(terms.values()):     # what no single resource explains: exposed DRAM latency and queueing
        serial["memory_latency"] = work - max(terms.values())
    launches = 1
    if s > 1:   # SplitK_Reduction: a second kernel reads the fp16 partials and writes C
        red = partial + m * n * c_b * batch
        serial["split_k_reduce"] = l2_time(dev, red) + eff(dev, "l2_latency_s") if partial <= dev.l2_bytes \
            else hbm_time(dev, red)
        launches = 2
    time, bound, allterms = compose(terms, serial, launches, dev)
    useful = 2.0 * m * n * k * batch
    padded = per_sm * sms * 2.0 * Tm * Tn * iters * Tk
    return dict(time=time, bound=bound, terms=allterms, hbm=hbm_bytes, l2=l2_bytes, tile=(Tm, Tn, Tk),
                split_k=s, ctas_per_sm=cps, tiles=tiles, waves=waves, wave_efficiency=useful / padded,
                dequant_s=per_sm * iters * t_ext, compulsory=batch * (A + W + m * n * c_b),
                iteration_s=cyc_full)


def _sparse_plan(op: Gemm, dev: DeviceSpec, wf: WeightFormat, tc_scale: float) -> dict:
    """Flash-LLM's kernel with the split-K that runs fastest (its benchmarks hand-tune Split_K per shape)."""
    Tm, Tn, _, _ = sparse_tiling(op.m)
    base = ceil_div(op.m, Tm) * ceil_div(op.n, Tn) * op.batch
    cands = [_sparse_candidate(op, dev, wf, 1, tc_scale)]
    for s in SPLITS[1:]:
        if op.k / s < 4 * SPARSE_TK or base * s > 16 * dev.sms:
            break
        cands.append(_sparse_candidate(op, dev, wf, s, tc_scale))
    return dict(min(cands, key=lambda c: c["time"]))


def gemm_plan(op: Gemm, dev: DeviceSpec) -> dict:
    """The fastest tile/split-K choice and its numbers (what a heuristic library would pick)."""
    _check(op, dev)
    real = op
    op = alignment_padded(real)
    misaligned = op is not real
    tc_scale = eff(dev, "gemm_misaligned_tc_fraction") if misaligned else 1.0
    wf = weight_format(op, dev)
    if wf.kind == "sparse_unstructured":
        return _finish(_sparse_plan(op, dev, wf, tc_scale), real, op, dev, wf, misaligned)
    cands = []
    for Tm, Tn in TILES:
        base = ceil_div(op.m, Tm) * ceil_div(op.n, Tn) * op.batch
        for s in SPLITS:
            if s > 1 and (base >= dev.sms or base * s > 4 * dev.sms or op.k / s < 256):
                break                                    # split-K only to fill an under-occupied GPU
            cands.append(_tile_candidate(op, dev, wf, Tm, Tn, s, tc_scale))
    # the fastest; among near-ties (within 0.5%), the one that wastes least (smallest summed terms),
    # so a memory-bound GEMM reports the skinny tile a library would pick, not a padded one
    t_best = min(c["time"] for c in cands)
    best = dict(min((c for c in cands if c["time"] <= t_best * 1.005), key=lambda c: sum(c["terms"].values())))
    best["time"] = t_best      # keeps the prediction monotone in every rate; the details are the near-tie's
    return _finish(best, real, op, dev, wf, misaligned)


def _finish(best: dict, real: Gemm, op: Gemm, dev: DeviceSpec, wf: WeightFormat, misaligned: bool) -> dict:
    """The plan's weight-format details, and the real (unpadded) operands of a misaligned GEMM."""
    best["weight_format"] = wf.kind
    best["weight_bytes"] = wf.bytes
    best["misaligned"] = misaligned
    if misaligned:       # what the real operands are, whatever the padded plan moved
        rwf = weight_format(real, dev)
        a_b = DTYPE_BYTES[real.dtype]
        best["compulsory"] = real.batch * (real.m * real.k * a_b + rwf.bytes + real.m * real.n * (a_b if a_b >= 2
                                                                                                  else SUB_16BIT_OUTPUT))
        best["wave_efficiency"] *= (real.n * real.k) / (op.n * op.k)
        best["weight_bytes"] = rwf.bytes
    return best


@pricer(Gemm)
def price_gemm(op: Gemm, system) -> OpCost:
    dev = device_of(system)
    p = gemm_plan(op, dev)
    flops = 2.0 * op.m * op.n * op.k * op.batch
    detail = {k: p[k] for k in ("tile", "split_k", "ctas_per_sm", "tiles", "waves", "wave_efficiency",
                                "dequant_s", "weight_format", "weight_bytes", "compulsory", "misaligned")}
    detail["arithmetic_intensity"] = flops / p["hbm"]
    return OpCost(time_s=p["time"], bound=p["bound"], flops=flops, bytes={"hbm": p["hbm"], "l2": p["l2"]},
                  terms=p["terms"], detail=detail)
