"""LLM inference (workload kind ``inference``): prefill and decode as ops over the per-op cost model.

A forward step of the model on one replica (TP x PP GPUs) is built from
``sim.techniques.layers``: per layer the weight GEMMs, attention, norms and activations of one
TP rank, priced by ``sim.cost.cost``; two TP all-reduces of tokens x hidden per layer (after the
attention output projection and after the MLP, Megatron-LM); the embedding (plus its all-reduce)
and the LM head once; a point-to-point send of tokens x hidden between PP stages. Prefill runs
``prompt_len`` tokens per sequence through it (compute-bound on Tensor Cores); each decode step
runs one token per sequence against the cached keys and values (weights and KV streamed from
HBM). Speculative decoding, offloaded weights/KV and the serving simulation reuse the same step
model (``speculative.py``, ``offload_inference.py``, ``sim/engine/serving.py``).

Host overheads are explicit (the usual cause of large serving errors in other simulators):
every kernel pays the cost model's launch overhead; without CUDA graphs the host must also
dispatch each kernel (``infer_eager_dispatch_s``) and the step takes the longer of GPU work and
host dispatch; prefill always runs eagerly (frameworks capture graphs for decode batches only).
Every step pays the framework's own work (``infer_step_overhead_s``: scheduling, sampling,
host-device synchronisation). Formulas, sources and metric definitions: docs/inference.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.cost.efficiency import eff, param
from sim.errors import InputError
from sim.ops import DTYPE_BYTES, Attention, Collective, Elementwise, Gemm
from sim.scenario import Prediction, workload_kind
from sim.techniques import kv_cache

# ---- declared parameters ----------------------------------------------------------------------
param("infer_eager_dispatch_s", 1.0e-5,
      "host time to dispatch one kernel from an eager (not graph-captured) framework step",
      "PyTorch eager dispatch + cudaLaunchKernel is ~5-20 us per op on server CPUs (gpt-fast blog, "
      "PyTorch 2023: eager Llama-7B decode is CPU-bound; CUDA graphs remove the per-kernel host cost)",
      lo=1e-6, hi=1e-4)
param("infer_step_overhead_s", 1.0e-4,
      "host work per forward step that the GPU waits on: scheduling, sampling, host-device sync",
      "physical reasoning: one device-to-host sync of the sampled ids (~10-20 us) plus a Python/C++ "
      "scheduler iteration; order 0.1 ms for gpt-fast/TensorRT-LLM loops (vLLM v0.6.0 blog: older "
      "Python schedulers spent ms per step, hidden since by multi-step scheduling)",
      lo=0.0, hi=0.05)
param("infer_reserved_hbm_bytes", 0.5e9,
      "device memory held by the runtime (CUDA context, library workspaces), unavailable to weights/KV",
      "CUDA context + cuBLAS/NCCL workspaces occupy ~0.3-1 GB per GPU as nvidia-smi shows on an idle "
      "PyTorch process; vLLM profiles and subtracts it before sizing its KV pool",
      lo=0.0, hi=4e9)


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
WeightsT = Literal[tuple(WEIGHT_FORMATS)]
KVDtypeT = Literal[tuple(kv_cache.KV_FORMATS)]


# ---- workload schema --------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpeculativeIn(_Strict):
    draft_model: str | dict = Field(description="zoo name, inline dims, or 'self' (the target with draft_kv_budget)")
    k: int = Field(gt=0, description="tokens drafted per step")
    acceptance: float | None = Field(default=None, ge=0, lt=1, description="per-token acceptance rate")
    mean_accepted: float | None = Field(default=None, ge=1, description="tokens emitted per verification step (incl. the bonus token)")
    draft_weights: str | None = Field(default=None, description="weight format of the draft (default: the target's 16-bit dtype)")
    draft_kv_budget: int | None = Field(default=None, gt=0, description="KV tokens the draft attends to (TriForce retrieval cache, StreamingLLM)")
    draft_tp: int | None = Field(default=None, gt=0, description="TP degree of the draft (default: the target's)")
    draft_speculative: "SpeculativeIn | None" = Field(default=None, description="the draft is itself sped up (TriForce hierarchy)")

    @model_validator(mode="after")
    def _check(self):
        if (self.acceptance is None) == (self.mean_accepted is None):
            raise ValueError("give exactly one of acceptance (per-token rate) or mean_accepted")
        if self.mean_accepted is not None and self.mean_accepted > self.k + 1:
            raise ValueError(f"mean_accepted: {self.mean_accepted} exceeds k+1={self.k + 1} tokens per step")
        return self


class OffloadIn(_Strict):
    weights: Literal["none", "cpu", "nvme"] = "none"
    kv_cache: Literal["none", "cpu", "nvme"] = "none"
    resident_weights: float | Literal["auto"] = Field(default=0.0, description=(
        "fraction (0-1) of layer weights kept in HBM (ZeRO-Inference pins some); 'auto': as much as fits"))
    resident_kv: float | Literal["auto"] = Field(default=0.0, description=(
        "fraction (0-1) of each sequence's KV kept in HBM; 'auto': as much as fits after the weights"))
    prefetch: bool = Field(default=True, description="fetch layer i+1 while layer i computes")
    partitioned_fetch: bool = Field(default=True, description="replicas each fetch 1/n of a layer, then all-gather (ZeRO-Inference multi-GPU)")
    gds: bool = Field(default=False, description="NVMe reads go straight to the GPU (GPUDirect Storage)")
    kv_fetch_tokens: int | None = Field(default=None, gt=0,
                                        description="offloaded KV tokens read per sequence per step (sparse fetch, ShadowKV-like); default all")


    @model_validator(mode="after")
    def _fractions(self):
        for f in ("resident_weights", "resident_kv"):
            v = getattr(self, f)
            if v != "auto" and not 0.0 <= v <= 1.0:
                raise ValueError(f"{f}: expected a fraction in [0, 1] or 'auto', got {v}")
        return self


class ArrivalIn(_Strict):
    rate_per_s: float | None = Field(default=None, gt=0, description="Poisson arrival rate; omitted: all requests at t=0")
    requests: int = Field(default=1000, gt=0)
    trace: str | None = Field(default=None, description="CSV with arrival_s, prompt_len, gen_len columns (replaces rate/lengths)")
    length_dist: Literal["fixed", "exponential", "uniform", "normal"] = "fixed"
    length_cv: float = Field(default=0.3, ge=0, description="coefficient of variation of lengths (uniform, normal)")
    seed: int = 0
    scheduler: Literal["prefill_first", "chunked"] = Field(default="chunked", description="vLLM v0 style or Sarathi/vLLM v1 chunked prefill")
    max_batched_tokens: int = Field(default=8192, gt=0, description="token budget of one step")
    replicas: int | None = Field(default=None, gt=0, description="independent model replicas (default: cluster GPUs / (tp x pp))")


class InferenceIn(_Strict):
    batch: Annotated[int, Field(gt=0)] | Literal["max"] = Field(description="sequences per step; 'max' = the most that fit; with arrival: most in flight")
    prompt_len: int = Field(gt=0)
    gen_len: int = Field(gt=0)
    weights: WeightsT = "fp16"
    kv_cache: KVDtypeT = "fp16"
    act_dtype: Literal["fp16", "bf16"] | None = Field(default=None, description="run GEMMs in this 16-bit dtype (weight-only int8/fp8)")
    group_size: Annotated[int, Field(gt=0)] | Literal["channel"] | None = Field(default=None, description=(
        "weights per scale (default per format); 'channel': one scale per output channel"))
    kv_group_size: int | None = Field(default=128, gt=0, description="KV elements per scale; null = scales amortised away")
    kv_residual: int = Field(default=0, ge=0, description="recent tokens kept at fp16 (KIVI residual)")
    kv_block_size: int = Field(default=16, gt=0, description="tokens per KV page (vLLM default 16)")
    kv_budget: int | None = Field(default=None, gt=0, description="attend to at most this many cached tokens (sparse/streaming KV)")
    tp: int = Field(default=1, gt=0)
    pp: int = Field(default=1, gt=0)
    sparsity: float = Field(default=0.0, ge=0, lt=1, description="fraction of zero weights (Flash-LLM)")
    sparsity_pattern: Literal["unstructured", "2:4"] = "unstructured"
    attn_impl: str = "flash2"
    dequant: Literal["fused", "unfused", "torch"] = Field(default="fused", description=(
        "low-bit weights and quantised KV: dequantised inside the GEMM/attention kernel (Marlin, FP6-LLM, "
        "KIVI), first written out as a 16-bit copy by one separate kernel (older GPTQ/AutoGPTQ paths), or "
        "by a chain of PyTorch elementwise ops (FlexGen's compression.py)"))
    dequant_overlap: float | None = Field(default=None, ge=0, le=1, description=(
        "fused low-bit GEMMs: share of the CUDA-core dequantisation hidden under MMA/loads in this kernel "
        "(None: the device's simt_overlap)"))
    micro_batches: int = Field(default=1, gt=0, description=(
        "the batch passes each layer as this many micro-batches (FlexGen's num_gpu_batches): weights are "
        "fetched once per layer and step, every GEMM, dequantisation and attention runs per micro-batch"))
    kv_head_sharing: bool = Field(default=True, description=(
        "decode attention reads each KV head once for all the query heads of its group (GQA-aware kernels); "
        "false: once per query head (TensorRT-LLM's masked MHA before XQA, v0.8)"))
    cuda_graphs: bool = Field(default=True, description="decode steps replay a captured CUDA graph")
    prefill_chunk: int | None = Field(default=None, gt=0, description="prompt tokens per prefill step (chunked prefill)")
    max_batch: int | None = Field(default=None, gt=0, description="cap on batch='max' (framework limit, e.g. max_num_seqs)")
    speculative: SpeculativeIn | None = None
    offload: OffloadIn | None = None
    arrival: ArrivalIn | None = None


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


# ---- pricing ----------------------------------------------------------------------------------
def dequant_passes(mode: str, packed_bytes: float, n: float, out_b: float, dev, name: str) -> list:
    """Kernels that expand ``n`` packed low-bit values (``packed_bytes`` with their scales) into a
    16-bit copy of ``out_b`` bytes per value, before a 16-bit GEMM or attention reads it.

    unfused: one CUDA kernel reads the packed bytes and writes the copy (``dequant_ops_per_weight``
    ALU ops per value): the older GPTQ/AutoGPTQ path.
    torch: FlexGen's ``TorchCompressedDevice.decompress`` (compression.py), six PyTorch elementwise
    kernels over the whole tensor: high nibbles (``packed >> 4``) and low nibbles (``packed & 0xF``)
    each into a uint8 temporary and then scattered into every other element of the 16-bit buffer,
    then ``div_(scale)`` and ``add_(min)`` in place. Strided stores are counted at the width of the
    buffer they dirty (every DRAM sector of it is written), so per value 6 B are read and 9 B written
    on top of the packed bytes' share."""
    if mode == "unfused":
        return [Elementwise(bytes_read=packed_bytes, bytes_written=n * out_b,
                            flops=n * eff(dev, "dequant_ops_per_weight"), name=name)]
    nib = n / 2                                          # each nibble pass makes one uint8 per pair of values
    return [Elementwise(packed_bytes, nib, flops=nib, name=f"{name}_shift"),
            Elementwise(nib, n * out_b, name=f"{name}_scatter_hi"),
            Elementwise(packed_bytes, nib, flops=nib, name=f"{name}_mask"),
            Elementwise(nib, n * out_b, name=f"{name}_scatter_lo"),
            Elementwise(n * out_b, n * out_b, flops=n, name=f"{name}_div_scale"),
            Elementwise(n * out_b, n * out_b, flops=n, name=f"{name}_add_min")]


