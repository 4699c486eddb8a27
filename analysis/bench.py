"""``gpusim bench``: time this machine's kernels and record them as measured trace rows.

With a CUDA GPU it runs the Triton kernels of ``kernels/`` (each over its shape list), the
vendor kernels (cuBLAS, SDPA, fp8 ``_scaled_mm``, NCCL all-reduce with two or more GPUs) and
the host probes; without one it says so in one line and runs the host probes only. Every
measurement becomes one row per metric (traces/README.md) with the scenario it is held
against, appended to ``traces/measured/<fingerprint>/`` as one Parquet part, plus a CSV copy
of the same rows (with the fingerprint) to carry to another checkout and ``--ingest`` there.

``--ingest FILE`` adds rows from a file instead: a PyTorch profiler Chrome trace, nccl-tests
output, or a CSV written by ``gpusim bench`` elsewhere (see ``analysis.ingest``).
"""
from __future__ import annotations

import importlib
import json
import math
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

# kernel modules the bench runs, in order (vendor kernels and host probes come after)
TRITON_MODULES = ("kernels.gemm", "kernels.lowbit_gemm", "kernels.sparse_gemm", "kernels.flash_attention",
                  "kernels.decode_attention", "kernels.bandwidth", "kernels.layernorm")

# (pattern on the CUDA device name, zoo name, test on memory in GB); first match wins
_ZOO_PATTERNS = [
    (r"GH200", "GH200", None),
    (r"H200", "H200-SXM-141GB", None),
    (r"H800", "H800-SXM", None),
    (r"H100.*NVL", None, None),
    (r"H100.*PCIe", "H100-PCIe-80GB", None),
    (r"H100", "H100-SXM5-80GB", None),
    (r"A100.*PCIe", "A100-PCIe-80GB", lambda gb: gb > 60),
    (r"A100", "A100-SXM4-80GB", lambda gb: gb > 60),
    (r"A100", "A100-SXM4-40GB", lambda gb: gb <= 60),
    (r"B200", "B200", None),
    (r"L40S", "L40S", None),
    (r"RTX 4090", "RTX-4090", None),
    (r"RTX 3090", "RTX-3090", None),
    (r"RTX A6000", "RTX-A6000", None),
    (r"\bA10\b", "A10", None),
    (r"\bT4\b", "T4", None),
    (r"V100-SXM2-32GB", "V100-SXM2-32GB", None),
    (r"MI300X", "MI300X", None),
    (r"MI250X", "MI250X", None),
]


def zoo_name(gpu_name: str, memory_bytes: float = 0.0) -> str:
    """The zoo device a CUDA device name denotes, or the raw name when none matches (or the
    matched name is not in the zoo)."""
    from sim.hardware import names
    gb = memory_bytes / 1e9
    for pat, zoo, test in _ZOO_PATTERNS:
        if re.search(pat, gpu_name, re.IGNORECASE) and (test is None or not gb or test(gb)):
            return zoo if zoo and zoo in names("device") else gpu_name
    return gpu_name


def hardware_of(fp: dict) -> str:
    """Trace ``hardware`` for a fingerprint: the zoo device, the raw GPU name, or (no GPU) the CPU model."""
    if fp.get("gpu_name"):
        return zoo_name(fp["gpu_name"], float(fp.get("gpu_memory_bytes") or 0))
    return str(fp.get("cpu_model") or "unknown-cpu")


def hbm_Bps(hardware: str) -> float | None:
    from sim.hardware import load_device, names
    return load_device(hardware).hbm_Bps if hardware in names("device") else None


# ------------------------------------------------------------------ rows

def rows_from(measurements: list[dict], fp: dict, hardware: str, stamp: str,
              source: str = "gpusim bench") -> list[dict]:
    """One trace row per (measurement, metric). A measurement is {family, kernel, workload,
    values {metric: (value, unit)}, notes}; non-positive or non-finite values are dropped."""
    rows = []
    for m in measurements:
        scen = {"hardware": hardware, "workload": m["workload"]}
        gpus = m["workload"].get("gpus", 1) if m["workload"].get("kind") == "collective" else 1
        if gpus > 1:
            scen["cluster"] = {"gpus": gpus, "gpus_per_node": gpus}
        for metric, (value, unit) in m["values"].items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                continue
            rows.append({"id": f"{fp['id']}:{stamp}:{len(rows)}", "family": m["family"], "hardware": hardware,
                         "scenario": json.dumps(scen, sort_keys=True), "baseline_scenario": "",
                         "metric": metric, "value": float(value), "unit": unit, "source": source,
                         "source_locator": m["kernel"], "confidence": "measured", "notes": m.get("notes", ""),
                         "fingerprint": fp["id"]})
    return rows


def write_csv(rows: list[dict], fp: dict, path: Path) -> Path:
    """The rows plus a ``fingerprint_json`` column, so one file carries everything ``--ingest`` needs."""
    import pandas as pd
    from analysis.traces import COLUMNS
    path.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows, columns=COLUMNS).assign(fingerprint_json=json.dumps(fp, sort_keys=True))
    df.to_csv(path, index=False)
    return path


def record(rows: list[dict], fp: dict, out: Path, csv: Path | None = None, stamp: str = "") -> tuple[Path, Path]:
    """Append the rows to the store under ``out`` and write the CSV copy; returns both paths."""
    from analysis.traces import append_measured
    part = append_measured(rows, fp, out)
    csv = csv or part.with_suffix(".csv")
    return part, write_csv(rows, fp, csv)


# ------------------------------------------------------------------ running

