"""Attention cost: naive (S and P in HBM) and tiled (FlashAttention 1/2/3, paged decode) kernels.

FLOPs follow the FlashAttention convention (shared/reference/README.md): forward
4*B*Sq*Skv*H*d, halved when causal (generally: times the unmasked fraction with the mask aligned
to the bottom-right, 1 - Sq/(2*Skv) for Sq <= Skv); backward 2.5x, forward+backward 3.5x.

naive: the PyTorch reference. Two batched GEMMs (QK^T writes S to HBM, PV reads P) and a softmax
kernel (reads S, writes P), one more read+write pass of S for the causal mask; backward: four
GEMMs and the softmax backward (reads P and dP, writes dS). Each is priced by the GEMM and
elementwise models and the kernels run one after another. Around them sit the layout copies a
PyTorch model makes: Q, K and V arrive as (batch, seq, heads, d) views of the projection output
and bmm needs (batch*heads, seq, d) contiguous, so each is copied (K and V expanded to all query
heads, as repeat_kv does for GQA), and the output is copied back to (batch, seq, heads*d); the
backward copies dO in and dQ, dK, dV back (dK, dV summed over the query heads of a KV head).
These copies are O(S d) against the O(S^2) score passes, so they matter at short sequences.

tiled (flash1, flash2/flash, flash3, paged): one kernel over Br x Bc tiles of the score matrix,
the tile sizes the largest that fit Q plus double-buffered K and V in shared memory.
* Work partitioning (Dao 2022, 2023): flash1 loops over K/V blocks outside and query blocks
  inside (grid over batch x heads, split along the query when that leaves SMs idle), so the query
  and output blocks are re-read and re-written once per K/V block (Dao 2022's Theta(N^2 d^2 / M)
  traffic) and its warps reduce partial outputs through shared memory ("split-K"); flash2/3 put
  queries outside (grid over batch x heads x query blocks), so K and V are re-read once per query
  block, mostly from L2: CTAs running together on the same head share them. Backward: grid over
  K/V blocks, Q and dO re-read per block, dQ accumulated with fp32 atomics in L2, plus the
  dO.O row-sum and dQ conversion kernels. Causal masks skip the blocks above the diagonal.
* Per score element the SM does matmul work (4d FLOPs forward, 10d backward) on Tensor Cores and
  the softmax on the SFU (one exp) and CUDA cores (``attn_*_alu_ops_per_score``). flash1/flash2
  run them in sequence inside each warp, overlapping only across co-resident CTAs (1 - 1/CTAs per
  SM); flash3 overlaps them by design (``attn_flash3_overlap``). flash1/flash2/paged use the
  warp-level mma.sync, which on Hopper and later reaches only ``mma_sync_fraction`` of the peak.
* Decode (query rows per KV head <= a tile: Sq * H/Hkv <= 128): the query heads of a KV head are
  packed into one tile, K/V streamed once: KV bytes = B*Skv*Hkv*d*2*bytes(kv_dtype) (+ scales for
  sub-byte types). When too few CTAs exist to fill the SMs, flash2/flash3/flashinfer split the KV
  sequence (FlashDecoding) and combine partials in a second kernel. The bandwidth obeys Little's
  law: CTAs x one prefetched K+V stage in flight / DRAM latency.
* flash3's overlap of softmax with GEMMs is a software pipeline across the K/V blocks of a CTA
  (block j's softmax under block j+1's GEMMs): its first and last stages run alone, so a CTA that
  visits n blocks hides at most (n-1)/n of what the steady state hides.

flash4 (FlashAttention-4, Blackwell sm100 only; cudnn's forward there): the tcgen05 MMA, issued by
one thread with operands in shared memory and accumulators in Tensor Memory, runs at the full tensor
rate. A CTA holds two 128-row query tiles and walks 128-key blocks; two softmax warpgroups ping-pong
so one's softmax runs under the other's MMAs (``attn_flash4_overlap``, in the pipeline's steady state
as for flash3). On B200 the tensor rate per SM and clock doubled while MUFU.EX2 stayed at 16 per clock
(FA4 paper), so at head dim 64 the exp is the wall: FA4 computes a share of the exps
(``attn_flash4_exp_emulated_fraction``) with a degree-3 polynomial on the FMA pipe
(``exp2_emulation_ops`` each); the MUFU and FMA pipes run at once and the slower one paces the softmax.
Its backward (flash_attn/cute/flash_bwd_sm100.py; CUTLASS examples/77_blackwell_fmha's
sm100_fmha_bwd_kernel_tma_warpspecialized.hpp has the same warp roles and tiles) walks, per CTA, one
128-key block over the 128-query blocks that see it with five tcgen05 MMAs per tile (S^T = K Q^T,
dP^T = V dO^T, dV += P^T dO, dK += dS^T Q, dQ = dS K) at the full tensor rate, one MUFU exp per score
(no emulation in the backward), dS = P (dP - D) on the FMA pipe, and dQ drained from Tensor Memory
through shared memory into TMA reduce-adds in L2. Every operand that is not in Tensor Memory passes
through shared memory, whose 128 B/clk did not grow with the tensor rate: at head dim 128 the tile's
shared-memory traffic takes ~1.5x its MMA time, so the backward is shared-memory-bound (FA4 paper).
See ``_fa4_bwd_score_time``. cudnn's backward on Blackwell is priced the same way.

paged (vLLM PagedAttention v1/v2, decode with one query per sequence): one CTA of
``paged_warps_per_cta`` warps per (query head, sequence, 512-token partition); v2 (a partition
per ``paged_partition_tokens`` and a second reduce kernel) unless the sequence fits one partition
or sequences x heads > 512 (vLLM's rule, for contexts up to 8192). Each warp walks the KV blocks
of ``paged_block_tokens`` tokens one at a time: it loads the block number from the block table,
then the block's keys (then, after the softmax, its values), with no prefetch of the next block.
So each warp has one block in flight and every step pays an L2 round trip (block table) plus a
DRAM round trip: by Little's law the kernel reaches only (warps in flight x block bytes) /
(l2 + DRAM latency), which at batch 1 is a fraction of the HBM rate; with many sequences the
warps in flight cover the latency and the kernel streams at the HBM rate. K/V of a KV head are
read by each of its query heads' CTAs (the repeats hit L2). flashinfer is priced as the
pipelined split-KV decode above.
"""
from __future__ import annotations

import math

import numpy as np