@dataclass
class Agg:
    """Priced ops summed: time, FLOPs, kernel count, time per bound resource and per op kind."""
    time: float = 0.0
    flops: float = 0.0
    kernels: int = 0
    bounds: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)

    def add(self, other: "Agg", k: float = 1.0) -> "Agg":
        self.time += k * other.time
        self.flops += k * other.flops
        self.kernels += int(round(k * other.kernels))
        for src, dst in ((other.bounds, self.bounds), (other.parts, self.parts)):
            for key, v in src.items():
                dst[key] = dst.get(key, 0.0) + k * v
        return self

    def scaled(self, k: float) -> "Agg":
        return Agg().add(self, k)


def price(ops, system) -> Agg:
    from sim.cost import cost
    a = Agg()
    for op in ops:
        c = cost(op, system)
        a.time += c.time_s
        a.flops += c.flops
        a.kernels += 1
        a.bounds[c.bound] = a.bounds.get(c.bound, 0.0) + c.time_s
        kind = op.op if isinstance(op, Collective) else type(op).__name__.lower()
        a.parts[kind] = a.parts.get(kind, 0.0) + c.time_s
    return a


def _grid(x: float, rel: int = 32) -> tuple[int, int, float]:
    """Bracketing points of a geometric grid (exact up to ``rel``), and the weight of the upper one."""
    if x <= rel:
        return int(x), int(x), 0.0
    step = 2 ** (math.floor(math.log2(x)) - int(math.log2(rel)))
    lo = int(x // step * step)
    hi = lo + step
    return lo, hi, (x - lo) / step


class StepModel:
    """Time of one forward step of one replica for a given batch composition.

    ``approx=True`` (serving) interpolates memoised costs on a geometric grid of token counts and
    contexts (<= 1/32 relative spacing) so that thousands of steps cost microseconds each."""

    def __init__(self, plan: Plan, offload=None, approx: bool = False):
        self.p, self.off, self.approx = plan, offload, approx
        self._dense: dict = {}
        self._attn: dict = {}
        self._head: dict = {}

    # -- per-layer pieces ------------------------------------------------------------------
    def _gemm(self, op) -> list:
        """The op as the plan runs it. With ``dequant`` unfused/torch the low-bit weights are first
        expanded to a 16-bit copy by separate bandwidth-bound kernels (``dequant_passes``), then
        a 16-bit GEMM reads that copy; fused kernels dequantise inside the GEMM (``Gemm.dequant_overlap``
        says how much of that CUDA-core work hides under the MMA and loads)."""
        g = gemm_op(self.p, op)
        if self.p.dequant == "fused" or not isinstance(g, Gemm) or g.w_dtype is None or g is op:
            return [g]
        from sim.cost.gemm import weight_format
        dev = self.p.system.device
        packed = weight_format(g, dev).bytes * g.batch
        n_w = g.k * g.n * g.batch
        deq = dequant_passes(self.p.dequant, packed, n_w, DTYPE_BYTES[self.p.act], dev, f"{op.name}_dequant")
        return deq + [replace(g, dtype=self.p.act, w_dtype=None, group_size=op.group_size, dequant_overlap=None)]

    def layer_dense(self, tokens: int) -> Agg:
        """Non-attention ops of one layer on ``tokens`` tokens, plus its two TP all-reduces."""
        if tokens in self._dense:
            return self._dense[tokens]
        from sim.techniques.layers import layer_forward_ops
        p = self.p
        ops = []
        for o in layer_forward_ops(p.model, 1, tokens, tokens, p.tp, p.act, None, None, p.attn_impl):
            if not isinstance(o, Attention):
                ops += self._gemm(o)
        if p.tp > 1:
            ar = Collective("all_reduce", tokens * p.model.hidden * DTYPE_BYTES[p.act], p.tp, name="tp_all_reduce")
            ops += [ar, ar]
        self._dense[tokens] = a = price(ops, p.system)
        return a

    def layer_attn(self, batch: int, seq_q: int, seq_kv: int) -> Agg:
        """Attention of one layer: ``batch`` sequences of ``seq_q`` new tokens over ``seq_kv`` keys.

        A decode kernel without GQA awareness (``kv_head_sharing: false``) streams its group's K/V
        once per query head: priced as attention with as many KV heads as query heads. A quantised
        cache with ``dequant`` unfused/torch is first expanded to 16 bits (the cached tokens only;
        the step's own K/V are fresh), then attention reads the 16-bit copy."""
        p = self.p
        if p.kv_budget:
            seq_kv = min(seq_kv, p.kv_budget + seq_q)
        key = (batch, seq_q, seq_kv)
        if key in self._attn:
            return self._attn[key]
        m = p.model
        kv_dtype = None if p.kv_dtype in ("fp16", "bf16") else p.kv_dtype
        heads = m.heads // p.tp
        kv_heads = max(1, m.n_kv_heads // p.tp)
        if not p.kv_head_sharing and seq_q == 1:
            kv_heads = heads
        ops = []
        cached = seq_kv - seq_q
        if kv_dtype and p.dequant != "fused":
            if cached > 0:
                n = 2.0 * batch * cached * kv_heads * m.d_head
                wl = p.wl
                packed = n * kv_cache.kv_elem_bytes(kv_dtype, wl.kv_group_size if wl else 128)
                ops += dequant_passes(p.dequant, packed, n, DTYPE_BYTES[p.act], p.system.device, "kv_dequant")
            kv_dtype = None
        ops.append(Attention(batch=batch, heads=heads, kv_heads=kv_heads, seq_q=seq_q, seq_kv=seq_kv,
                             head_dim=m.d_head, causal=seq_q > 1, dtype=p.act, impl=p.attn_impl,
                             kv_dtype=kv_dtype, name="attn"))
        self._attn[key] = a = price(ops, p.system)
        return a

    def head(self, tokens_in: int, tokens_out: int) -> Agg:
        """Embedding of the step's tokens (+ its all-reduce) and the LM head + sampling for the
        sequences that emit a token."""
        key = (tokens_in, tokens_out)
        if key in self._head:
            return self._head[key]
        from sim.techniques.layers import embedding_ops, lm_head_ops
        p = self.p
        ops = embedding_ops(p.model, tokens_in, p.tp, p.act)
        if p.tp > 1:
            ops.append(Collective("all_reduce", tokens_in * p.model.hidden * DTYPE_BYTES[p.act], p.tp, name="embed_all_reduce"))
        if tokens_out > 0:
            ops += lm_head_ops(p.model, tokens_out, p.tp, p.act, loss=False)
        self._head[key] = a = price(ops, p.system)
        return a

    def pp_send(self, tokens: int) -> Agg:
        if self.p.pp == 1:
            return Agg()
        return price([Collective("send_recv", tokens * self.p.model.hidden * DTYPE_BYTES[self.p.act], 2,
                                 name="pp_send")], self.p.system)

    # -- interpolated lookups (serving) -----------------------------------------------------
    def _dense_t(self, tokens: int) -> Agg:
        if not self.approx:
            return self.layer_dense(tokens)
        lo, hi, w = _grid(tokens)
        if w == 0.0:
            return self.layer_dense(lo)
        return self.layer_dense(lo).scaled(1 - w).add(self.layer_dense(hi), w)

    def _attn_t(self, batch: int, seq_q: int, seq_kv: float) -> Agg:
        if not self.approx:
            return self.layer_attn(batch, seq_q, int(round(seq_kv)))
        blo, bhi, bw = _grid(batch)
        klo, khi, kw = _grid(seq_kv)
        out = Agg()
        for b, wb in ((blo, 1 - bw), (bhi, bw)):
            for k, wk in ((klo, 1 - kw), (khi, kw)):
                if wb * wk > 0:
                    out.add(self.layer_attn(b, seq_q, max(k, seq_q)), wb * wk * batch / b)
        return out

    # -- one step --------------------------------------------------------------------------
    def step(self, n_decode: int = 0, decode_ctx: float = 0.0, prefills=(), seq_q_decode: int = 1,
             graphs: bool | None = None) -> Agg:
        """One forward of the model: ``n_decode`` sequences each adding ``seq_q_decode`` tokens over
        ``decode_ctx`` cached tokens (mean), and prefill chunks ``[(count, q, kv), ...]`` (count
        sequences of q new tokens over kv keys). Returns the step's Agg (time includes overheads)."""
        p = self.p
        tokens = n_decode * seq_q_decode + sum(c * q for c, q, _ in prefills)
        if tokens == 0:
            return Agg()
        nb = p.wl.micro_batches if p.wl is not None else 1
        if nb > 1:              # FlexGen's GPU batches: each layer's work once per micro-batch
            layer = Agg().add(self._dense_t(-(-tokens // nb)), nb)
            if n_decode:
                layer.add(self._attn_t(-(-n_decode // nb), seq_q_decode, decode_ctx), nb)
            for c, q, kv in prefills:
                layer.add(self._attn_t(-(-c // nb), q, kv), nb)
        else:
            layer = Agg().add(self._dense_t(tokens))
            if n_decode:
                layer.add(self._attn_t(n_decode, seq_q_decode, decode_ctx))
            for c, q, kv in prefills:
                layer.add(self._attn_t(c, q, kv))
        out_tokens = n_decode * seq_q_decode + sum(c for c, _, _ in prefills)
        stage = self._stage(layer, n_decode, decode_ctx, prefills)
        gpu = stage.scaled(p.pp).add(self.pp_send(tokens), p.pp - 1).add(self.head(tokens, out_tokens))
        graphs = (p.cuda_graphs and not prefills) if graphs is None else graphs
        dev = p.system.device
        host = 0.0 if graphs else gpu.kernels * eff(dev, "infer_eager_dispatch_s")
        if host > gpu.time:
            gpu.bounds["host_dispatch"] = gpu.bounds.get("host_dispatch", 0.0) + host - gpu.time
            gpu.parts["host_dispatch"] = host - gpu.time
            gpu.time = host
        ovh = eff(dev, "infer_step_overhead_s")
        gpu.time += ovh
        gpu.parts["step_overhead"] = gpu.parts.get("step_overhead", 0.0) + ovh
        gpu.bounds["step_overhead"] = gpu.bounds.get("step_overhead", 0.0) + ovh
        return gpu

    def _stage(self, layer: Agg, n_decode, decode_ctx, prefills) -> Agg:
        """All layers of one pipeline stage; with offload, overlapped with the per-layer fetch."""
        L = self.p.layers_local
        if self.off is None:
            return layer.scaled(L)
        return self.off.stage(layer, L, n_decode, decode_ctx, prefills)


# ---- memory -----------------------------------------------------------------------------------
def weight_bytes(plan: Plan) -> dict:
    """Weight bytes on the most loaded GPU: layer GEMM weights in the chosen format, sharded over
    TP and PP; norms/biases, embedding and LM head in 16-bit (vocab-parallel over TP)."""
    m = plan.model
    b16 = DTYPE_BYTES[plan.act]
    gemm, _ = plan.gemm_weight_bytes_per_layer()
    other = (m.router_params() + m.bias_params_per_layer() / plan.tp + m.norm_params_per_layer()) * b16
    layers = plan.layers_local * (gemm + other)
    emb, out = m.embedding_params() * b16 / plan.tp, m.output_params() * b16 / plan.tp
    ends = emb + out if plan.pp == 1 else max(emb, out) + (emb if m.tied_embeddings else 0)
    return {"layers": layers, "embedding_and_head": ends, "total": layers + ends,
            "per_layer": gemm + other}


def workspace_bytes(plan: Plan, tokens: int, out_tokens: int) -> float:
    """Transient activations of the largest forward step on one GPU: the residual stream, the QKV
    and MLP-up outputs of one layer live at once, plus fp32 logits of the sequences sampled."""
    m = plan.model
    b = DTYPE_BYTES[plan.act]
    qkv = (m.heads + 2 * m.n_kv_heads) * m.d_head / plan.tp
    up = (2 if m.gated_mlp else 1) * m.ffn / plan.tp
    per_tok = (3 * m.hidden + max(qkv, up) + m.ffn / plan.tp) * b
    return tokens * per_tok + out_tokens * math.ceil(m.vocab / plan.tp) * DTYPE_BYTES["fp32"]


def reserved_bytes(plan: Plan) -> float:
    return eff(plan.system.device, "infer_reserved_hbm_bytes")


# ---- the predictor ----------------------------------------------------------------------------
def _integrate(f, a: int, b: int, points: int = 9) -> float:
    """Sum of f(c) for integer c in [a, b]: exact for short ranges, else the trapezoid rule over
    ``points`` samples (step costs are piecewise linear in the context)."""
    n = b - a + 1
    if n <= 0:
        return 0.0
    if n <= points:
        return sum(f(c) for c in range(a, b + 1))
    xs = [a + (b - a) * i / (points - 1) for i in range(points)]
    ys = [f(int(round(x))) for x in xs]
    h = (b - a) / (points - 1)
    integral = sum((ys[i] + ys[i + 1]) * h / 2 for i in range(points - 1))
    return integral + (ys[0] + ys[-1]) / 2            # endpoints counted whole (sum, not integral)


def _bound(bounds: dict) -> str:
    return max(bounds, key=bounds.get) if bounds else "none"


def static_run(plan: Plan, sm: StepModel, batch: int, prompt: int, gen: int, chunk: int | None = None):
    """Prefill then ``gen - 1`` decode steps of a static batch. Returns (prefill Agg, decode Agg,
    decode step time at the mean context)."""
    chunk = chunk or prompt
    pre = Agg()
    done = 0
    while done < prompt:
        q = min(chunk, prompt - done)
        pre.add(sm.step(prefills=[(batch, q, done + q)]))
        done += q
    dec = Agg()
    if gen > 1:
        steps = {}

        def t(c):
            steps[c] = sm.step(n_decode=batch, decode_ctx=c)
            return steps[c].time
        dec.time = _integrate(t, prompt + 1, prompt + gen - 1)
        mid = steps[min(steps, key=lambda c: abs(c - (prompt + gen / 2)))]
        for k, v in mid.bounds.items():
            dec.bounds[k] = v * (gen - 1)
        for k, v in mid.parts.items():
            dec.parts[k] = v * (gen - 1)
        dec.flops = mid.flops * (gen - 1)
        dec.kernels = mid.kernels * (gen - 1)
    return pre, dec


def memory_check(plan: Plan, batch: int, context: int, prefill_tokens: int, offload=None) -> tuple[dict, dict, bool]:
    """Per-GPU memory by tier and use: weights, KV (paged), activation workspace, runtime reserve."""
    w = weight_bytes(plan)
    kv = batch * plan.kv.seq_bytes(context)
    ws = workspace_bytes(plan, prefill_tokens, batch)
    res = reserved_bytes(plan)
    if offload is not None:
        return offload.memory(w, kv, ws, res)
    dev = plan.system.device
    hbm = w["total"] + kv + ws + res
    use = {"weights": w["total"], "kv_cache": kv, "activations": ws, "reserved": res,
           "kv_fragmentation": plan.kv.fragmentation(context)}
    return {"hbm": hbm, "host": 0.0, "nvme": 0.0}, use, hbm <= dev.hbm_bytes


def max_batch_for(plan: Plan, context: int, prefill_tokens_per_seq: int, cap: int | None = None) -> int:
    """The most sequences of ``context`` tokens whose paged KV and prefill workspace fit next to
    the weights and the runtime reserve (0 when not even one does)."""
    free = plan.system.device.hbm_bytes - weight_bytes(plan)["total"] - reserved_bytes(plan)

    def fits(b: int) -> bool:
        return b * plan.kv.seq_bytes(context) + workspace_bytes(plan, b * prefill_tokens_per_seq, b) <= free

    hi = max(1, kv_cache.max_batch(free, plan.kv, context))
    if cap:
        hi = min(hi, cap)
    if fits(hi):
        return hi
    lo = 0                                   # fits(lo) holds (trivially for 0); fits(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def predict_static(wl: InferenceIn, plan: Plan) -> Prediction:
    offload = None
    warnings = []
    if wl.offload is not None and (wl.offload.weights != "none" or wl.offload.kv_cache != "none"):
        from sim.techniques.offload_inference import OffloadModel
        offload = OffloadModel(plan, wl.offload)
    context = wl.prompt_len + wl.gen_len
    chunk = wl.prefill_chunk or wl.prompt_len
    if wl.batch == "max":
        if offload is not None:
            raise InputError("scenario", "workload.batch", "'max' is not supported with offload; give a number")
        batch = max_batch_for(plan, context, min(chunk, wl.prompt_len), wl.max_batch)
        if batch == 0:
            warnings.append("not even one sequence of this context fits next to the weights")
    else:
        batch = wl.batch
    b_eval = max(batch, 1)
    if offload is not None:
        offload.place(b_eval, context, b_eval * min(chunk, wl.prompt_len))
    mem, use, fits = memory_check(plan, b_eval, context, b_eval * min(chunk, wl.prompt_len), offload)
    sm = StepModel(plan, offload)
    if wl.speculative is not None:
        from sim.techniques.speculative import speculative_run
        pre, dec, spec_info = speculative_run(wl, plan, sm, b_eval, chunk)
    else:
        pre, dec = static_run(plan, sm, b_eval, wl.prompt_len, wl.gen_len, chunk)
        spec_info = None
    ttft = pre.time
    latency = pre.time + dec.time
    gpus = plan.tp * plan.pp * plan.replicas
    tokens = b_eval * wl.gen_len * plan.replicas
    tps = tokens / latency
    total = Agg().add(pre).add(dec)
    flops_gpu = total.flops
    metrics = {
        "tokens_per_s": tps,
        "tokens_per_s_per_gpu": tps / gpus,
        "ttft_s": ttft,
        "tpot_s": dec.time / (wl.gen_len - 1) if wl.gen_len > 1 else 0.0,
        "latency_s": latency,
        "batch": b_eval,
        "prefill_tokens_per_s": b_eval * wl.prompt_len * plan.replicas / ttft,
        "tflops_per_gpu": flops_gpu / latency / 1e12,
        "gpus": gpus,
    }
    if spec_info:
        metrics.update(spec_info)
    breakdown = {
        "prefill_s": pre.time, "decode_s": dec.time,
        "prefill_bound": _bound(pre.bounds), "decode_bound": _bound(dec.bounds),
        "prefill_parts_s": pre.parts, "decode_parts_s": dec.parts,
        "bound_time_s": total.bounds, "memory_use_bytes": use,
        "weight_format": {"gemm_dtype": plan.gemm_dtype, "w_dtype": plan.w_dtype, "group_size": plan.group_size,
                          "bytes_per_weight": plan.weight_bytes_per_param()},
        "kv_bytes_per_token_per_gpu": plan.kv.bytes_per_token / plan.kv.shards,
    }
    if offload is not None:
        breakdown["offload"] = offload.describe()
    if not fits:
        warnings.append("does not fit: see memory_use_bytes")
    from sim.cost.efficiency import provenance
    return Prediction(fits=fits, time_s=latency, bound=_bound(total.bounds), memory_bytes=mem, metrics=metrics,
                      breakdown=breakdown, provenance=provenance(plan.system.device), warnings=warnings)


@workload_kind("inference", InferenceIn, needs_model=True)
def _predict(wl: InferenceIn, system, model) -> Prediction:
    if wl.arrival is not None:
        return predict_serving(wl, make_plan(wl, system, model))
    return predict_static(wl, make_plan(wl, system, model))


# ---- serving (arrival given) ------------------------------------------------------------------
VLLM_MAX_NUM_SEQS = 256     # vLLM's default max_num_seqs, the cap when batch is 'max' and max_batch unset


def predict_serving(wl: InferenceIn, plan: Plan) -> Prediction:
    """Continuous batching over a paged KV pool (``sim.engine.serving``); each iteration priced
    by the same step model as the static predictor, interpolated on a fine grid for speed."""
    from sim.cost.efficiency import provenance
    from sim.engine import serving
    a = wl.arrival
    if wl.speculative is not None or (wl.offload is not None and
                                      (wl.offload.weights != "none" or wl.offload.kv_cache != "none")):
        raise InputError("scenario", "workload.arrival",
                         "a serving simulation with speculative decoding or offload is not modelled; drop one of them")
    if a.trace:
        try:
            requests = serving.load_trace(a.trace)
        except (OSError, KeyError, ValueError) as e:
            raise InputError(a.trace, "<file>", f"expected a CSV with arrival_s, prompt_len, gen_len ({e})") from None
    else:
        requests = serving.make_requests(a.requests, a.rate_per_s, wl.prompt_len, wl.gen_len,
                                         a.length_dist, a.length_cv, a.seed)
    max_seqs = wl.batch if wl.batch != "max" else (wl.max_batch or VLLM_MAX_NUM_SEQS)
    dev = plan.system.device
    w = weight_bytes(plan)["total"]
    ws = workspace_bytes(plan, a.max_batched_tokens, max_seqs)
    free = dev.hbm_bytes - w - ws - reserved_bytes(plan)
    blocks = kv_cache.blocks_total(max(free, 0.0), plan.kv)
    fits = free > 0 and blocks > 0
    sm = StepModel(plan, approx=True)
    acc = Agg()

    def step_time(n_dec, ctx, chunks):
        s = sm.step(n_decode=n_dec, decode_ctx=ctx, prefills=chunks)
        acc.add(s)
        return s.time

    res = serving.simulate(requests, step_time, max_seqs=max_seqs, max_batched_tokens=a.max_batched_tokens,
                           kv_blocks=blocks if fits else 0, block_size=plan.kv.block_size,
                           scheduler=a.scheduler, replicas=plan.replicas) if fits else None
    metrics = res.metrics() if res else {"requests_done": 0}
    gpus = plan.tp * plan.pp * plan.replicas
    if "tokens_per_s" in metrics:
        metrics["tokens_per_s_per_gpu"] = metrics["tokens_per_s"] / gpus
    metrics["gpus"] = gpus
    kv_pool = blocks * plan.kv.block_size * plan.kv.bytes_per_token / plan.kv.shards
    warnings = []
    if not fits:
        warnings.append("the weights and workspace leave no room for a KV cache")
    if res and res.rejected:
        warnings.append(f"{res.rejected} requests can never fit the KV pool and were dropped")
    breakdown = {"kv_pool_blocks": blocks, "kv_pool_tokens": blocks * plan.kv.block_size,
                 "preemptions": metrics.get("preemptions", 0), "bound_time_s": acc.bounds, "parts_s": acc.parts,
                 "busy_s": res.busy_s if res else 0.0, "scheduler": a.scheduler, "max_seqs": max_seqs,
                 "memory_use_bytes": {"weights": w, "kv_pool": kv_pool, "activations": ws,
                                      "reserved": reserved_bytes(plan)}}
    return Prediction(fits=fits, time_s=metrics.get("makespan_s", 0.0), bound=_bound(acc.bounds),
                      memory_bytes={"hbm": w + kv_pool + ws + reserved_bytes(plan), "host": 0.0, "nvme": 0.0},
                      metrics=metrics, breakdown=breakdown, provenance=provenance(dev), warnings=warnings)
