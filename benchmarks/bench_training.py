"""Speed of the training engines (not a timed test).

1. Analytical batch evaluation: a sweep of GPT-3 175B configurations on 1024 A100s (TP x PP x
   micro-batch x schedule x recompute x ZeRO-1), one ``evaluate_many`` call (scenario mappings in, as
   a sweep passes them); reports microseconds per configuration cold (first pricing of each layer
   shape) and warm, and the same configurations through ``sim.scenario.predict`` one by one on a
   sample, with the ratio and the largest relative difference (goal: < 100 us per configuration).
2. Discrete-event engine: one iteration of a 64-stage interleaved pipeline (2 chunks per stage)
   with 512 micro-batches, the Megatron-LM 1T configuration (goal: < 10 s).
Usage: python benchmarks/bench_training.py [--quick]
"""
from __future__ import annotations

import itertools
import sys
import time


def sweep_scenarios(n_max: int | None = None) -> list[dict]:
    out = []
    grid = itertools.product((1, 2, 4, 8), (1, 2, 4, 8, 16, 32), (1, 2, 4), ("1f1b", "interleaved"),
                             ("none", "selective", "full"), (0, 1), (1536, 3072))
    for tp, pp, mb, sched, rec, zero, gb in grid:
        dp = 1024 // (tp * pp)
        if gb % (mb * dp) or (sched == "interleaved" and ((gb // (mb * dp)) % pp or 96 % (pp * 2))):
            continue
        par = {"tp": tp, "pp": pp, "dp": dp, "zero": zero, "schedule": sched}
        if sched == "interleaved":
            par["virtual_stages"] = 2
        out.append({"hardware": "A100-SXM4-80GB", "host": "DGX-A100",
                    "cluster": {"gpus": 1024, "gpus_per_node": 8, "inter_node_gbps": 200},
                    "model": "gpt3-175b",
                    "workload": {"kind": "training", "global_batch": gb, "micro_batch": mb, "seq_len": 2048,
                                 "precision": "bf16", "recompute": rec, "parallel": par}})
    return out[:n_max]


def bench_analytical(n_max=None, loop_sample=200):
    import random

    from sim.scenario import predict
    from sim.techniques import step
    from sim.techniques.training import evaluate_many
    scs = sweep_scenarios(n_max)
    step._CACHE.clear(), step._LAYER_CACHE.clear(), step._STAGE_CACHE.clear()
    import sim.techniques.training_batch as tb
    tb._MEMO.clear()
    evaluate_many(scs[:1])                           # imports and the system's first resolution out of the timing
    t = time.perf_counter()
    df = evaluate_many(scs)
    dt = time.perf_counter() - t
    ok = df["error"].eq("").sum()
    print(f"analytical batch (evaluate_many): {len(scs)} configurations ({ok} valid) in {dt:.3f} s = "
          f"{dt / len(scs) * 1e6:.1f} us per configuration, cold (each layer shape priced the first time)")
    best = min(_timed(lambda: evaluate_many(scs)) for _ in range(5))
    print(f"analytical batch, warm caches (best of 5): {best / len(scs) * 1e6:.1f} us per configuration, "
          f"{len(scs) / best:,.0f} configurations/s")
    t = time.perf_counter()
    evaluate_many(scs, memory=False)
    print(f"analytical batch, warm, time only (no memory model): {(time.perf_counter() - t) / len(scs) * 1e6:.1f} us "
          f"per configuration")
    sample = random.Random(0).sample(range(len(scs)), min(loop_sample, len(scs)))
    for i in sample:
        predict(scs[i])                                  # warm
    t = time.perf_counter()
    preds = [predict(scs[i]) for i in sample]
    loop = (time.perf_counter() - t) / len(sample)
    rel = max(abs(df.iloc[i]["iteration_time_s"] / p.time_s - 1) for i, p in zip(sample, preds))
    print(f"predict() loop on {len(sample)} of them, warm: {loop * 1e6:.0f} us per configuration; batch/loop ratio "
          f"{loop / (best / len(scs)):.0f}x; max relative difference {rel:.1e}")
    best3 = df[df.error.eq("") & df.fits].sort_values("iteration_time_s").head(3)
    print(best3[["iteration_time_s", "mfu", "memory_hbm_gb", "bound"]].to_string())


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_des():
    from sim.scenario import predict
    sc = {"hardware": "A100-SXM4-80GB", "host": "DGX-A100",
          "cluster": {"gpus": 3072, "gpus_per_node": 8, "inter_node_gbps": 200}, "model": "megatron-1t",
          "workload": {"kind": "training", "global_batch": 3072, "micro_batch": 1, "seq_len": 2048,
                       "precision": "fp16", "recompute": "full", "engine": "des",
                       "parallel": {"tp": 8, "pp": 64, "dp": 6, "schedule": "interleaved", "virtual_stages": 2}}}
    t = time.perf_counter()
    p = predict(sc)
    dt = time.perf_counter() - t
    print(f"DES: 64 stages x 2 chunks x 512 micro-batches ({p.breakdown['tasks']} tasks) in {dt:.2f} s; "
          f"iteration {p.time_s:.2f} s, bubble {p.metrics['bubble_fraction']:.3f}")


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    bench_analytical(200 if quick else None)
    bench_des()