from sim.cost import OpCost, pricer
from sim.cost.common import (ASYNC_MMA_ARCHS, alu_ops_per_s, ceil_div, compose, device_of, hbm_time, l2_time,
                             sfu_ops_per_s, smem_Bps, tc_peak)
from sim.cost.efficiency import eff, param
from sim.cost.elementwise import elementwise_cost
from sim.cost.gemm import price_gemm
from sim.errors import InputError
from sim.ops import DTYPE_BYTES, Attention, Elementwise, Gemm

IMPLS = ("naive", "flash1", "flash2", "flash3", "flash", "paged",
         "sdpa", "triton", "xformers", "cudnn", "cutlass", "flashinfer", "flash4")
# Library kernels priced as the algorithm they implement: PyTorch SDPA's default CUDA backend is
# FlashAttention-2; Triton's fused-attention tutorial is the FA2 loop order; xFormers'
# memory-efficient kernel is the FA1-era CUTLASS kernel; FlashInfer's kernels are paged
# (decode) attention. cuDNN's fused attention uses wgmma/TMA with producer-consumer warps on
# Hopper (the FA3 design), the FA2 design elsewhere. ``cutlass`` is Colfax's CUTLASS FMHA for
# Hopper (Bikshandi & Shah, arXiv 2312.11918; tritonbench's ``colfax_cutlass``): the FA2 algorithm
# and loop order rebuilt on wgmma and TMA, without FA3's warp specialisation, ping-pong scheduling
# or intra-warpgroup softmax pipelining ("wgmma2": wgmma's full rate, the softmax in series with
# the MMAs; at head dim 128 its 128 x 128 tiles leave one CTA per SM, so none hides it either).
# On Blackwell (sm100) cuDNN's SDPA forward is priced with the FlashAttention-4 structure: both
# descend from CUTLASS's Blackwell FMHA (examples/77_blackwell_fmha, which flash_fwd_sm100.py names
# as its base): tcgen05 MMA into Tensor Memory, two softmax warpgroups on two query tiles, a
# correction warpgroup. Its backward on Blackwell is priced with FA4's backward structure too (CUTLASS
# example 77's backward kernel has the same 128 x 128 tiles, 8 compute + 4 reduce warps, five tcgen05 MMAs
# and TMA reduce-add of dQ; it reads dS^T for the dK MMA from shared memory where FA4 keeps it in Tensor
# Memory, a difference not priced: cuDNN's own kernel is closed).
ALIASES = {"flash": "flash2", "sdpa": "flash2", "triton": "flash2", "xformers": "flash1"}
SPLIT_KV_IMPLS = ("flash2", "flash3", "paged", "flashinfer", "flash4")   # split the KV sequence when SMs are idle
HOPPER_ALIASES = {"cudnn": "flash3", "cutlass": "wgmma2"}
BLACKWELL_ALIASES = {"cudnn": "flash4"}
BLACKWELL_ARCHS = ("blackwell",)          # datacenter sm100 (tcgen05, TMEM); sm120 parts have neither
# FlashAttention-4 forward geometry (flash_attn/cute/flash_fwd_sm100.py): m_block_size = n_block_size
# = 128, q_stage = 2 query tiles per CTA (softmax warpgroups 0 and 1 ping-pong), one CTA per SM (the
# tile needs all of Tensor Memory: S0, S1 at columns 0/128, O0, O1 after them). Tensor Memory is 512
# columns x 128 lanes x 32 bit = 256 KB per SM (CUDA PTX ISA, tcgen05 'Tensor Memory'); tcgen05.mma
# with cta_group::1 takes M = 64 or 128 (PTX ISA, tcgen05.mma shapes).
FA4_TILE_M, FA4_TILE_N, TMEM_COLUMNS = 128, 128, 512
# FlashAttention-4 backward geometry (flash_attn/cute/flash_bwd_sm100.py __init__: tile_m = tile_n = 128; CUTLASS
# sm100_fmha_bwd_kernel_tma_warpspecialized.hpp static_asserts both 128): a CTA owns one 128-key block and walks
# the 128-query blocks; 16 warps and ~227 KB of shared memory, one CTA per SM (min_blocks_per_mp=1).
FA4_BWD_TILE_M, FA4_BWD_TILE_N = 128, 128
# FMA-pipe ops per score in the compute warps' P phase (flash_bwd_sm100.py compute_loop: one packed FFMA
# S*scale_log2 - LSE, one conversion of P to 16 bits); the rest of attn_bwd_alu_ops_per_score (dP - D,
# times P, conversion of dS) is the dS phase.
FA4_BWD_P_PHASE_OPS = 2.0
# LSE and dPsum are read by the compute warps from shared memory per 32-column stage: the 32 lanes of a warp
# (32 key rows) read the same values (broadcast), 4 B each per score column per warp.
FA4_BWD_BROADCAST_ROWS = 32
PASSES = {"fwd": 1.0, "bwd": 2.5, "fwd_bwd": 3.5}
TILE_CHOICES = ((128, 128), (128, 64), (64, 64), (64, 32), (32, 32), (16, 32), (16, 16))
MAX_PACK_ROWS = 128                       # decode: query rows of one KV head packed into one tile
# Threads per warp (NVIDIA) or wavefront (AMD CDNA): CDNA2/CDNA3 compute units execute wave64
# (AMD CDNA3 ISA reference guide, 'wavefront of 64 work-items'; HIP's warpSize is 64 on gfx90a/gfx942).
# vLLM's paged attention compiles WARP_SIZE = warpSize on ROCm (csrc/attention/attention_kernels.cu),
# so its 128-thread CTA is 2 wavefronts there, 4 warps on NVIDIA.
WAVE_WIDTH = {"cdna2": 64, "cdna3": 64}
WARP_THREADS = 32

param("attn_fwd_alu_ops_per_score", 4.0,
      "CUDA-core ops per score element in the online-softmax forward (scale-and-subtract FFMA, "
      "running max, row-sum add, conversion of P to 16 bits)",
      "FlashAttention-2 algorithm (Dao 2023, Alg. 1) and FA3 (Shah et al. 2024, Sec. 3): the "
      "non-matmul operations per element; counted from the algorithm", lo=1.0, hi=16.0)
param("attn_bwd_alu_ops_per_score", 5.0,
      "CUDA-core ops per score element in the backward (recompute P: FFMA with the log-sum-exp; "
      "dS = P*(dP - D): subtract, multiply; scale; conversions of P and dS to 16 bits)",
      "FlashAttention-2 backward (Dao 2023, Alg. 2); counted from the algorithm", lo=1.0, hi=16.0)
