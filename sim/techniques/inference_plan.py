"""How an ``inference`` workload runs on a given model and system: the weight formats and the
resolved ``Plan`` (dtypes the device really has, TP/PP, replicas, KV layout).

Kept apart from pricing and memory because both read it: the step model prices the plan's GEMMs
(``gemm_op``) and the memory model sizes the plan's weights, so a format means the same bytes in
both. ``make_plan`` is where a dtype the device lacks falls back (e.g. bf16 on V100/T4 runs fp16).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sim.errors import InputError
from sim.ops import Gemm
from sim.techniques import kv_cache

if TYPE_CHECKING:
    from sim.techniques.inference import InferenceIn


# ---- weight formats ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightFormat:
    """How a ``weights`` value maps onto the weight GEMMs (``Gemm.dtype``/``w_dtype``/``group_size``).
    The bytes they occupy (values, scales, sparse indices) are the GEMM cost model's
    (``sim.cost.gemm.weight_format``), so memory and time never disagree."""
    storage: str                 # dtype the weights are stored in (DTYPE_BYTES key)
    compute: str | None          # Tensor-Core dtype of the GEMM; None = the 16-bit activation dtype
    group_size: int | None       # weights per scale; None = one scale per output channel
    fallback: str | None = None  # compute dtype when the device lacks ``compute`` Tensor Cores
    note: str = ""


WEIGHT_FORMATS: dict[str, WeightFormat] = {
    "fp16": WeightFormat("fp16", "fp16", None),
    "bf16": WeightFormat("bf16", "bf16", None),
    "fp8": WeightFormat("fp8", "fp8", None, None, "W8A8 FP8 (per-channel scales); weight-only without FP8 TCs"),
    "int8": WeightFormat("int8", "int8", None, None, "W8A8 INT8 (SmoothQuant); weight-only without INT8 TCs"),
    "fp6": WeightFormat("fp6", None, None, None, "FP6-LLM W6A16, per-channel scales"),
    "int4": WeightFormat("int4", None, 128, None, "W4A16 (GPTQ/AWQ/Marlin), fp16 scale per group of 128"),
    "int3": WeightFormat("int3", None, 128, None, "GPTQ 3-bit W3A16"),
    "nf4": WeightFormat("nf4", None, 64, None, "bitsandbytes NF4: fp32 absmax per 64 (no double quantisation)"),
    "w4a8": WeightFormat("int4", "int8", 128, None, "QServe W4A8: int4 weights into INT8 TCs"),
    "w4a4": WeightFormat("int4", "int4", 128, "int8", "COMET W4A4 on INT4 TCs (INT8 TCs where the device has no INT4)"),
}
WEIGHT_GEMMS = ("qkv", "proj", "mlp_up", "mlp_down")


# ---- a resolved plan --------------------------------------------------------------------------
@dataclass
class Plan:
    """The workload resolved against a model and a system: dtypes, parallelism, KV layout."""
    model: object
    system: object
    tp: int
    pp: int
    replicas: int
    act: str                     # 16-bit dtype of activations and non-GEMM ops
    gemm_dtype: str              # Tensor-Core dtype of the weight GEMMs
    w_dtype: str | None          # weight storage dtype when it differs from gemm_dtype
    group_size: int | None
    fmt: WeightFormat
    sparsity: float
    sparsity_pattern: str
    kv_dtype: str
    kv: kv_cache.KVLayout
    attn_impl: str
    cuda_graphs: bool
    kv_budget: int | None
    dequant: str = "fused"
    wl: InferenceIn | None = None
    dequant_overlap: float | None = None
    kv_head_sharing: bool = True

    @property
    def layers_local(self) -> int:
        return math.ceil(self.model.layers / self.pp)

    def gemm_weight_bytes_per_layer(self) -> tuple[float, float]:
        """(stored bytes, parameters) of one layer's weight GEMMs on one TP rank, as the GEMM cost
        model stores them (``sim.cost.gemm.weight_format``: values, group scales, sparse indices)."""
        from sim.cost.gemm import weight_format
        from sim.techniques.layers import layer_forward_ops
        nbytes = params = 0.0
        for op in layer_forward_ops(self.model, 1, 1, 1, self.tp, self.act):
            if isinstance(op, Gemm) and op.name in WEIGHT_GEMMS:
                g = gemm_op(self, op)
                nbytes += weight_format(g, self.system.device).bytes * g.batch
                params += g.k * g.n * g.batch
        return nbytes, params

    def weight_bytes_per_param(self) -> float:
        b, n = self.gemm_weight_bytes_per_layer()
        return b / n


def gemm_op(plan: Plan, op):
    """A layer's weight GEMM with the plan's format: compute dtype, storage dtype, scales, sparsity."""
    if not isinstance(op, Gemm) or op.name not in WEIGHT_GEMMS:
        return op
    return replace(op, dtype=plan.gemm_dtype, w_dtype=plan.w_dtype, group_size=plan.group_size or op.k,
                   sparsity=plan.sparsity, sparsity_pattern=plan.sparsity_pattern,
                   dequant_overlap=plan.dequant_overlap if plan.w_dtype else None)


def make_plan(wl: InferenceIn, system, model, *, weights: str | None = None, tp: int | None = None,
              pp: int | None = None, kv_budget: int | None = -1) -> Plan:
    """Resolve dtypes against the device: a compute dtype the device lacks falls back to the
    format's fallback, else to weight-only GEMMs on 16-bit Tensor Cores."""
    tp = tp or wl.tp
    pp = pp or wl.pp
    dev = system.device
    fmt = WEIGHT_FORMATS[weights or wl.weights]
    act = wl.act_dtype or ("bf16" if (weights or wl.weights) == "bf16" else "fp16")
    compute = wl.act_dtype or fmt.compute or act
    if compute not in dev.peak_tflops and fmt.fallback in dev.peak_tflops:
        compute = fmt.fallback
    if compute not in dev.peak_tflops:
        compute = act
    if act not in dev.peak_tflops:          # e.g. bf16 on V100/T4: run in fp16
        act = "fp16"
        compute = compute if compute in dev.peak_tflops else act
    w_dtype = None if fmt.storage == compute else fmt.storage
    group = None if wl.group_size == "channel" else (wl.group_size or fmt.group_size)
    if tp * pp > system.cluster.gpus:
        raise InputError("scenario", "workload.tp", f"tp x pp = {tp * pp} exceeds cluster.gpus = {system.cluster.gpus}")
    replicas = max(1, system.cluster.gpus // (wl.tp * pp))
    if wl.arrival is not None and wl.arrival.replicas:
        replicas = wl.arrival.replicas
    lay = kv_cache.layout(model, wl.kv_cache, tp, pp, wl.kv_group_size, wl.kv_residual, wl.kv_block_size)
    kv_dtype = None if wl.kv_cache in ("fp16", "bf16") else wl.kv_cache
    return Plan(model, system, tp, pp, replicas, act, compute, w_dtype, group, fmt,
                wl.sparsity, wl.sparsity_pattern, kv_dtype or act, lay, wl.attn_impl, wl.cuda_graphs,
                wl.kv_budget if kv_budget == -1 else kv_budget, wl.dequant, wl,
                dequant_overlap=wl.dequant_overlap, kv_head_sharing=wl.kv_head_sharing)
