"""The ``training`` workload kind: one iteration of data/tensor/pipeline/sequence/expert-parallel
training with ZeRO, recomputation and offload, on the analytical or the discrete-event engine.

Fields are the contract of shared/SCENARIOS.md plus the documented additions below (see
docs/training.md): unknown fields are errors, and nothing that changes a result is defaulted
silently (``precision`` is required; ``parallel.dp`` defaults to what the cluster leaves).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sim.cost.attention import BLACKWELL_ARCHS
from sim.engine import chrome_trace, des
from sim.errors import InputError
from sim.scenario import Prediction, workload_kind
from sim.techniques.iteration import Times, build_graph, closed_form, from_timeline
from sim.techniques.memory import training_memory
from sim.techniques.step import compute_dtype, is_flash, price_step

Tier = Literal["none", "cpu", "nvme"]


class ParallelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tp: int = Field(default=1, ge=1, description="tensor-parallel degree (Megatron)")
    pp: int = Field(default=1, ge=1, description="pipeline stages")
    dp: int | None = Field(default=None, ge=1, description="data-parallel degree; default gpus/(tp*pp*sp)")
    sp: int = Field(default=1, ge=1, description="sequence/context-parallel degree (Ulysses or ring)")
    sp_mode: Literal["ulysses", "ring"] = Field(default="ulysses", description="how sp splits attention")
    sequence_parallel: bool = Field(default=False, description="Megatron sequence parallelism inside TP "
                                                               "(all-gather/reduce-scatter instead of all-reduce)")
    ep: int = Field(default=1, ge=1, description="expert-parallel degree (MoE models; divides dp*sp)")
    zero: int = Field(default=0, ge=0, le=3, description="ZeRO stage (0-3); 1 = distributed optimizer")
    schedule: Literal["gpipe", "1f1b", "interleaved"] = "1f1b"
    virtual_stages: int = Field(default=1, ge=1, description="model chunks per stage (interleaved)")
    overlap_grad_reduce: bool = Field(default=True, description="bucketed DP gradient reduction during backward")
    tp_comm_overlap: bool = Field(default=False, description="TP collectives chunked and overlapped with the "
                                                             "adjacent GEMMs (Megatron-Core/TE userbuffers, MegaScale)")
    overlap_param_gather: bool = Field(default=False, description="ZeRO-1/2 parameter all-gather hidden "
                                                                  "behind the next forward (Megatron-Core)")
    grad_reduce_in_fp32: bool = Field(default=False, description="16-bit runs accumulate and reduce "
                                                                 "gradients over data parallelism in fp32 (4 bytes "
                                                                 "per gradient on the wire; Megatron-LM forces it "
                                                                 "for bf16)")


class OffloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    optimizer: Tier = "none"
    params: Tier = "none"
    activations: Tier = "none"
    delayed_param_update: bool = Field(default=False, description="ZeRO-Offload DPU: the CPU step overlaps "
                                                                  "the next iteration")
    overlap_optimizer_step: bool = Field(default=False, description="Fuyou: CPU Adam runs layer by layer "
                                                                    "during backward")


class TrainingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    global_batch: int = Field(gt=0, description="sequences per iteration")
    micro_batch: int = Field(gt=0, description="sequences per micro-batch per data-parallel rank")
    seq_len: int = Field(gt=0)
    precision: Literal["fp32", "tf32", "fp16", "bf16", "fp8"]
    parallel: ParallelIn = Field(default_factory=ParallelIn)
    recompute: Literal["none", "selective", "full"] = "none"
    offload: OffloadIn = Field(default_factory=OffloadIn)
    optimizer: Literal["adam", "sgd", "zo"] = "adam"
    attn_impl: Literal["naive", "megatron", "flash1", "flash2", "flash3", "flash4", "cudnn"] = Field(
        default="flash2", description="attention kernels: naive is PyTorch's reference (layout copies, separate "
                                      "mask and softmax passes over the s x s scores); megatron is Megatron-LM's "
                                      "core attention before FlashAttention (baddbmm on strided views, fused "
                                      "scale+mask+softmax, bmm); flash* are tiled (flash3: Hopper only; flash4: "
                                      "datacenter Blackwell only); cudnn is cuDNN's fused attention (what "
                                      "Transformer Engine runs), priced as flash4 on Blackwell, flash3 on "
                                      "Hopper, flash2 elsewhere")
    cross_entropy: Literal["fused", "megatron"] = Field(
        default="fused", description="loss kernels: fused is one pass over the logits (apex/FlashAttention "
                                     "xentropy, fused losses); megatron is Megatron's vocab-parallel cross entropy "
                                     "in fp32 PyTorch ops (six passes forward, two backward)")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="dropout probability of GPT-style layers "
                                                                    "(Megatron-LM default 0.1; LLaMA-style 0)")
    engine: Literal["analytical", "des"] = "analytical"
    timeline: bool = Field(default=False, description="with engine des: return the Chrome-trace events")


def _err(field: str, problem: str):
    raise InputError("scenario", f"workload.{field}", problem)


def validate(wl: TrainingIn, system, model) -> TrainingIn:
    """Cross-field checks, and ``parallel.dp`` filled in from the cluster size."""
    P, O = wl.parallel, wl.offload
    gpus = system.cluster.gpus
    inner = P.tp * P.pp * P.sp
    if P.dp is None:
        if gpus % inner:
            _err("parallel", f"tp*pp*sp = {inner} must divide cluster.gpus = {gpus}")
        P.dp = gpus // inner                   # this validated copy is ours to fill in
    elif inner * P.dp != gpus:
        _err("parallel.dp", f"tp*pp*dp*sp = {inner * P.dp} must equal cluster.gpus = {gpus}")
    if wl.global_batch % (wl.micro_batch * P.dp):
        _err("global_batch", f"{wl.global_batch} must be a multiple of micro_batch*dp = {wl.micro_batch * P.dp}")
    m = wl.global_batch // (wl.micro_batch * P.dp)
    if P.schedule != "interleaved" and P.virtual_stages != 1:
        _err("parallel.virtual_stages", f"{P.virtual_stages} needs schedule 'interleaved'")
    v = P.virtual_stages if P.schedule == "interleaved" else 1
    if P.pp * v > model.layers:
        _err("parallel.pp", f"pp*virtual_stages = {P.pp * v} exceeds the model's {model.layers} layers")
    if v > 1 and (model.layers % (P.pp * v) or m % P.pp):
        _err("parallel.virtual_stages", f"interleaving needs layers ({model.layers}) divisible by pp*v = "
                                        f"{P.pp * v} and micro-batches ({m}) divisible by pp = {P.pp}")
    if P.sp > 1:
        if wl.seq_len % P.sp:
            _err("parallel.sp", f"{P.sp} must divide seq_len = {wl.seq_len}")
        if P.sp_mode == "ulysses" and (model.heads // P.tp) % P.sp:
            _err("parallel.sp", f"Ulysses needs heads/tp = {model.heads // P.tp} divisible by sp = {P.sp}")
    if P.ep > 1:
        if not model.is_moe:
            _err("parallel.ep", f"{P.ep} needs a MoE model (experts > 1)")
        if model.experts % P.ep or (P.dp * P.sp) % P.ep:
            _err("parallel.ep", f"{P.ep} must divide experts ({model.experts}) and dp*sp ({P.dp * P.sp})")
    layerwise = P.zero == 3 or O.params != "none" or O.optimizer != "none" or O.activations != "none" \
        or wl.optimizer == "zo"
    if layerwise and P.pp > 1:
        _err("parallel.pp", "ZeRO-3, offload and zeroth-order training are modelled without pipeline "
                            "parallelism (DeepSpeed does not combine them with its pipeline engine)")
    if P.zero == 2 and P.pp > 1:
        _err("parallel.zero", "ZeRO-2 with pipeline parallelism is not supported (DeepSpeed forbids it)")
    if O.params != "none" and P.zero != 3:
        _err("offload.params", f"parameter offload needs ZeRO stage 3 (got zero={P.zero})")
    if wl.optimizer == "zo" and (O.optimizer != "none"):
        _err("offload.optimizer", "zeroth-order training keeps no optimizer state to offload")
    if wl.attn_impl == "flash4" and system.device.arch not in BLACKWELL_ARCHS:
        _err("attn_impl", f"flash4 needs a datacenter Blackwell GPU (sm100: tcgen05 MMA, Tensor Memory); "
                          f"{system.device.name} is {system.device.arch}")
    if wl.precision == "fp8" and "fp8" not in system.device.peak_tflops:
        _err("precision", f"fp8 needs FP8 Tensor Cores; {system.device.name} has {sorted(system.device.peak_tflops)}")
    g_dt = compute_dtype(wl.precision)[0]
    if g_dt not in system.device.peak_tflops:
        _err("precision", f"{system.device.name} has no {g_dt} peak; it has {sorted(system.device.peak_tflops)}")
    if system.host.nvme.drives == 0 and "nvme" in (O.optimizer, O.params, O.activations):
        _err("offload", f"host {system.host.name} has no NVMe drives")
    return wl


def _bound(times: Times, step) -> str:
    ph = times.phases
    compute = ph["forward"] + ph["backward"] + ph["recompute"]
    comp_bound = max(step.bounds, key=step.bounds.get) if step.bounds else "compute"
    cands = {comp_bound: compute, "communication": ph.get("comm_in_layers", 0.0) + ph.get("dp_comm_exposed", 0.0)
             + ph.get("param_gather_exposed", 0.0) + ph.get("sync", 0.0),
             "pipeline_bubble": ph.get("pipeline_bubble", 0.0),
             "offload_transfers": ph.get("offload_and_zero3_exposed", 0.0),
             "host_optimizer": ph.get("host_step_exposed", 0.0),
             "framework_overhead": ph.get("overhead", 0.0), "optimizer": ph.get("optimizer", 0.0)}
    return max(cands, key=cands.get)


def run(wl: TrainingIn, system, model, engine: str | None = None) -> tuple[Times, object, object, object]:
    step = price_step(wl, system, model)
    engine = engine or wl.engine
    graph = tl = None
    if engine == "des":
        graph, marks = build_graph(step)
        tl = des.simulate(graph)
        times = from_timeline(step, graph, tl, marks)
    else:
        times = closed_form(step)
    return times, step, graph, tl


@workload_kind("training", TrainingIn, needs_model=True)
def predict_training(wl: TrainingIn, system, model) -> Prediction:
    wl = validate(wl, system, model)
    P, O = wl.parallel, wl.offload
    times, step, graph, tl = run(wl, system, model)
    mem = training_memory(model, system, step.L, wl.micro_batch, wl.seq_len, step.m, wl.precision, wl.recompute,
                          is_flash(wl.attn_impl), wl.optimizer, O.optimizer, O.params, O.activations,
                          P.grad_reduce_in_fp32)
    gpus = system.cluster.gpus
    T = times.iteration_s
    peak = system.device.peak_flops(compute_dtype(wl.precision)[0])
    tflops = step.flops["model"] / T / gpus / 1e12
    hfu_tflops = step.flops["hardware"] / T / gpus / 1e12
    metrics = {"iteration_time_s": T, "tokens_per_s": wl.global_batch * wl.seq_len / T,
               "samples_per_s": wl.global_batch / T,
               "tflops_per_gpu": tflops, "hfu_tflops_per_gpu": hfu_tflops,
               "mfu": tflops * 1e12 / peak, "hfu": hfu_tflops * 1e12 / peak,
               "exposed_comm_s": times.exposed_comm_s, "bubble_fraction": times.bubble_fraction,
               "micro_batches": step.m, "dp": P.dp,
               "memory_hbm_gb": mem.hbm / 1e9, "memory_host_gb": mem.host / 1e9, "memory_nvme_gb": mem.nvme / 1e9}
    bound = _bound(times, step)
    breakdown = {"engine": times.engine, "phases_s": times.phases, "bound": bound,
                 "compute_time_by_resource_s": {k: v * step.m for k, v in step.bounds.items()},
                 "per_microbatch_stage0_s": {"forward": sum(step.F[0]), "backward": sum(step.B[0])},
                 "memory": mem.breakdown,
                 "flops_convention": "tflops_per_gpu/mfu: model FLOPs (3x forward, attention counted "
                                     "non-causal, LM head included, no recompute); hfu*: plus recomputation",
                 **times.extra}
    warnings = []
    if not mem.fits:
        warnings.append(f"does not fit: {', '.join(mem.breakdown['overflow'])} over capacity")
    timeline = chrome_trace.to_events(tl) if (tl is not None and wl.timeline) else None
    from sim.cost.efficiency import provenance
    return Prediction(mem.fits, T, bound, mem.as_tiers(), metrics, breakdown, provenance(system.device),
                      warnings, timeline)


# ---- many configurations at once (sweeps) ----------------------------------------------------------
def evaluate_many(scenarios, memory: bool = True):
    """Predict many ``training`` scenarios (mappings as ``gpusim predict`` takes) in one call: the
    analytical engine over numpy arrays (``sim.techniques.training_batch``), each distinct piece priced
    once. Returns a pandas DataFrame, one row per scenario in order: iteration_time_s, tokens_per_s,
    tflops_per_gpu, hfu_tflops_per_gpu, mfu, hfu, bubble_fraction, exposed_comm_s, fits,
    memory_{hbm,host,nvme}_gb, bound, error (the InputError message of a scenario that is not valid,
    else empty). Equal to ``sim.scenario.predict`` scenario by scenario (1e-9 relative)."""
    from sim.techniques.training_batch import evaluate_many as batch
    return batch(scenarios, memory)
