"""Benchmark: the full parallel-layout search for GPT-3 175B on 1,024 A100 GPUs, and the
vectorized path against a per-configuration ``predict`` loop, measured in one run.

Run: ``.venv/bin/python benchmarks/bench_search.py [--loop-sample N] [--workers N] [--cp on|off]``.

1. Full search (Narayanan et al. 2021's setup: global batch 1536, sequence 2048, 8 GPUs per
   node): enumerate every layout, evaluate them all with the training kind's vectorized
   function in this process (one core), rank. Prints candidates, valid, fitting, wall time and
   the best layouts. Target: under 10 s.
2. Vectorized vs loop: a random sample of the same valid layouts evaluated by the training
   kind's batch function and then through ``sim.scenario.predict`` one by one, both after the
   search has warmed the op-price caches (like against like); once with the default
   (calibrated) parameters, whose profile file ``predict`` reads on every call, and once with
   ``parameters: spec``, which isolates the model's own per-configuration cost. Prints
   microseconds per configuration both ways and the ratio. Target: >= 50x.
3. One core vs the local Dask cluster on the same search (cluster start-up reported apart).
Not a test: timing on a shared machine is noisy.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loop-sample", type=int, default=300, help="layouts timed through predict() one by one")
    ap.add_argument("--workers", type=int, default=None, help="local cluster workers (default: cores)")
    ap.add_argument("--cp", choices=["on", "off"], default="off", help="also enumerate context parallelism")
    ap.add_argument("--hardware", default="A100-SXM4-80GB")
    args = ap.parse_args(argv)
    import sim.techniques  # noqa: F401  (import cost kept out of the timing)
    from analysis import search as S
    from analysis.sweep import make_client
    from sim.models import load_model

    model = load_model("gpt3-175b")
    ctx = S.TrainingContext(args.hardware, "gpt3-175b", 1024, 8, 1536, 2048)

    def space():
        return S.TrainingSpace(model, 1024, 8, 1536, 2048, context_parallel=args.cp == "on")

    # 1. full search, one core
    t0 = time.perf_counter()
    df, summ = S.search_training(ctx, space())
    t_search = time.perf_counter() - t0
    n = len(df)
    print(f"GPT-3 175B on 1024 x {args.hardware} (global batch 1536, seq 2048, 8 GPUs/node, cp {args.cp}); "
          f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"  candidates examined {summ['candidates']}, valid and evaluated {n}, fit in memory {summ['fit']}")
    print(f"  full search, one core: {t_search:.2f} s (enumeration {summ['enumerate_s']:.2f} s), "
          f"{t_search / n * 1e6:.0f} us per layout, cold caches ({'under' if t_search < 10 else 'OVER'} "
          f"the 10 s target)")
    top = df[df["rank"].notna()].sort_values("rank").head(3)
    S.confirm(ctx, df, top.index)
    for _, r in df.loc[top.index].iterrows():
        print(f"  #{int(r['rank'])}: {S.layout_label(r)}: {r['iteration_time_s']:.2f} s/iter, "
              f"MFU {r['mfu']:.3f}, {r['memory_hbm_gb']:.1f} GB/GPU, {r['bound']}")

    # 2. vectorized vs per-configuration loop on the same sample, both with the caches the search warmed;
    #    then again with parameters: spec (no calibrated-profile file read inside every predict())
    k = min(args.loop_sample, n)
    sample = df.sample(k, random_state=0)[S.LAYOUT_COLS]
    for label, c in (("default parameters", ctx), ("parameters: spec", replace(ctx, parameters="spec"))):
        S.evaluate_vectorized(c, sample)                                # warm this context's caches
        t0 = time.perf_counter()
        vec = S.evaluate_vectorized(c, sample)
        t_vec = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = S.evaluate_scalar(c, sample)
        t_loop = time.perf_counter() - t0
        rel = ((vec[S.NUMERIC] - ref[S.NUMERIC]).abs() / ref[S.NUMERIC].abs()).to_numpy().max()
        print(f"  {k} sampled layouts, warm caches, {label}: predict() loop {t_loop / k * 1e6:.0f} us per layout, "
              f"vectorized {t_vec / k * 1e6:.0f} us per layout; ratio {t_loop / t_vec:.1f}x "
              f"({'meets' if t_loop / t_vec >= 50 else 'BELOW'} the 50x target); max relative difference {rel:.1e}")

    # 3. one core vs the local Dask cluster
    workers = args.workers or os.cpu_count() or 1
    t0 = time.perf_counter()
    client = make_client(None, workers)
    client.wait_for_workers(workers)
    t_start = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        df2, _ = S.search_training(ctx, space(), client, chunk=max(256, n // (4 * workers) + 1))
        t_dask = time.perf_counter() - t0
    finally:
        S._close(client)
    same = df2.drop(columns="bound").equals(df.drop(columns="bound"))   # df's top rows got a bound from confirm()
    print(f"  local Dask cluster ({workers} workers on {os.cpu_count()} cores): start {t_start:.2f} s, "
          f"search {t_dask:.2f} s; ratio one core / cluster {t_search / t_dask:.2f}x "
          f"(with start-up {t_search / (t_dask + t_start):.2f}x); rows identical: {'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