def _selected(only: list[str], kernel: str, family: str) -> bool:
    return not only or any(t in kernel or t == family for t in only)


def run_cases(only: list[str], quick: bool, hbm: float | None, log=print) -> list[dict]:
    """Time every selected Triton and vendor case on the GPU; a case that fails (out of memory,
    unsupported on this GPU) is reported and skipped."""
    import torch

    from kernels.timing import bench
    out = []
    for name in TRITON_MODULES + ("kernels.vendor",):
        for case in importlib.import_module(name).cases(quick):
            if not _selected(only, case.kernel, case.family):
                continue
            try:
                t = bench(case.fn, case.make_inputs)
            except Exception as e:  # noqa: BLE001  (one bad case must not stop the suite)
                log(f"  skip {case.kernel} {case.workload}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
                torch.cuda.empty_cache()
                continue
            vals = case.values(t, hbm)
            out.append({"family": case.family, "kernel": case.kernel, "workload": case.workload,
                        "values": vals, "notes": case.notes})
            shown = ", ".join(f"{k} {v:.4g}" for k, (v, _) in vals.items())
            log(f"  {case.kernel:32s} {json.dumps({k: v for k, v in case.workload.items() if k != 'kind'})}: {shown}")
            torch.cuda.empty_cache()
    if _selected(only, "nccl.all_reduce", "collective"):
        from kernels.vendor import allreduce
        for r in allreduce(quick):
            out.append({"family": "collective", "kernel": "nccl.all_reduce", "workload": r["workload"],
                        "values": {"time_s": (r["time_s"], "s"), "algbw_gbps": (r["algbw_gbps"], "GB/s"),
                                   "busbw_gbps": (r["busbw_gbps"], "GB/s")},
                        "notes": "torch.distributed NCCL, fp32 sum, back-to-back mean of 20"})
    return out


def run_host(only: list[str], quick: bool, host_mb: int | None, storage_dir: str | None, log=print) -> list[dict]:
    """The host probes selected by ``only`` ('host' selects all of them)."""
    from kernels import host_probes as hp
    f = 4 if quick else 1
    mb = {"array": host_mb or 256 // f, "file": host_mb or 512 // f}
    probes = {
        "host_memory": lambda: hp.host_memory(mb["array"]),
        "cpu_adam": lambda: hp.cpu_adam(mb["array"] * hp.MB // 4),
        "storage": lambda: hp.storage(mb["file"], directory=storage_dir),
        "pinned_copy": lambda: hp.pinned_copy(mb["array"]),
    }
    out = []
    for name, fn in probes.items():
        if only and not any(t == "host" or t in name for t in only):
            continue
        res = fn()
        for m in res:
            shown = ", ".join(f"{k} {v:.4g}" for k, (v, _) in m["values"].items())
            log(f"  {m['kernel']:32s} {shown}  ({m['notes']})")
        out += res
    return out


def add_arguments(p):
    from analysis.traces import MEASURED
    p.add_argument("--out", default=str(MEASURED), help="measured-trace folder (default traces/measured)")
    p.add_argument("--quick", action="store_true", help="a few shapes per kernel, smaller host probes")
    p.add_argument("--only", metavar="NAME", help="comma-separated: run kernels whose name contains NAME or "
                   "whose family is NAME (e.g. gemm, triton.flash_attention, decode_attention, host, storage)")
    p.add_argument("--csv", metavar="FILE", help="where to write the CSV copy (default: beside the Parquet part)")
    p.add_argument("--host-mb", type=int, metavar="MB", help="host probe array/file size in MB (default 256/512)")
    p.add_argument("--storage-dir", metavar="DIR", help="directory for the file I/O probe (default: the temp dir)")
    p.add_argument("--ingest", metavar="FILE", help="add rows from a Chrome trace JSON, nccl-tests output or a "
                   "gpusim bench CSV instead of running")
    p.add_argument("--hardware", help="with --ingest: hardware name when the file does not give one")
    p.add_argument("--op", help="with --ingest of nccl-tests output: the collective (all_reduce, ...) when the "
                   "text does not name it")
    p.add_argument("--gpus", type=int, help="with --ingest of nccl-tests output: total GPUs when the text "
                   "does not list them")


def run(args) -> int:
    out = Path(args.out)
    if args.ingest:
        from analysis.ingest import ingest_file
        n, where = ingest_file(args.ingest, out, hardware=args.hardware, op=args.op, gpus=args.gpus)
        print(f"ingested {n} rows from {args.ingest} into {where}")
        return 0
    import torch

    from kernels.common import interpreting
    from kernels.timing import fingerprint
    only = [t.strip() for t in (args.only or "").split(",") if t.strip()]
    fp = fingerprint()
    hardware = hardware_of(fp)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    t0 = time.time()
    measurements = []
    if torch.cuda.is_available() and not interpreting():
        print(f"benchmarking on {fp['gpu_name']} (as {hardware}); fingerprint {fp['id']}")
        measurements += run_cases(only, args.quick, hbm_Bps(hardware))
    else:
        print("no CUDA GPU: running host probes only")
    measurements += run_host(only, args.quick, args.host_mb, args.storage_dir)
    rows = rows_from(measurements, fp, hardware, stamp)
    if not rows:
        print("nothing measured (check --only)", file=sys.stderr)
        return 1
    part, csv = record(rows, fp, out, Path(args.csv) if args.csv else None)
    print(f"{len(rows)} rows in {time.time() - t0:.0f} s -> {part} (CSV copy {csv})")
    return 0
