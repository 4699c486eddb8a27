"""``gpusim sweep SWEEP.yaml``: evaluate a grid (or list) of scenarios into one Parquet file.

A sweep file::

    base: {hardware: H100-SXM5-80GB, workload: {kind: gemm, m: 1, n: 8192, k: 8192, dtype: bf16}}
    grid:                         # cartesian product; keys are dotted scenario paths
      hardware: [A100-SXM4-80GB, H100-SXM5-80GB]
      workload.m: [1, 16, 256, 4096]
      whatif.hbm_bandwidth: [0.5, 1, 2, 4]
    list:                         # optional: explicit configurations, each a mapping of overrides
      - {workload.dtype: fp8}
    chunk: 64                     # configurations per task

Every configuration gets a stable ``config_id`` (its index in the expansion). Results land in
``OUT.parts/`` as one Parquet file per finished chunk, each written to a temporary name and
renamed (atomic), so a sweep killed mid-way resumes by skipping the chunks already there; when all
chunks are done they are merged, sorted by config_id, into ``OUT`` (the same rows a clean run
gives). Work runs on Dask: a local cluster on this machine's cores by default, or the scheduler at
``--scheduler ADDRESS``.
"""
from __future__ import annotations

import copy
import itertools
import json
import os
from pathlib import Path

import pandas as pd

from sim.errors import InputError
from sim.hardware import read_yaml

SWEEP_FIELDS = {"base", "grid", "list", "chunk"}


def add_arguments(p):
    p.add_argument("sweep", help="sweep YAML file")
    p.add_argument("--out", help="output Parquet file (default: sweeps/<sweep name>.parquet)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, default=None, help="local cluster workers (default: cores)")
    p.add_argument("--no-progress", action="store_true")


def set_path(d: dict, dotted: str, value):
    """Set ``d['a']['b'] = value`` for ``dotted='a.b'``, creating mappings on the way."""
    keys = dotted.split(".")
    for k in keys[:-1]:
        if not isinstance(d.get(k), dict):
            d[k] = {}
        d = d[k]
    d[keys[-1]] = value


def expand(spec: dict, where: str = "sweep") -> list[dict]:
    """All configurations of a sweep: each is {'config_id', 'overrides', 'scenario'}."""
    unknown = set(spec) - SWEEP_FIELDS
    if unknown:
        raise InputError(where, sorted(unknown)[0], f"unknown field; expected one of {sorted(SWEEP_FIELDS)}")
    base = spec.get("base")
    if not isinstance(base, dict):
        raise InputError(where, "base", "missing; expected a scenario mapping")
    grid = spec.get("grid") or {}
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise InputError(where, f"grid.{k}", f"expected a non-empty list of values, got {v!r}")
    keys = list(grid)
    combos = [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))] or [{}]
    extra = spec.get("list") or []
    if not isinstance(extra, list) or not all(isinstance(e, dict) for e in extra):
        raise InputError(where, "list", "expected a list of mappings of overrides")
    configs = []
    for overrides in combos + extra:
        sc = copy.deepcopy(base)
        for k, v in overrides.items():
            set_path(sc, k, v)
        configs.append({"config_id": len(configs), "overrides": overrides, "scenario": sc})
    return configs


def evaluate(config: dict) -> dict:
    """One result row: the overrides as ``in.<path>`` columns, then the prediction (or its error)."""
    from sim.scenario import predict
    row = {"config_id": config["config_id"]}
    for k, v in config["overrides"].items():
        row[f"in.{k}"] = v if isinstance(v, (int, float, str, bool)) else json.dumps(v, sort_keys=True)
    row["scenario"] = json.dumps(config["scenario"], sort_keys=True)
    try:
        p = predict(config["scenario"])
    except InputError as e:
        row["error"] = str(e)
        return row
    row.update(error="", fits=p.fits, time_s=p.time_s, bound=p.bound, provenance=p.provenance)
    for tier, b in p.memory_bytes.items():
        row[f"memory.{tier}"] = float(b)
    for k, v in p.metrics.items():
        if isinstance(v, (int, float, bool)):
            row[f"metric.{k}"] = v
    return row


def _evaluate_chunk(configs: list[dict]) -> list[dict]:
    # GPUSIM_SWEEP_DELAY_S slows each chunk down so tests can kill a sweep mid-way
    delay = float(os.environ.get("GPUSIM_SWEEP_DELAY_S", "0"))
    if delay:
        import time
        time.sleep(delay)
    return [evaluate(c) for c in configs]


def _write_atomic(df: pd.DataFrame, path: Path):
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    df.to_parquet(tmp, index=False)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).sort_values("config_id").reset_index(drop=True)


def run_sweep(spec: dict, out: Path, client=None, progress: bool = True, where: str = "sweep") -> pd.DataFrame:
    """Evaluate (or resume) a sweep; return the merged frame, also written to ``out``."""
    from dask.distributed import as_completed
    from tqdm import tqdm

    configs = expand(spec, where)
    size = int(spec.get("chunk", 64))
    chunks = [configs[i:i + size] for i in range(0, len(configs), size)]
    parts = out.with_name(out.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    todo = [(i, c) for i, c in enumerate(chunks) if not (parts / f"chunk-{i:06d}.parquet").exists()]
    bar = tqdm(total=len(configs), initial=len(configs) - sum(len(c) for _, c in todo),
               disable=not progress, unit="cfg", desc=out.stem)
    if todo:
        futures = {client.submit(_evaluate_chunk, c, pure=False): i for i, c in todo}
        for fut in as_completed(futures):
            rows = fut.result()
            _write_atomic(_frame(rows), parts / f"chunk-{futures[fut]:06d}.parquet")
            bar.update(len(rows))
    bar.close()
    files = sorted(parts.glob("chunk-*.parquet"))
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    df = df.sort_values("config_id").reset_index(drop=True)
    if len(df) != len(configs) or df["config_id"].duplicated().any():
        raise RuntimeError(f"{parts}: {len(df)} rows for {len(configs)} configurations; delete it and rerun")
    _write_atomic(df, out)
    for f in files:
        f.unlink()
    parts.rmdir()
    return df


def make_client(scheduler: str | None = None, workers: int | None = None):
    """A Dask client: the given scheduler, else a local cluster of one process per core."""
    from dask.distributed import Client, LocalCluster
    if scheduler:
        return Client(scheduler)
    n = workers or os.cpu_count() or 1
    return Client(LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"))


def close_client(client) -> None:
    """Close the client and, when it made one, its local cluster (worker processes included)."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def run(args) -> int:
    spec = read_yaml(Path(args.sweep))
    out = Path(args.out or Path("sweeps") / (Path(args.sweep).stem + ".parquet"))
    out.parent.mkdir(parents=True, exist_ok=True)
    client = make_client(args.scheduler, args.workers)
    try:
        df = run_sweep(spec, out, client, progress=not args.no_progress, where=args.sweep)
    finally:
        close_client(client)
    failed = int((df["error"] != "").sum())
    print(f"{len(df)} configurations -> {out} ({failed} not predicted: see the 'error' column)")
    return 0
