"""The operator vocabulary: what a technique's task graph is made of.

Ops are plain frozen dataclasses of sizes; ``sim.cost.cost(op, system)`` prices them. Shapes
follow BLAS: a Gemm is C[m,n] = A[m,k] @ B[k,n], where B is the weight in an LLM layer
(m = tokens, n = output features, k = input features).
"""
from __future__ import annotations

from dataclasses import dataclass

# bytes per element of each storage dtype (packing of sub-byte types included; scales are extra)
DTYPE_BYTES = {
    "fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1,
    "fp6": 0.75, "int4": 0.5, "nf4": 0.5, "fp4": 0.5, "int3": 0.375, "int2": 0.25, "int1": 0.125,
}


@dataclass(frozen=True)
class Gemm:
    m: int
    n: int
    k: int
    dtype: str = "fp16"              # activation / compute dtype
    w_dtype: str | None = None       # weight storage dtype when it differs (weight-only low-bit)
    group_size: int = 128            # weights per quantisation scale
    sparsity: float = 0.0            # fraction of zero weights
    sparsity_pattern: str = "unstructured"   # unstructured | 2:4
    batch: int = 1                   # batched GEMM count
    dequant_overlap: float | None = None   # share of CUDA-core dequant hidden under MMA/loads; None = the
                                           # device's `simt_overlap` (kernels differ: Marlin ~1, old GPTQ ~0)
    name: str = "gemm"


@dataclass(frozen=True)
class Attention:
    batch: int
    heads: int
    kv_heads: int
    seq_q: int
    seq_kv: int
    head_dim: int
    causal: bool = True
    dtype: str = "fp16"
    pass_: str = "fwd"               # fwd | bwd | fwd_bwd
    impl: str = "flash2"             # naive | flash1 | flash2 | flash3 | paged | ...
    kv_dtype: str | None = None      # quantized KV cache dtype (decode)
    name: str = "attention"


@dataclass(frozen=True)
class Elementwise:
    """A bandwidth-bound kernel (norm, activation, softmax, residual add, embedding gather)."""
    bytes_read: float
    bytes_written: float
    flops: float = 0.0
    level: str = "hbm"               # hbm | l2
    name: str = "elementwise"


@dataclass(frozen=True)
class Collective:
    op: str                          # all_reduce | all_gather | reduce_scatter | all_to_all | send_recv
    bytes: float                     # per-GPU buffer, as nccl-tests counts it
    gpus: int
    algo: str | None = None          # ring | tree | nvls | None (pick the best, as NCCL does)
    name: str = "collective"


@dataclass(frozen=True)
class Transfer:
    src: str                         # hbm | host | nvme
    dst: str
    bytes: float
    pinned: bool = True
    name: str = "transfer"
    # NVMe legs only: request size and pattern (None = large streaming requests, bandwidth-bound),
    # requests in flight over all threads, and GPUDirect Storage (NVMe DMA to/from GPU memory).
    pattern: str = "sequential"      # sequential | random
    block_bytes: float | None = None
    queue_depth: int = 1
    gds: bool = False
    # NVMe <-> GPU through a host bounce buffer: "pipelined" (chunks overlap the NVMe and PCIe legs) or
    # "serial" (the whole buffer crosses one leg, then the other, as DeepSpeed's ds_io benchmark does).
    bounce: str = "pipelined"


@dataclass(frozen=True)
class HostOp:
    """Work on the CPU (e.g. the Adam step of ZeRO-Offload): FLOPs and DRAM bytes."""
    flops: float
    bytes: float
    name: str = "host_op"
