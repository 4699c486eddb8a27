"""Benchmark: one core vs the local Dask cluster on the same sweep, measured in one run.

Run: ``.venv/bin/python benchmarks/bench_sweep.py [--workers N] [--chunk C]``.
The sweep: GPT-3 6.7B training on 16 GPUs over tensor/pipeline degree, micro-batch, recompute,
device and an HBM-bandwidth what-if (432 scenarios, each one ``sim.scenario.predict``). It is
evaluated first in this process, one configuration after another (one core, cold op-price
cache), then with ``analysis.sweep.run_sweep`` on ``make_client(None, N)`` (N worker processes,
each with its own cold cache). Prints both wall times, the cluster start-up, the ratio, and
checks that the rows are identical. Not a test: timing on a shared machine is noisy.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

SPEC = {
    "base": {"hardware": "A100-SXM4-80GB", "cluster": {"gpus": 16, "gpus_per_node": 8}, "model": "gpt3-6.7b",
             "workload": {"kind": "training", "global_batch": 64, "micro_batch": 1, "seq_len": 2048,
                          "precision": "bf16", "parallel": {"tp": 1, "pp": 1}}},
    "grid": {"hardware": ["A100-SXM4-80GB", "H100-SXM5-80GB"],
             "workload.parallel.tp": [1, 2, 4, 8], "workload.parallel.pp": [1, 2, 4],
             "workload.micro_batch": [1, 2, 4], "workload.recompute": ["none", "full"],
             "whatif.hbm_bandwidth": [0.5, 1, 2]},
}


def _missing_as_none(df):
    """Rows the kind rejected have no metrics: None in one frame, NaN after a Parquet merge."""
    return df.astype(object).where(df.notna(), None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=None, help="local cluster workers (default: cores)")
    ap.add_argument("--chunk", type=int, default=16)
    args = ap.parse_args(argv)
    import pandas as pd

    import sim.techniques  # noqa: F401  (import cost kept out of the timing)
    from analysis.search import _close
    from analysis.sweep import _frame, evaluate, expand, make_client, run_sweep

    spec = dict(SPEC, chunk=args.chunk)
    configs = expand(spec)
    t0 = time.perf_counter()
    serial = _frame([evaluate(c) for c in configs])
    t_serial = time.perf_counter() - t0

    workers = args.workers or os.cpu_count() or 1
    t0 = time.perf_counter()
    client = make_client(None, workers)
    client.wait_for_workers(workers)
    t_start = time.perf_counter() - t0
    try:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            dask_df = run_sweep(spec, Path(d) / "bench.parquet", client, progress=False)
            t_dask = time.perf_counter() - t0
    finally:
        _close(client)
    pd.testing.assert_frame_equal(_missing_as_none(serial), _missing_as_none(dask_df))
    failed = int((serial["error"] != "").sum())
    print(f"sweep: {len(configs)} scenarios ({failed} rejected by the training kind), chunks of {args.chunk}; "
          f"load average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"one core, in process       : {t_serial:7.2f} s  ({t_serial / len(configs) * 1e3:.1f} ms/scenario)")
    print(f"local Dask cluster start   : {t_start:7.2f} s  ({workers} worker processes, {os.cpu_count()} cores)")
    print(f"local Dask cluster, sweep  : {t_dask:7.2f} s")
    print(f"ratio one core / cluster   : {t_serial / t_dask:5.2f}x  (with start-up: {t_serial / (t_dask + t_start):.2f}x)")
    print("rows identical: yes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