param("attn_flash3_overlap", 0.4,
      "fraction of softmax (SFU + CUDA-core) time FlashAttention-3 hides under its GEMMs",
      "FA3 (Shah et al. 2024, Sec. 3.1-3.2): ping-pong scheduling of two warpgroups hides one's "
      "softmax under the other's GEMMs, intra-warpgroup pipelining overlaps the rest; named-barrier "
      "synchronisation and register pressure leave a residue. FA3's ablation (hdim 128, 8K, BF16) "
      "loses 14% (661 -> 570 TFLOP/s) without warp specialisation and 12% (-> 582) without the "
      "intra-warpgroup pipelining, against the ~1.6x a full overlap of a softmax costing ~60% of the "
      "matmul time would be worth: about 0.4 of the softmax is hidden", lo=0.0, hi=1.0)
param("mma_sync_fraction", 0.6,
      "fraction of the matrix peak the warp-level mma.sync instruction reaches on architectures "
      "whose peak needs the asynchronous warpgroup MMA (Hopper, Blackwell); 1 elsewhere",
      "FA3 paper (Shah et al. 2024): FlashAttention-2 reaches only 35% of the H100 peak against "
      "50-73% of the A100 peak, for lack of wgmma/TMA; Luo et al. (arXiv 2501.12084) find mma.sync "
      "well below the wgmma throughput on Hopper", lo=0.2, hi=1.0)
param("attn_flash4_overlap", 0.4,
      "fraction of softmax (MUFU + FMA-pipe) time FlashAttention-4 hides under its tcgen05 MMAs in the "
      "steady state of its pipeline over K/V blocks (Blackwell)",
      "FA4 (Zadouri et al. 2026, arXiv 2603.05451; flash_attn/cute/flash_fwd_sm100.py): two softmax "
      "warpgroups on two query tiles ping-pong against a single-thread-issued asynchronous tcgen05 MMA, "
      "the FA3 mechanism on a faster MMA; with two tiles the ideal is a full overlap, the residue is the "
      "named-barrier hand-offs (S ready, P written to TMEM, O corrected) and the correction warpgroup. "
      "No FA4 ablation with separate numbers was found: FA3's ablation-derived share "
      "(attn_flash3_overlap) is taken as the prior, not fitted to any B200 row; to be calibrated",
      lo=0.0, hi=1.0)
param("attn_flash4_exp_emulated_fraction", 0.125,
      "share of the softmax exp2 evaluations FlashAttention-4 computes with a polynomial on the FMA "
      "pipe instead of MUFU.EX2 (the rest go to the MUFU)",
      "flash_attn/cute/softmax.py apply_exp2_convert with flash_fwd_sm100.py's schedule: a 128-column S "
      "row is 4 fragments of 32; pairs k with k mod freq >= freq - 4, in fragments start_frg.."
      "frg_cnt-2, are emulated. The default freq 16, start_frg 1 (causal hdim 128 and every hdim "
      "without a tuning entry) emulates 4 of 16 pairs in 2 of 4 fragments = 12.5%; freq 10 (non-causal "
      "hdim 128, 2-CTA) gives 18.75%. FA4 paper: 10-25% of the entries", lo=0.0, hi=1.0)
param("exp2_emulation_ops", 9.0,
      "CUDA-core lane operations per software exp2 (Cody-Waite split and degree-3 polynomial)",
      "flash_attn/cute/utils.py ex2_emulation_2: clamp (fmax), round-down add of 1.5*2^23, subtract "
      "back, fraction subtract, 3 Horner FMAs, exponent shift and integer add = 9 per element (packed "
      "f32x2 forms halve the issue slots, not the lane work)", lo=4.0, hi=32.0)
param("attn_flash1_warps", 4.0,
      "warps per CTA of FlashAttention-1; each writes a partial output tile to shared memory "
      "per K/V block ('split-K' work partitioning)",
      "FlashAttention-2 paper (Dao 2023, Sec. 3.3) describing FlashAttention-1's 4-warp split-K scheme",
      lo=1.0, hi=16.0)
param("mma_sync_cta_overlap", 0.0,
      "share of the overlap co-resident CTAs could give (softmax of one under the matmuls of another: "
      "1 - 1/CTAs per SM) that kernels built on the warp-level mma.sync realise",
      "physical reasoning: mma.sync reads its A, B and C operands from the register file on every "
      "instruction, the register-file bandwidth the softmax's FP32/SFU instructions also need, and "
      "each warp waits for its own MMA results (synchronous MMA); the FA3 paper (Shah et al. 2024) "
      "builds its GEMM-softmax overlap on the asynchronous wgmma, which reads operands from shared "
      "memory, and explicit scheduling rather than on co-resident CTAs; to be calibrated", lo=0.0, hi=1.0)
param("attn_mask_alu_ops_per_score", 3.0,
      "CUDA-core ops per score element to apply the causal mask in a block the diagonal crosses "
      "(column index, compare against the row's limit, select -inf); blocks wholly below the "
      "diagonal skip it",
      "FlashAttention-2 flash::apply_mask_causal, applied only to the blocks that intersect the "
      "diagonal; counted from the algorithm", lo=0.0, hi=16.0)
param("paged_block_tokens", 16.0,
      "tokens per KV-cache block of vLLM's paged attention (one block is what a warp loads per step)",
      "vLLM default block_size 16 (vllm/config.py CacheConfig; csrc/attention kernels templated on it)",
      lo=1.0, hi=256.0)
param("paged_partition_tokens", 512.0,
      "tokens per partition (CTA) of vLLM's paged attention v2",
      "vLLM csrc/attention/paged_attention_v2.cu PARTITION_SIZE = 512; vllm/attention/ops/paged_attn.py "
      "_PARTITION_SIZE", lo=16.0, hi=65536.0)
param("paged_warps_per_cta", 4.0,
      "threads per CTA of vLLM's paged attention kernel, counted in 32-thread warps (on wave64 "
      "CDNA parts the same threads form half as many wavefronts)",
      "vLLM csrc/attention: NUM_THREADS = 128", lo=1.0, hi=32.0)
param("paged_regs_per_thread", 128.0,
      "registers per thread of vLLM's paged attention kernel (query vector, key/value vectors of a "
      "thread group, partial sums); with the register file it caps the CTAs resident per SM",
      "physical reasoning: head size 128 spread over a 2-thread group holds 64 query + 64 key "
      "elements plus accumulators and addresses; to be calibrated", lo=32.0, hi=255.0)
