"""The static-batch inference predictor: prefill of the whole batch, then ``gen_len - 1`` decode
steps, each priced by the step model; memory checked (or the batch sized) by the memory model.

Decode steps are not priced one by one: their cost is piecewise linear in the context, so the sum
over contexts is integrated from a few samples (``_integrate``), exact for short generations.
Speculative decoding and offload plug in here (``speculative.py``, ``offload_inference.py``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from sim.errors import InputError
from sim.scenario import Prediction
from sim.techniques.inference_memory import max_batch_for, memory_check
from sim.techniques.inference_plan import Plan
from sim.techniques.inference_step import Agg, StepModel, dominant_bound

if TYPE_CHECKING:
    from sim.techniques.inference import InferenceIn


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
        "prefill_bound": dominant_bound(pre.bounds), "decode_bound": dominant_bound(dec.bounds),
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
    return Prediction(fits=fits, time_s=latency, bound=dominant_bound(total.bounds), memory_bytes=mem, metrics=metrics,
                      breakdown=breakdown, provenance=provenance(plan.system.device), warnings=warnings)
