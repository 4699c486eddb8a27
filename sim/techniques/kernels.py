"""Single-op workload kinds of ``gpusim predict``: gemm, attention, memory, collective, transfer.

Each kind validates its fields (unknown ones are errors), builds one op of ``sim.ops``, prices it
with ``sim.cost.cost`` and reports the contract of docs/scenarios.md: whether the operands fit
their memory tier, the time, what bounds it (in words too), and the kind's metrics counted the
way the published benchmarks count them, so a prediction can be held against a measurement.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sim.cost import OpCost, cost
from sim.cost.efficiency import provenance
from sim.errors import InputError
from sim.ops import DTYPE_BYTES, Attention, Collective, Elementwise, Gemm, HostOp, Transfer
from sim.scenario import Prediction, workload_kind

WHERE = "scenario"


class _Workload(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# ------------------------------------------------------------------ schemas
class GemmIn(_Workload):
    m: int = Field(gt=0, description="rows of A and C (tokens)")
    n: int = Field(gt=0, description="columns of B and C (output features)")
    k: int = Field(gt=0, description="inner dimension (input features)")
    dtype: Literal["fp32", "tf32", "fp16", "bf16", "fp8", "int8"]
    w_dtype: Literal["int4", "int3", "int2", "fp4", "nf4", "fp6", "fp8", "int8"] | None = None
    group_size: int = Field(default=128, gt=0, description="weights per quantisation scale")
    sparsity: float = Field(default=0.0, ge=0.0, lt=1.0, description="fraction of zero weights")
    sparsity_pattern: Literal["unstructured", "2:4"] = "unstructured"
    batch: int = Field(default=1, gt=0, description="independent GEMMs of this shape (batched GEMM)")


class AttentionIn(_Workload):
    batch: int = Field(gt=0)
    heads: int = Field(gt=0, description="query heads")
    kv_heads: int | None = Field(default=None, gt=0, description="key/value heads (GQA/MQA); default = heads")
    seq_q: int = Field(gt=0, description="query tokens per sequence (1 for decode)")
    seq_kv: int = Field(gt=0, description="key/value tokens per sequence (cached + new)")
    head_dim: int = Field(gt=0)
    causal: bool
    dtype: Literal["fp32", "fp16", "bf16", "fp8"]
    pass_: Literal["fwd", "bwd", "fwd_bwd"] = Field(default="fwd", alias="pass")
    impl: Literal["naive", "flash1", "flash2", "flash3", "paged", "sdpa", "triton", "xformers", "cudnn",
                  "cutlass", "flashinfer", "flash4"] = "flash2"
    kv_dtype: Literal["fp16", "bf16", "fp8", "int8", "int4", "int2"] | None = None


# STREAM kernels: (arrays read, arrays written, FLOPs per element); one array = `bytes`
STREAM = {"read": (1, 0, 0), "write": (0, 1, 0), "copy": (1, 1, 0), "scale": (1, 1, 1), "triad": (2, 1, 2)}
STREAM_ELEM_BYTES = 8      # STREAM and gpu-stream use fp64 arrays; only the FLOP count depends on it


class MemoryIn(_Workload):
    op: Literal["read", "write", "copy", "scale", "triad"]
    bytes: float = Field(gt=0, description="size of ONE array, bytes (STREAM convention)")
    level: Literal["hbm", "l2"] = "hbm"
    passes: int = Field(default=1, gt=0, description="sweeps over the arrays in one kernel launch "
                                                     "(cache benchmarks re-read a resident set many times)")


class CollectiveIn(_Workload):
    op: Literal["all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv"]
    bytes: float = Field(gt=0, description="per-GPU buffer, bytes, as nccl-tests counts it")
    gpus: int = Field(gt=0)
    algo: Literal["ring", "tree", "nvls"] | None = None


class TransferIn(_Workload):
    src: Literal["hbm", "host", "nvme"]
    dst: Literal["hbm", "host", "nvme"]
    bytes: float = Field(gt=0)
    pinned: bool = True
    # NVMe request shape (optional; default: large streaming requests, bandwidth-bound)
    pattern: Literal["sequential", "random"] = "sequential"
    block_bytes: float | None = Field(default=None, gt=0, description="bytes per NVMe request (fio --bs)")
    queue_depth: int = Field(default=1, ge=1, description="NVMe requests in flight over all threads "
                                                          "(fio numjobs x iodepth)")
    gds: bool = Field(default=False, description="GPUDirect Storage: NVMe <-> GPU without a host bounce buffer")
    bounce: Literal["pipelined", "serial"] = Field(
        default="pipelined", description="NVMe <-> GPU through the host bounce buffer: legs overlapped in chunks, "
                                         "or the whole buffer over one leg then the other")
    duration_s: float | None = Field(
        default=None, gt=0, description="a time-based run (fio --time_based --runtime): the transfer runs this "
                                        "long, moving at most `bytes`; gbps = bytes moved / duration_s")


# ------------------------------------------------------------------ shared helpers
def _need_dtype(device, dtype: str, field: str = "workload.dtype"):
    if dtype not in device.peak_tflops:
        raise InputError(WHERE, field, f"{device.name} has no {dtype} matrix-unit peak; "
                         f"got {dtype!r}, expected one of {sorted(device.peak_tflops)}")


def _price(op, system, field: str) -> OpCost:
    """cost(), with a physically impossible request reported as bad input on ``field``. A single-op
    kind times one kernel by itself, so its launch is the isolated one (``isolated_kernel``)."""
    from sim.cost.common import isolated_kernel
    try:
        with isolated_kernel():
            return cost(op, system)
    except InputError:
        raise
    except (ValueError, KeyError) as e:
        msg = e.args[0] if e.args else str(e)
        raise InputError(WHERE, field, str(msg)) from None


_RESOURCE_BYTES = {"hbm_bandwidth": "hbm", "l2_bandwidth": "l2", "nvlink": "nvlink", "pcie": "pcie",
                   "network": "network", "nvme_read": "nvme", "nvme_write": "nvme", "dram_bandwidth": "dram"}
_LABEL = {"hbm_bandwidth": "HBM", "l2_bandwidth": "L2", "dram_bandwidth": "host DRAM", "pcie": "PCIe",
          "nvlink": "NVLink", "network": "network", "nvme_read": "NVMe read", "nvme_write": "NVMe write",
          "launch_overhead": "launch-overhead", "cpu": "CPU"}


def _rate(x: float, unit: str) -> str:
    """1.73e12 B/s -> '1.73 TB/s'; 3.2e14 FLOP/s -> '320 TFLOP/s'."""
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
        if x >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def explain(oc: OpCost) -> str:
    """One sentence: which resource bounds the op and at what achievable rate."""
    if isinstance(oc.detail, dict) and oc.detail.get("explanation"):
        return str(oc.detail["explanation"])
    b, t = oc.bound, oc.terms.get(oc.bound)
    if b.startswith("tensor_core") and t:
        return (f"Tensor-Core-bound ({b.removeprefix('tensor_core_')}): {oc.flops:.3g} FLOP at "
                f"{_rate(oc.flops / t, 'FLOP/s')} achievable")
    key = _RESOURCE_BYTES.get(b)
    if key and t and oc.bytes.get(key):
        return f"{_LABEL.get(b, b)}-bound: {oc.bytes[key]:.3g} bytes at {_rate(oc.bytes[key] / t, 'B/s')} achievable"
    others = ", ".join(f"{k} {v * 1e6:.3g} us" for k, v in oc.terms.items())
    return f"{_LABEL.get(b, b)}-bound ({others})"


def _jsonable(x):
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _jsonable(dataclasses.asdict(x))
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, bool, int)) or x is None:
        return x
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return v if math.isfinite(v) else None


def _prediction(op, oc: OpCost, system, *, fits: bool, memory: dict, metrics: dict, warnings=()) -> Prediction:
    breakdown = {"op": _jsonable(op), "terms_s": _jsonable(oc.terms), "bytes": _jsonable(oc.bytes),
                 "flops": oc.flops, "detail": _jsonable(oc.detail), "explanation": explain(oc)}
    mem = {"hbm": 0.0, "host": 0.0, "nvme": 0.0}
    mem.update({k: float(v) for k, v in memory.items()})
    return Prediction(fits=bool(fits), time_s=float(oc.time_s), bound=oc.bound, memory_bytes=mem,
                      metrics=_jsonable(metrics), breakdown=breakdown,
                      provenance=provenance(system.device), warnings=list(warnings))


def _per_s(x: float, t: float) -> float:
    return x / t if t > 0 else 0.0


# ------------------------------------------------------------------ gemm
def gemm_flops(w: GemmIn) -> float:
    """2 per multiply-add of the dense shape (sparse and low-bit GEMMs are counted dense, as published)."""
    return 2.0 * w.m * w.n * w.k * w.batch


def gemm_bytes(w: GemmIn) -> float:
    """A, B (stored: low-bit packed with fp16 scales, sparse without the zeros) and C, all batches."""
    a = w.m * w.k * DTYPE_BYTES[w.dtype]
    b = w.k * w.n * DTYPE_BYTES[w.w_dtype or w.dtype] * (1.0 - w.sparsity)
    if w.w_dtype:
        b += math.ceil(w.k / w.group_size) * w.n * 2
    c_bytes = {"fp8": 2, "int8": 4}.get(w.dtype, DTYPE_BYTES[w.dtype])   # fp8 -> bf16, int8 -> int32 output
    return float(w.batch * (a + b + w.m * w.n * c_bytes))


@workload_kind("gemm", GemmIn)
def predict_gemm(w: GemmIn, system, model=None) -> Prediction:
    d = system.device
    _need_dtype(d, w.dtype)
    if w.sparsity_pattern == "2:4" and w.sparsity != 0.5:
        raise InputError(WHERE, "workload.sparsity", f"got {w.sparsity}; sparsity_pattern '2:4' means 0.5 "
                         "(two zeros in every four weights)")
    if w.sparsity_pattern == "2:4" and not d.sparse_24:
        raise InputError(WHERE, "workload.sparsity_pattern", f"{d.name} has no 2:4 sparse Tensor Cores")
    op = Gemm(w.m, w.n, w.k, w.dtype, w.w_dtype, w.group_size, w.sparsity, w.sparsity_pattern, w.batch)
    oc = _price(op, system, "workload")
    need = gemm_bytes(w)
    flops = gemm_flops(w)
    return _prediction(op, oc, system, fits=need <= d.hbm_bytes, memory={"hbm": need},
                       metrics={"tflops": _per_s(flops, oc.time_s) / 1e12, "flops": flops})


# ------------------------------------------------------------------ attention
def attention_bytes(w: AttentionIn) -> float:
    """Q, K, V, O (+ the softmax statistics); gradients of each for a backward pass; the score
    matrix too when the implementation materialises it (naive)."""
    b = DTYPE_BYTES[w.dtype]
    kvb = DTYPE_BYTES[w.kv_dtype or w.dtype]
    kvh = w.kv_heads or w.heads
    q = w.batch * w.heads * w.seq_q * w.head_dim * b
    kv = 2 * w.batch * kvh * w.seq_kv * w.head_dim * kvb
    stats = w.batch * w.heads * w.seq_q * 4
    total = 2 * q + kv + stats
    if w.pass_ != "fwd":
        total += 2 * q + 2 * w.batch * kvh * w.seq_kv * w.head_dim * b
    if w.impl == "naive":
        total += w.batch * w.heads * w.seq_q * w.seq_kv * b
    return float(total)


@workload_kind("attention", AttentionIn)
def predict_attention(w: AttentionIn, system, model=None) -> Prediction:
    d = system.device
    _need_dtype(d, w.dtype)
    kv = w.kv_heads or w.heads
    if w.heads % kv:
        raise InputError(WHERE, "workload.kv_heads", f"got {kv}; heads ({w.heads}) must be a multiple of it")
    if w.impl == "flash3" and d.arch not in ("hopper", "blackwell"):
        raise InputError(WHERE, "workload.impl", f"flash3 needs Hopper (wgmma/TMA); {d.name} is {d.arch}")
    op = Attention(w.batch, w.heads, w.kv_heads or w.heads, w.seq_q, w.seq_kv, w.head_dim, w.causal,
                   w.dtype, w.pass_, w.impl, w.kv_dtype)
    oc = _price(op, system, "workload")
    from sim.cost.attention import attention_flops     # FlashAttention convention (docs/scenarios.md)
    need = attention_bytes(w)
    flops = attention_flops(op)
    return _prediction(op, oc, system, fits=need <= d.hbm_bytes, memory={"hbm": need},
                       metrics={"tflops": _per_s(flops, oc.time_s) / 1e12, "flops": flops})


# ------------------------------------------------------------------ memory (STREAM-like)
@workload_kind("memory", MemoryIn)
def predict_memory(w: MemoryIn, system, model=None) -> Prediction:
    d = system.device
    n_read, n_write, flops_per_elem = STREAM[w.op]
    op = Elementwise(bytes_read=w.passes * n_read * w.bytes, bytes_written=w.passes * n_write * w.bytes,
                     flops=w.passes * flops_per_elem * w.bytes / STREAM_ELEM_BYTES, level=w.level, name=f"stream_{w.op}")
    oc = _price(op, system, "workload")
    footprint = (n_read + n_write) * w.bytes
    warnings = []
    fits = footprint <= d.hbm_bytes
    if w.level == "l2" and footprint > d.l2_bytes:
        fits = False
        warnings.append(f"level l2: {footprint:.3g} bytes of arrays exceed the {d.l2_bytes:.3g}-byte L2; "
                        "they cannot stay L2-resident")
    moved = w.passes * (n_read + n_write) * w.bytes
    return _prediction(op, oc, system, fits=fits, memory={"hbm": footprint},
                       metrics={"gbps": _per_s(moved, oc.time_s) / 1e9, "bytes_moved": moved},
                       warnings=warnings)


# ------------------------------------------------------------------ collective
def collective_buffers(w: CollectiveIn) -> float:
    """Send + receive buffers one GPU holds, as nccl-tests allocates them."""
    n = w.gpus
    if w.op in ("all_gather", "reduce_scatter"):
        return w.bytes + w.bytes / n
    return 2.0 * w.bytes


@workload_kind("collective", CollectiveIn)
def predict_collective(w: CollectiveIn, system, model=None) -> Prediction:
    from sim.cost.collective import algorithms
    if w.gpus > system.cluster.gpus:
        raise InputError(WHERE, "workload.gpus",
                         f"got {w.gpus} but the cluster has {system.cluster.gpus} GPU(s); "
                         f"add cluster: {{gpus: {w.gpus}}} (gpus_per_node defaults to the host's GPUs)")
    if w.algo is not None and w.gpus > 1:
        choices = algorithms(w.op, w.gpus, system)
        if w.algo not in choices:
            raise InputError(WHERE, "workload.algo",
                             f"got {w.algo!r}, which cannot run {w.op} on {w.gpus} GPUs of {system.device.name} "
                             f"({system.cluster.intra_node}, arch {system.device.arch}); expected one of {choices}")
    op = Collective(w.op, w.bytes, w.gpus, w.algo)
    oc = _price(op, system, "workload")
    need = collective_buffers(w)
    algbw = oc.detail.get("algbw_Bps", 0.0)
    busbw = oc.detail.get("busbw_Bps", 0.0)
    return _prediction(op, oc, system, fits=need <= system.device.hbm_bytes, memory={"hbm": need},
                       metrics={"algbw_gbps": algbw / 1e9, "busbw_gbps": busbw / 1e9})


# ------------------------------------------------------------------ transfer
@workload_kind("transfer", TransferIn)
def predict_transfer(w: TransferIn, system, model=None) -> Prediction:
    from sim.cost.transfer import capacity
    h = system.host
    if w.src == w.dst and w.src != "host":
        raise InputError(WHERE, "workload.dst", f"got {w.dst!r} = src; a transfer moves between tiers "
                         "(use kind 'memory' for a copy inside GPU memory)")
    if "nvme" in (w.src, w.dst) and h.nvme_bytes <= 0:
        field = "workload.src" if w.src == "nvme" else "workload.dst"
        raise InputError(WHERE, field, f"host {h.name} has no NVMe drives")
    nvme = "nvme" in (w.src, w.dst)
    if (w.block_bytes is not None or w.pattern == "random") and not nvme:
        field = "workload.block_bytes" if w.block_bytes is not None else "workload.pattern"
        raise InputError(WHERE, field, "request sizes and patterns are modelled for NVMe transfers only; "
                         f"got {w.src} -> {w.dst}")
    if w.pattern == "random" and w.block_bytes is None:
        raise InputError(WHERE, "workload.block_bytes", "missing; a random pattern needs its request size "
                         "in bytes (e.g. 4096)")
    if w.gds and {w.src, w.dst} != {"nvme", "hbm"}:
        raise InputError(WHERE, "workload.gds", f"GPUDirect Storage moves between nvme and hbm; got "
                         f"{w.src} -> {w.dst}")
    if w.bounce == "serial" and ({w.src, w.dst} != {"nvme", "hbm"} or w.gds):
        raise InputError(WHERE, "workload.bounce", "serial staging is the host bounce buffer between nvme and "
                         f"hbm without gds; got {w.src} -> {w.dst}{' with gds' if w.gds else ''}")
    field = "workload.block_bytes" if w.block_bytes is not None else "workload"

    def op_of(nbytes):
        return Transfer(w.src, w.dst, nbytes, w.pinned, pattern=w.pattern, block_bytes=w.block_bytes,
                        queue_depth=w.queue_depth, gds=w.gds, bounce=w.bounce)
    op = op_of(w.bytes)
    oc = _price(op, system, field)
    if w.duration_s is not None and oc.time_s > w.duration_s:   # time-based: the bytes moved in duration_s
        moved = _bytes_in(lambda b: _price(op_of(b), system, field).time_s, w.bytes, w.duration_s)
        op = op_of(moved)
        oc = _price(op, system, field)
        oc = oc.__class__(w.duration_s, oc.bound, oc.flops, oc.bytes, oc.terms,
                          {**oc.detail, "time_based": {"duration_s": w.duration_s, "bytes_moved": moved}})
    need = {"hbm": 0.0, "host": 0.0, "nvme": 0.0}
    for tier in (w.src, w.dst):
        need[tier] += w.bytes
    warnings = [f"{tier}: {need[tier]:.3g} bytes exceed its {capacity(system, tier):.3g}-byte capacity"
                for tier in need if need[tier] > capacity(system, tier)]
    return _prediction(op, oc, system, fits=not warnings, memory=need,
                       metrics={"gbps": _per_s(op.bytes, oc.time_s) / 1e9}, warnings=warnings)


def _bytes_in(time_of, most: float, duration_s: float) -> float:
    """Bytes a transfer moves in ``duration_s`` (its time grows with its bytes): bisection on [0, most]."""
    lo, hi = 0.0, most
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if mid > 0 and time_of(mid) > duration_s:
            hi = mid
        else:
            lo = mid
    return max(lo, 1.0)


# ------------------------------------------------------------------ host_op (CPU work: optimizer step, host STREAM)
class HostOpIn(_Workload):
    op: str = Field(min_length=1, description="what the CPU runs, e.g. adam, scale, triad (a label)")
    flops: float = Field(ge=0, description="floating-point operations")
    bytes: float = Field(gt=0, description="host DRAM bytes read plus written")


@workload_kind("host_op", HostOpIn)
def predict_host_op(w: HostOpIn, system, model=None) -> Prediction:
    op = HostOp(flops=w.flops, bytes=w.bytes, name=w.op)
    oc = _price(op, system, "workload")
    return _prediction(op, oc, system, fits=w.bytes <= system.host.dram_bytes, memory={"host": w.bytes},
                       metrics={"gbps": _per_s(w.bytes, oc.time_s) / 1e9, "tflops": _per_s(w.flops, oc.time_s) / 1e12})