param("kv_quant_group_size", 32.0,
      "KV-cache elements per quantisation group for sub-byte KV dtypes (int4, int2 ...)",
      "KIVI (Liu et al. 2024) quantises the KV cache in groups of 32 with an fp16 scale and zero point",
      lo=1.0, hi=4096.0)
param("kv_quant_scale_bytes", 4.0,
      "bytes of scale (and zero point) stored per KV quantisation group",
      "KIVI: fp16 scale + fp16 zero point per group", lo=0.0, hi=16.0)
param("kv_dequant_ops_per_elem", 1.5,
      "CUDA-core instructions to turn one quantised KV element into a 16-bit value (convert, scale)",
      "same LOP3/magic-number conversion as weight dequantisation (Kim et al. 2022; Marlin); "
      "fp8->fp16 is one cvt per two elements on Hopper", lo=0.25, hi=8.0)


# ----------------------------------------------------------------------------- counts
def causal_fraction(sq: int, skv: int, causal: bool) -> float:
    """Unmasked share of the Sq x Skv score matrix (bottom-right aligned mask); 0.5 when Sq == Skv."""
    if not causal:
        return 1.0
    return 1.0 - sq / (2.0 * skv) if sq <= skv else skv / (2.0 * sq)


def attention_flops(op: Attention) -> float:
    """FLOPs by the FlashAttention convention for the op's pass."""
    fwd = 4.0 * op.batch * op.seq_q * op.seq_kv * op.heads * op.head_dim
    return fwd * causal_fraction(op.seq_q, op.seq_kv, op.causal) * PASSES[op.pass_]


def kv_bytes_per_elem(op: Attention, dev) -> float:
    """Bytes per cached K or V element, with per-group scales for sub-byte dtypes."""
    kd = op.kv_dtype or op.dtype
    b = DTYPE_BYTES[kd]
    if b < 1:
        b += eff(dev, "kv_quant_scale_bytes") / eff(dev, "kv_quant_group_size")
    return b


def _check(op: Attention, dev) -> str:
    impl = ALIASES.get(op.impl, op.impl)
    if impl in BLACKWELL_ALIASES and dev.arch in BLACKWELL_ARCHS:
        impl = BLACKWELL_ALIASES[impl]
    elif impl in HOPPER_ALIASES:
        impl = HOPPER_ALIASES[impl] if dev.arch == "hopper" else "flash2"
    if op.impl not in IMPLS:
        raise InputError("scenario", "workload.impl", f"unknown attention implementation '{op.impl}'; expected one of {IMPLS}")
    if op.pass_ not in PASSES:
        raise InputError("scenario", "workload.pass", f"expected one of {tuple(PASSES)}, got '{op.pass_}'")
    for f in ("batch", "heads", "kv_heads", "seq_q", "seq_kv", "head_dim"):
        if getattr(op, f) < 1:
            raise InputError("scenario", f"workload.{f}", f"must be a positive integer, got {getattr(op, f)}")
    if op.heads % op.kv_heads:
        raise InputError("scenario", "workload.kv_heads", f"heads ({op.heads}) must be a multiple of kv_heads ({op.kv_heads})")
    tc_peak(dev, op.dtype)
    if op.kv_dtype is not None and op.kv_dtype not in DTYPE_BYTES:
        raise InputError("scenario", "workload.kv_dtype", f"unknown dtype '{op.kv_dtype}'; expected one of {sorted(DTYPE_BYTES)}")
    if impl == "flash3" and dev.arch != "hopper":
        raise InputError("scenario", "workload.impl",
                         f"flash3 needs a Hopper GPU (wgmma, TMA); {dev.name} is {dev.arch}")
    if impl == "flash4" and dev.arch not in BLACKWELL_ARCHS:
        raise InputError("scenario", "workload.impl",
                         f"flash4 needs a datacenter Blackwell GPU (sm100: tcgen05 MMA, Tensor Memory); "
                         f"{dev.name} is {dev.arch}")
    if op.pass_ != "fwd" and impl in ("paged", "flashinfer"):
        raise InputError("scenario", "workload.pass", "paged attention is an inference (forward) kernel")
    return impl


# ----------------------------------------------------------------------------- per-element time
def _score_time(dev, op: Attention, impl: str, bwd: bool, cps: int, Bc: int,
                kv_blocks: float = math.inf, masked: float = 0.0) -> tuple[float, float, float]:
    """Seconds one SM spends per score element: (total, matmul part, softmax part).

    ``kv_blocks``: K/V blocks one CTA visits; flash3's software pipeline hides softmax only in its
    steady state, (n-1)/n of the blocks. ``masked``: share of the visited score elements in blocks
    the causal diagonal crosses (they pay the mask's ALU ops)."""
    sms, d = dev.sms, op.head_dim
    async_mma = impl in ("flash3", "wgmma2", "flash4")
    mma = 1.0 if (async_mma or dev.arch not in ASYNC_MMA_ARCHS) else eff(dev, "mma_sync_fraction")
    rate = tc_peak(dev, op.dtype) * eff(dev, "tc_peak_fraction") * mma / sms
    t_mm = (10.0 if bwd else 4.0) * d / rate
    alu = eff(dev, "attn_bwd_alu_ops_per_score" if bwd else "attn_fwd_alu_ops_per_score")
    alu += masked * eff(dev, "attn_mask_alu_ops_per_score")
    if impl == "flash4":
        # exp2 split between MUFU.EX2 and the polynomial on the FMA pipe; the two pipes run at once
        # (three warpgroups issue to them), which is why FA4 moves part of the exps: the slower pipe paces
        emu = eff(dev, "attn_flash4_exp_emulated_fraction")
        t_sfu = (1.0 - emu) / (sfu_ops_per_s(dev) / sms)
        t_fma = (alu + emu * eff(dev, "exp2_emulation_ops")) / (alu_ops_per_s(dev) / sms)
        t_nm = max(t_sfu, t_fma)
    else:
        t_nm = 1.0 / (sfu_ops_per_s(dev) / sms) + alu / (alu_ops_per_s(dev) / sms)
    if impl == "flash4":
        ov = eff(dev, "attn_flash4_overlap") * (1.0 - 1.0 / max(1.0, kv_blocks))
    elif impl == "flash3":
        ov = eff(dev, "attn_flash3_overlap") * (1.0 - 1.0 / max(1.0, kv_blocks))
    elif impl == "wgmma2":    # no scheduling puts the softmax under the MMAs (FA3's mechanisms absent)
        ov = 0.0
    else:
        ov = eff(dev, "mma_sync_cta_overlap") * (1.0 - 1.0 / cps)
    t = max(t_mm, t_nm) + (1.0 - ov) * min(t_mm, t_nm)
    if impl == "flash1":      # partial outputs of each warp reduced through shared memory, behind barriers
        t += eff(dev, "attn_flash1_warps") * 2 * d * 4 / Bc / smem_Bps(dev)
    return t, t_mm, t_nm


