"""The serving predictor (workload ``arrival`` given): continuous batching of a request stream
over a paged KV pool, simulated by ``sim.engine.serving``.

The simulation asks for thousands of step times; the step model answers them from memoised
costs on a geometric grid (``StepModel(approx=True)``), so a serving run costs about as much as
pricing a few hundred distinct steps. The KV pool is what HBM leaves after the weights, the
workspace of the largest step and the runtime reserve (the memory model's terms).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from sim.errors import InputError
from sim.scenario import Prediction
from sim.techniques import kv_cache
from sim.techniques.inference_memory import reserved_bytes, weight_bytes, workspace_bytes
from sim.techniques.inference_plan import Plan
from sim.techniques.inference_step import Agg, StepModel, dominant_bound

if TYPE_CHECKING:
    from sim.techniques.inference import InferenceIn


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
    return Prediction(fits=fits, time_s=metrics.get("makespan_s", 0.0), bound=dominant_bound(acc.bounds),
                      memory_bytes={"hbm": w + kv_pool + ws + reserved_bytes(plan), "host": 0.0, "nvme": 0.0},
                      metrics=metrics, breakdown=breakdown, provenance=provenance(dev), warnings=warnings)
