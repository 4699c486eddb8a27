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

This module holds the kind's schema and its entry point; the parts live beside it, one idea each:
``inference_plan`` (weight formats, the resolved plan), ``inference_step`` (step pricing and the
host overheads), ``inference_memory`` (per-GPU memory, the largest batch that fits),
``inference_static`` (the static-batch predictor) and ``inference_serving`` (continuous batching).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.scenario import Prediction, workload_kind
from sim.techniques import kv_cache
# the parts in dependency order (plan, step, memory, predictors); the names other modules import
# from ``sim.techniques.inference`` are re-exported so the kind keeps one public face
from sim.techniques.inference_plan import WEIGHT_FORMATS, Plan, make_plan
from sim.techniques.inference_step import Agg, StepModel, dequant_passes, price
from sim.techniques.inference_memory import reserved_bytes, weight_bytes, workspace_bytes
from sim.techniques.inference_static import _integrate, predict_static, static_run
from sim.techniques.inference_serving import predict_serving

__all__ = ["ArrivalIn", "InferenceIn", "OffloadIn", "SpeculativeIn", "Agg", "Plan", "StepModel", "dequant_passes",
           "make_plan", "price", "reserved_bytes", "static_run", "weight_bytes", "workspace_bytes", "_integrate"]

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


@workload_kind("inference", InferenceIn, needs_model=True)
def _predict(wl: InferenceIn, system, model) -> Prediction:
    if wl.arrival is not None:
        return predict_serving(wl, make_plan(wl, system, model))
    return predict_static(wl, make_plan(wl, system, model))