def _fa4_tile(rows: int, d: int) -> tuple[int, int, int]:
    """FlashAttention-4 CTA tile (Br query rows, Bc keys, CTAs per SM).

    Two 128-row query tiles (q_stage 2) when the query is longer than one tile and both S tiles and
    both O accumulators fit in Tensor Memory (2 x 128 + 2 x d columns <= 512, d <= 128); one tile
    otherwise (interface.py: q_stage = 2 only if the packed query exceeds tile_m). A one-tile query
    uses tcgen05's M = 64 when it fits. One CTA per SM: the tile holds all of Tensor Memory."""
    two = rows > FA4_TILE_M and 2 * FA4_TILE_N + 2 * 16 * ceil_div(d, 16) <= TMEM_COLUMNS
    if two:
        return 2 * FA4_TILE_M, FA4_TILE_N, 1
    return (64 if rows <= 64 else FA4_TILE_M), FA4_TILE_N, 1


def fa4_bwd_tile_smem_bytes(d: int, b: float) -> dict[str, float]:
    """Shared-memory bytes one 128-key x 128-query tile of FlashAttention-4's backward moves, by MMA and by use.

    From flash_bwd_sm100.py (1-CTA path): S^T = K Q^T and dP^T = V dO^T read both operands from shared memory;
    dV += P^T dO and dK += dS^T Q take P and dS from Tensor Memory (``a_source=TMEM``) and read dO, Q from
    shared memory; dQ = dS K reads dS (written to shared memory by the compute warps) and K^T. Around them:
    the TMA loads of the tile's Q and dO (and LSE, dPsum in fp32), the compute warps' dS store, the fp32 dQ
    tile staged through ``sdQaccum`` (written by the reduce warps, read by the TMA reduce-add), and the
    broadcast LSE/dPsum reads. ``d`` is the head dim padded to 16 (``tile_hdim``); ``b`` bytes per element."""
    m, n = FA4_BWD_TILE_M, FA4_BWD_TILE_N
    return {"S": (n + m) * d * b, "dP": (n + m) * d * b, "dV": m * d * b, "dK": m * d * b,
            "dQ": (m * n + n * d) * b,
            "other": 2 * m * d * b + 2 * m * 4 + m * n * b + 2 * m * d * 4 + 2 * 4 * m * n / FA4_BWD_BROADCAST_ROWS}


def _fa4_bwd_score_time(dev, op: Attention, masked: float) -> tuple[float, float, float, float]:
    """Seconds one SM spends per score element in FlashAttention-4's backward: (total, MMA, softmax, SMEM).

    Warp roles run at once (flash_bwd_sm100.py: 1 MMA warp, 8 compute warps, 4 dQ-reduce warps, 1 load warp),
    but the MMA warp's main loop (S(j+1); dK(j), dQ(j) after dS(j); dP(j+1); dV(j+1) after P(j+1)) and the
    single-stage S/P, dP/dS and dQ buffers chain them in two alternating phases per query block:
    A: the compute warps turn dP(j) into dS(j) while the MMA pipe runs dV(j) and S(j+1);
    B: the compute warps turn S(j+1) into P(j+1) (the exps) while it runs dK(j), dQ(j) and dP(j+1).
    Phase time = the slower side; tile time = A + B, but no less than the tile's shared-memory traffic
    (every source of it shares the SM's 128 B/clk), the MUFU exps or the FMA-pipe work alone. Each MMA takes
    the longer of its FLOPs at the full tcgen05 rate (x tc_peak_fraction) and its operand bytes from shared
    memory. The exps all go to MUFU.EX2 (``cute.math.exp2``; the backward has no polynomial share)."""
    sms = dev.sms
    d = 16 * ceil_div(op.head_dim, 16)
    b = DTYPE_BYTES[op.dtype]
    m, n = FA4_BWD_TILE_M, FA4_BWD_TILE_N
    scores = m * n
    rate = tc_peak(dev, op.dtype) * eff(dev, "tc_peak_fraction") / sms        # FLOP/s per SM
    smem = smem_Bps(dev)                                                        # B/s per SM
    sb = fa4_bwd_tile_smem_bytes(d, b)
    flops = 2.0 * m * n * d                                                     # each of the five MMAs

    def mma(name: str) -> float:
        return max(flops / rate, sb[name] / smem)

    fma_rate, mufu_rate = alu_ops_per_s(dev) / sms, sfu_ops_per_s(dev) / sms
    alu = eff(dev, "attn_bwd_alu_ops_per_score")
    p_ops = min(alu, FA4_BWD_P_PHASE_OPS) + masked * eff(dev, "attn_mask_alu_ops_per_score")
    ds_ops = max(0.0, alu - FA4_BWD_P_PHASE_OPS)
    t_exp = scores / mufu_rate
    t_p = max(t_exp, scores * p_ops / fma_rate)
    t_ds = scores * ds_ops / fma_rate
    phase_a = max(t_ds, mma("dV") + mma("S"))
    phase_b = max(t_p, mma("dK") + mma("dQ") + mma("dP"))
    t_smem = sum(sb.values()) / smem
    t_fma = scores * (p_ops + ds_ops) / fma_rate
    tile = max(phase_a + phase_b, t_smem, t_exp, t_fma)
    return tile / scores, 5 * flops / rate / scores, max(t_exp, t_fma) / scores, t_smem / scores


