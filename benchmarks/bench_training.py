"""Speed of the training engines (not a timed test).

1. Analytical batch evaluation: a sweep of GPT-3 175B configurations on 1024 A100s (TP x PP x
   micro-batch x schedule x recompute x ZeRO-1), one ``evaluate_many`` call; reports microseconds
   per configuration (goal: < 100 us on average).
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


def bench_analytical(n_max=None):
    from sim.techniques.training import evaluate_many
    scs = sweep_scenarios(n_max)
    evaluate_many(scs[:50])                          # import and first-touch costs out of the timing
    t = time.perf_counter()
    df = evaluate_many(scs)
    dt = time.perf_counter() - t
    ok = df["error"].eq("").sum()
    print(f"analytical: {len(scs)} configurations ({ok} valid) in {dt:.2f} s = {dt / len(scs) * 1e6:.0f} us "
          f"per configuration (includes pricing each new layer shape once)")
    t = time.perf_counter()
    evaluate_many(scs)
    dt = time.perf_counter() - t
    print(f"analytical, warm op cache: {dt / len(scs) * 1e6:.0f} us per configuration")
    t = time.perf_counter()
    evaluate_many(scs, memory=False)
    dt = time.perf_counter() - t
    print(f"analytical, warm op cache, time only (no memory model): {dt / len(scs) * 1e6:.0f} us per configuration")
    best = df[df.error.eq("") & df.fits].sort_values("iteration_time_s").head(3)
    print(best[["iteration_time_s", "mfu", "memory_hbm_gb"]].to_string())


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