def _tiles(dev, smem_need) -> tuple[int, int, int]:
    """Largest (Br, Bc) whose shared-memory footprint fits; CTAs per SM by shared memory."""
    for Br, Bc in TILE_CHOICES:
        need = smem_need(Br, Bc)
        if need <= dev.smem_bytes_per_sm:
            return Br, Bc, max(1, int(dev.smem_bytes_per_sm // need))
    Br, Bc = TILE_CHOICES[-1]
    return Br, Bc, 1


def _visited(n_row_blocks: int, Br: int, Bc: int, sq: int, skv: int, causal: bool, nkb: int) -> np.ndarray:
    """K/V blocks each query block visits (bottom-right aligned causal mask skips the rest)."""
    if not causal:
        return np.full(n_row_blocks, nkb, dtype=float)
    last_key = skv - sq + (np.arange(n_row_blocks) + 1) * Br       # keys visible to the block's last row
    return np.clip(np.ceil(last_key / Bc), 0, nkb)


def _masked(vis: np.ndarray, Br: int, Bc: int, sq: int, skv: int, causal: bool) -> float:
    """Share of the visited (query block, KV block) pairs that the causal diagonal crosses."""
    if not causal or vis.sum() == 0:
        return 0.0
    first_key = skv - sq + np.arange(len(vis)) * Br + 1          # keys visible to each block's first row
    full = np.clip(np.floor(first_key / Bc), 0, vis)
    return float((vis - full).sum() / vis.sum())


def _makespan(per_cta: np.ndarray, copies: int, sms: int) -> float:
    """Work (score elements) on the busiest SM: wave-quantised, and at least the longest CTA."""
    n = len(per_cta) * copies
    return max(ceil_div(n, sms) * float(per_cta.mean()), float(per_cta.max()))


# ----------------------------------------------------------------------------- tiled forward
def _tiled_fwd(op: Attention, dev, impl: str) -> dict:
    B, H, Hkv, d = op.batch, op.heads, op.kv_heads, op.head_dim
    sq, skv, g = op.seq_q, op.seq_kv, op.heads // op.kv_heads
    b, kvb = DTYPE_BYTES[op.dtype], kv_bytes_per_elem(op, dev)
    sms = dev.sms
    Br, Bc, cps = _tiles(dev, lambda Br, Bc: Br * d * b + 2 * 2 * Bc * d * kvb)
    pack = impl != "flash1" and sq * g <= MAX_PACK_ROWS
    if pack:                               # decode-like: the g query heads of a KV head share one tile
        rows, units, share_heads = sq * g, B * Hkv, 1
    else:
        rows, units, share_heads = sq, B * H, g
    if impl == "flash4":
        Br, Bc, cps = _fa4_tile(rows, d)
    else:
        Br = min(Br, 16 * ceil_div(rows, 16))  # a short query pads only to the MMA height (16 rows)
    nqb, nkb = ceil_div(rows, Br), ceil_div(skv, Bc)
    vis = _visited(nqb, Br, Bc, sq, skv, op.causal and not pack, nkb)
    grid = units * nqb
    splits = 1
    if impl in SPLIT_KV_IMPLS and grid < sms:
        splits = max(1, min(nkb, ceil_div(sms, grid)))            # FlashDecoding: split the KV sequence
    chunks = 1
    if impl == "flash1" and units < sms:
        chunks = max(1, min(nqb, ceil_div(sms, units)))           # flash1: split along the query
    # compute: score elements per CTA
    if impl == "flash1":
        per_cta = np.array([vis.sum() / chunks * Br * Bc])
        copies = units * chunks
    else:
        per_cta = vis / splits * Br * Bc
        copies = units * splits
    t_el, t_mm, t_nm = _score_time(dev, op, impl, False, cps, Bc, float(vis.mean()) / splits,
                                   _masked(vis, Br, Bc, sq, skv, op.causal and not pack))
    n_ctas = len(per_cta) * copies
    waves = ceil_div(n_ctas, sms * cps)
    t_compute = _makespan(per_cta, copies, sms) * t_el + waves * eff(dev, "tile_overhead_s")
    # traffic
    q_bytes = B * H * sq * d * b
    o_bytes = q_bytes
    lse = B * H * sq * 4
    kv_once = B * Hkv * skv * d * 2 * kvb
    pairs = units * float(vis.sum())                               # (query block, KV block) pairs visited
    conc = min(n_ctas, sms * cps)
    if impl == "flash1":
        kv_l2 = units * chunks * skv * d * 2 * kvb * (float(vis.sum()) / (nqb * nkb))
        qo_l2 = pairs * Br * d * b * 3 + pairs * Br * 8              # Q read, O read+write, m and l per KV block
        l2 = kv_l2 + qo_l2
        chunk_ws = ceil_div(nqb, chunks) * Br * d * 3 * b
        hbm = (q_bytes + o_bytes + kv_once + lse) if conc * chunk_ws <= dev.l2_bytes else l2
    else:
        kv_l2 = pairs * Bc * d * 2 * kvb
        if kv_once <= dev.l2_bytes:      # all of K and V stay in L2: read from HBM once
            hbm_kv = kv_once
        else:                            # CTAs running together on the same KV head share it in L2
            hbm_kv = max(kv_once, kv_l2 / max(1, min(conc, nqb * share_heads)))
        l2 = q_bytes * splits + kv_l2 + o_bytes + lse
        hbm = q_bytes + hbm_kv + o_bytes + lse
    partials = 2.0 * units * nqb * Br * d * 4 * splits if splits > 1 else 0.0
    l2 += partials
    in_flight = conc * Bc * d * 2 * kvb
    t_hbm = hbm_time(dev, hbm, in_flight)
    t_l2 = l2_time(dev, l2)
    # KV dequantisation (quantised cache) on CUDA cores, spread over the busy SMs
    t_dq = 0.0
    if op.kv_dtype and op.kv_dtype != op.dtype:
        active = min(sms, n_ctas)
        t_dq = kv_l2 / kvb * eff(dev, "kv_dequant_ops_per_elem") / (alu_ops_per_s(dev) * active / sms)
    tc = f"tensor_core_{op.dtype}" if t_mm >= t_nm else "softmax_sfu"
    terms = {tc: t_compute, "hbm_bandwidth": t_hbm, "l2_bandwidth": t_l2}
    serial = {}
    if t_dq:
        ov = eff(dev, "simt_overlap")
        terms["dequant_simt"], serial["dequant_simt"] = ov * t_dq, (1 - ov) * t_dq
    launches = 2 if splits > 1 else 1
    time, bound, allterms = compose(terms, serial, launches, dev)
    return dict(time=time, bound=bound, terms=allterms, hbm=hbm, l2=l2,
                detail=dict(tile=(Br, Bc), ctas=n_ctas, ctas_per_sm=cps, waves=waves, split_kv=splits,
                            q_chunks=chunks, packed_gqa=pack, kv_bytes=kv_once, dequant_s=t_dq,
                            matmul_s_per_score=t_mm, softmax_s_per_score=t_nm))


# ----------------------------------------------------------------------------- tiled backward
def _tiled_bwd(op: Attention, dev, impl: str) -> dict:
    B, H, d = op.batch, op.heads, op.head_dim
    sq, skv = op.seq_q, op.seq_kv
    b = DTYPE_BYTES[op.dtype]
    sms = dev.sms
    # K, V resident; Q and dO double-buffered; the P/dS tile
    Br, Bc, cps = _tiles(dev, lambda Br, Bc: 2 * Bc * d * b + 2 * 2 * Br * d * b + Br * Bc * b)
    if impl == "flash4":
        Br, Bc, cps = FA4_BWD_TILE_M, FA4_BWD_TILE_N, 1
    nqb, nkb = ceil_div(sq, Br), ceil_div(skv, Bc)
    vis_q = _visited(nqb, Br, Bc, sq, skv, op.causal, nkb)        # per query block: KV blocks
    pairs_per_head = float(vis_q.sum())
    # per KV block j: query blocks that see it (the same pairs, counted from the KV side)
    vis_kv = np.array([(vis_q > j).sum() for j in range(nkb)], dtype=float)
    units = B * H
    chunks = 1
    if impl == "flash1":
        chunks = max(1, min(nkb, ceil_div(sms, units)))
        per_cta = np.array([pairs_per_head / chunks * Br * Bc])
        copies = units * chunks
    else:
        per_cta = vis_kv * Br * Bc
        copies = units
    masked = _masked(vis_q, Br, Bc, sq, skv, op.causal)
    t_smem = 0.0
    if impl == "flash4":
        t_el, t_mm, t_nm, t_smem = _fa4_bwd_score_time(dev, op, masked)
    else:
        t_el, t_mm, t_nm = _score_time(dev, op, impl, True, cps, Bc, masked=masked)
    n_ctas = len(per_cta) * copies
    waves = ceil_div(n_ctas, sms * cps)
    t_compute = _makespan(per_cta, copies, sms) * t_el + waves * eff(dev, "tile_overhead_s")
    pairs = units * pairs_per_head
    head_io = B * H * sq * d * b                                    # one of Q, O, dO, dQ
    kv_io = B * H * skv * d * b                                     # one of K, V, dK, dV (per query head)
    qdo_l2 = pairs * Br * d * b * 2 + pairs * Br * 8                # Q and dO (+ LSE, D) per visited pair
    dq_l2 = pairs * Br * d * 4                                      # fp32 dQ atomic adds, reduced in L2
    l2 = 2 * kv_io + qdo_l2 + dq_l2 + 2 * kv_io                    # K,V read; dK,dV written
    kv_hbm = 2 * B * op.kv_heads * skv * d * b + 2 * kv_io          # K,V once per KV head; dK,dV
    q_once = 2 * head_io + B * H * sq * (8 + d * 4 * 2)             # Q, dO, LSE, D, fp32 dQ once
    conc = min(n_ctas, sms * cps)
    if 2 * head_io + B * H * sq * d * 4 <= dev.l2_bytes:           # Q, dO, dQ accumulator fit in L2
        hbm = kv_hbm + q_once
    else:                                  # CTAs on neighbouring KV blocks of a head share them in L2
        hbm = kv_hbm + max(q_once, (qdo_l2 + dq_l2) / max(1, min(conc, nkb)))
    t_hbm = hbm_time(dev, hbm, conc * Br * d * 2 * b)
    t_l2 = l2_time(dev, l2)
    tc = f"tensor_core_{op.dtype}" if t_mm >= t_nm else "softmax_sfu"
    if t_smem >= max(t_mm, t_nm):
        tc = "smem_bandwidth"
    time, bound, allterms = compose({tc: t_compute, "hbm_bandwidth": t_hbm, "l2_bandwidth": t_l2}, None, 1, dev)
    # the two small kernels around it: D = rowsum(dO * O), and the fp32 dQ -> 16-bit conversion
    pre = elementwise_cost(Elementwise(2 * head_io, B * H * sq * 4, flops=2 * B * H * sq * d), dev)
    post = elementwise_cost(Elementwise(B * H * sq * d * 4, head_io), dev)
    for c in (pre, post):
        time += c.time_s
        hbm += c.bytes["hbm"]
        for k, v in c.terms.items():
            allterms[k] = allterms.get(k, 0.0) + v
    return dict(time=time, bound=bound, terms=allterms, hbm=hbm, l2=l2,
                detail=dict(tile=(Br, Bc), ctas=n_ctas, ctas_per_sm=cps, waves=waves, kv_chunks=chunks,
                            matmul_s_per_score=t_mm, softmax_s_per_score=t_nm, smem_s_per_score=t_smem,
                            score_s=t_el))


# ----------------------------------------------------------------------------- naive
def _naive_kernels(op: Attention, bwd: bool) -> list:
    """The kernels of PyTorch's reference attention, as (name, op) in launch order."""
    BH, sq, skv, d, dt = op.batch * op.heads, op.seq_q, op.seq_kv, op.head_dim, op.dtype
    b = DTYPE_BYTES[dt]
    N = BH * sq * skv                                               # score elements
    q_io = BH * sq * d * b                                          # one of Q, O, dO, dQ
    kv_h, kv_g = BH * skv * d * b, op.batch * op.kv_heads * skv * d * b   # K or V: per query head, per KV head
    # K and V need a copy unless they already sit head-major in a KV cache (decode) with one query head each
    kv_copy = not (sq < skv and op.heads == op.kv_heads)
    if not bwd:
        ks = [("q_layout", Elementwise(q_io, q_io))]
        if kv_copy:
            ks += [("k_layout", Elementwise(kv_g, kv_h)), ("v_layout", Elementwise(kv_g, kv_h))]
        ks.append(("qk", Gemm(m=sq, n=skv, k=d, batch=BH, dtype=dt)))
        if op.causal:
            ks.append(("mask", Elementwise(N * b, N * b)))
        ks += [("softmax", Elementwise(N * b, N * b, flops=5.0 * N)),   # max, subtract, exp, sum, divide
               ("pv", Gemm(m=sq, n=d, k=skv, batch=BH, dtype=dt)),
               ("o_layout", Elementwise(q_io, q_io))]
        return ks
    ks = [("do_layout", Elementwise(q_io, q_io)),
          ("dv", Gemm(m=skv, n=d, k=sq, batch=BH, dtype=dt)),      # P^T dO
          ("dp", Gemm(m=sq, n=skv, k=d, batch=BH, dtype=dt)),      # dO V^T
          ("softmax_bwd", Elementwise(2 * N * b, N * b, flops=3.0 * N))]
    if op.causal:
        ks.append(("mask_bwd", Elementwise(N * b, N * b)))
    ks += [("dq", Gemm(m=sq, n=d, k=skv, batch=BH, dtype=dt)),     # dS K
           ("dk", Gemm(m=skv, n=d, k=sq, batch=BH, dtype=dt)),     # dS^T Q
           ("dq_layout", Elementwise(q_io, q_io))]
    if kv_copy:
        ks += [("dk_layout", Elementwise(kv_h, kv_g)), ("dv_layout", Elementwise(kv_h, kv_g))]
    return ks


def _naive(op: Attention, dev, bwd: bool) -> dict:
    time, hbm, l2, terms, parts = 0.0, 0.0, 0.0, {}, []
    for name, k in _naive_kernels(op, bwd):
        c = price_gemm(k, dev) if isinstance(k, Gemm) else elementwise_cost(k, dev)
        time += c.time_s
        hbm += c.bytes.get("hbm", 0.0)
        l2 += c.bytes.get("l2", 0.0)
        for t, v in c.terms.items():
            terms[t] = terms.get(t, 0.0) + v
        parts.append((name, c.time_s, c.bound))
    bound = max(parts, key=lambda p: p[1])[2]
    return dict(time=time, bound=bound, terms=terms, hbm=hbm, l2=l2,
                detail=dict(kernels=[{"name": n, "time_s": t, "bound": bd} for n, t, bd in parts],
                            score_bytes=op.batch * op.heads * op.seq_q * op.seq_kv * DTYPE_BYTES[op.dtype]))


# ----------------------------------------------------------------------------- vLLM paged decode
def _paged_vllm(op: Attention, dev) -> dict:
    """vLLM PagedAttention v1/v2 decode: per-warp block walks, Little's law on one block per warp."""
    B, H, Hkv, d, skv = op.batch, op.heads, op.kv_heads, op.head_dim, op.seq_kv
    b, kvb = DTYPE_BYTES[op.dtype], kv_bytes_per_elem(op, dev)
    sms = dev.sms
    part, bt = eff(dev, "paged_partition_tokens"), eff(dev, "paged_block_tokens")
    # the kernel's thread count (NUM_THREADS, counted in 32-thread warps by the parameter) is split
    # into warps of the device's width; each warp (wavefront) walks one block at a time
    threads = max(1, int(eff(dev, "paged_warps_per_cta"))) * WARP_THREADS
    warps = max(1, threads // WAVE_WIDTH.get(dev.arch, WARP_THREADS))
    parts = ceil_div(skv, part)
    v2 = parts > 1 and not (skv <= 8192 and B * H > 512)          # vLLM's v1/v2 rule
    splits = parts if v2 else 1
    ctas = B * H * splits
    tokens = min(skv, part) if v2 else skv                          # per CTA
    regs = threads * eff(dev, "paged_regs_per_thread") * 4
    smem = tokens * 4 + 2 * warps * d * 4                           # logits + cross-warp reduction buffers
    cps = max(1, min(int(dev.register_file_kb_per_sm * 1024 // regs), int(dev.smem_bytes_per_sm // smem)))
    conc = min(ctas, sms * cps)
    lat = eff(dev, "dram_latency_s") + eff(dev, "l2_latency_s")     # block-table lookup, then the block
    in_flight = conc * min(warps, ceil_div(tokens, bt)) * bt * d * kvb
    kv_once = B * Hkv * skv * d * 2 * kvb
    loaded = kv_once * (H // Hkv)                                   # each query head's CTA reads its KV head
    q_bytes = o_bytes = B * H * d * b
    partials = 2.0 * B * H * splits * (d * 4 + 8) if v2 else 0.0   # fp32 partial outputs, max and sum
    hbm = kv_once + q_bytes + o_bytes
    l2 = loaded + q_bytes * splits + o_bytes + partials
    ceiling = dev.hbm_Bps * eff(dev, "hbm_efficiency")
    achievable = min(ceiling, in_flight / lat)
    # K phase, softmax barrier, V phase: two walks, each starting with one round trip
    t_hbm = 2 * lat + max(hbm / ceiling, loaded / achievable)
    t_l2 = l2_time(dev, l2)
    flops = 4.0 * B * H * skv * d                                   # q.k and p.v on CUDA cores (FMA)
    terms = {"hbm_bandwidth": t_hbm, "l2_bandwidth": t_l2, "vector_fp32": flops / dev.vector_flops}
    serial = {}
    t_dq = 0.0
    if op.kv_dtype and op.kv_dtype != op.dtype:
        t_dq = loaded / kvb * eff(dev, "kv_dequant_ops_per_elem") / (alu_ops_per_s(dev) * min(sms, conc) / sms)
        ov = eff(dev, "simt_overlap")
        terms["dequant_simt"], serial["dequant_simt"] = ov * t_dq, (1 - ov) * t_dq
    time, bound, allterms = compose(terms, serial, 2 if v2 else 1, dev)
    return dict(time=time, bound=bound, terms=allterms, hbm=hbm, l2=l2,
                detail=dict(kernel="vllm_paged_v2" if v2 else "vllm_paged_v1", ctas=ctas, ctas_per_sm=cps,
                            split_kv=splits, kv_bytes=kv_once, bytes_in_flight=in_flight,
                            achievable_Bps=achievable, latency_bound=achievable < ceiling, dequant_s=t_dq))


# ----------------------------------------------------------------------------- pricer
@pricer(Attention)
def price_attention(op: Attention, system) -> OpCost:
    dev = device_of(system)
    impl = _check(op, dev)
    passes = {"fwd": (False,), "bwd": (True,), "fwd_bwd": (False, True)}[op.pass_]
    res = []
    for bwd in passes:
        if impl == "naive":
            res.append(_naive(op, dev, bwd))
        elif impl == "paged" and op.seq_q == 1:
            res.append(_paged_vllm(op, dev))
        elif bwd:
            res.append(_tiled_bwd(op, dev, impl))
        else:
            res.append(_tiled_fwd(op, dev, impl))
    time = sum(r["time"] for r in res)
    terms: dict[str, float] = {}
    for r in res:
        for k, v in r["terms"].items():
            terms[k] = terms.get(k, 0.0) + v
    bound = max(res, key=lambda r: r["time"])["bound"]
    detail = {"impl": impl, "causal_fraction": causal_fraction(op.seq_q, op.seq_kv, op.causal)}
    for bwd, r in zip(passes, res):
        detail["bwd" if bwd else "fwd"] = r["detail"] | {"time_s": r["time"], "bound": r["bound"]}
    return OpCost(time_s=time, bound=bound, flops=attention_flops(op),
                  bytes={"hbm": sum(r["hbm"] for r in res), "l2": sum(r["l2"] for r in res)},
                  terms=terms, detail=detail)
