"""Turn measurements made elsewhere into measured trace rows.

Three inputs, each parsed into measurements {family, kernel, workload, values, notes} that
``analysis.bench.rows_from`` makes rows of:

- a PyTorch profiler Chrome trace (``prof.export_chrome_trace``): GPU kernel events
  (``cat: kernel``) are classed into op families by name and summed per launching op. Where the
  trace was recorded with ``record_shapes=True``, the launching op's input shapes give the
  scenario (``aten::mm/addmm/bmm/linear/matmul`` -> gemm, ``scaled_dot_product_attention``
  variants -> attention, ``record_param_comms`` -> collective); kernels without shapes are
  summarised per name but make no row (a row needs a scenario).
- nccl-tests output (``all_reduce_perf`` and friends): each table line gives time, algbw and
  busbw, out-of-place and in-place, for one buffer size.
- the CSV that ``gpusim bench`` writes, carried from another machine (rows and fingerprint as is).
"""
from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

from sim.errors import InputError

# kernel name -> op family; first match wins (attention before gemm: fused attention kernels
# are often CUTLASS-based and carry 'cutlass' or 'gemm' in their names)
KERNEL_FAMILIES = [
    ("collective", re.compile(r"nccl|allreduce|allgather|reducescatter|sendrecv|all_reduce", re.I)),
    ("attention", re.compile(r"flash|fmha|attention|attn", re.I)),
    ("gemm", re.compile(r"gemm|gemv|cutlass|xmma|cublas|s16816|s1688|wgmma|matmul", re.I)),
    ("memory", re.compile(r"elementwise|vectorized|copy|memcpy|memset|fill|reduce|cat_|softmax|norm", re.I)),
]

TYPE_NAMES = {"c10::half": "fp16", "c10::bfloat16": "bf16", "float": "fp32", "c10::float8_e4m3fn": "fp8",
              "c10::float8_e5m2": "fp8", "half": "fp16", "bfloat16": "bf16", "float8_e4m3fn": "fp8"}
TYPE_BYTES = {"float": 4, "float32": 4, "half": 2, "float16": 2, "bfloat16": 2, "bf16": 2, "double": 8,
              "int": 4, "int32": 4, "int64": 8, "long": 8, "int8": 1, "char": 1, "byte": 1, "uint8": 1,
              "float8_e4m3fn": 1, "float8_e5m2": 1}
COLLECTIVES = {"allreduce": "all_reduce", "all_reduce": "all_reduce", "allgather": "all_gather",
               "all_gather": "all_gather", "_allgather_base": "all_gather", "all_gather_into_tensor": "all_gather",
               "reduce_scatter": "reduce_scatter", "reducescatter": "reduce_scatter",
               "_reduce_scatter_base": "reduce_scatter", "reduce_scatter_tensor": "reduce_scatter",
               "all_to_all": "all_to_all", "alltoall": "all_to_all", "all_to_allv": "all_to_all",
               "alltoall_base": "all_to_all", "send": "send_recv", "recv": "send_recv", "sendrecv": "send_recv"}


def kernel_family(name: str) -> str:
    for fam, pat in KERNEL_FAMILIES:
        if pat.search(name):
            return fam
    return "other"


def _fingerprint(kind: str, device: str, blob: bytes, source: str) -> dict:
    from kernels.timing import slug
    return {"id": f"{slug(device or kind)}-{hashlib.sha1(blob).hexdigest()[:8]}", "kind": f"ingested {kind}",
            "gpu_name": device, "source_file": source}


# ------------------------------------------------------------------ Chrome trace

def _dtype(types) -> str | None:
    for t in types or []:
        d = TYPE_NAMES.get(str(t).lower())
        if d:
            return d
    return None


def _prod(xs) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def _concrete(args: dict, i: int):
    c = args.get("Concrete Inputs") or []
    return c[i] if i < len(c) else ""


def op_workload(name: str, args: dict) -> tuple[str, dict, float] | None:
    """(family, workload, FLOPs) of one profiled op from its recorded shapes, or None."""
    dims = args.get("Input Dims") or []
    dt = _dtype(args.get("Input type"))
    n = name.split("::")[-1]
    try:
        if n in ("mm", "addmm", "_scaled_mm", "bmm", "baddbmm", "linear", "matmul") and dt:
            if n == "addmm" or n == "baddbmm":
                dims = dims[1:]
            a, b = dims[0], dims[1]
            batch = 1
            if n == "linear":                        # x[..., k] @ w[n, k]^T
                m, k, nn = _prod(a[:-1]), a[-1], b[0]
            elif len(a) == 3 and len(b) == 3:        # bmm
                batch, m, k, nn = a[0], a[1], a[2], b[2]
            elif len(b) == 2:                        # mm, or matmul of [..., m, k] by [k, n]
                m, k, nn = _prod(a[:-1]), a[-1], b[1]
            else:
                return None
            wl = {"kind": "gemm", "m": int(m), "n": int(nn), "k": int(k), "dtype": dt}
            if batch > 1:
                wl["batch"] = int(batch)
            return "gemm", wl, 2.0 * batch * m * nn * k
        causal_at = {"scaled_dot_product_attention": 5, "_scaled_dot_product_flash_attention": 4,
                     "_scaled_dot_product_efficient_attention": 5, "_scaled_dot_product_cudnn_attention": 6,
                     "_flash_attention_forward": 7}
        if n in causal_at and dt and len(dims) >= 3 and len(dims[0]) == 4:
            c = str(_concrete(args, causal_at[n])).strip().lower()
            if c not in ("true", "false"):
                return None
            causal = c == "true"
            if n == "_flash_attention_forward":      # [B, S, H, D] layout
                (B, SQ, H, D), (_, SKV, HKV, _) = dims[0], dims[1]
            else:
                (B, H, SQ, D), (_, HKV, SKV, _) = dims[0], dims[1]
            wl = {"kind": "attention", "batch": B, "heads": H, "kv_heads": HKV, "seq_q": SQ, "seq_kv": SKV,
                  "head_dim": D, "causal": causal, "dtype": dt, "pass": "fwd", "impl": "flash2"}
            f = 4.0 * B * H * SQ * SKV * D * ((1.0 - SQ / (2.0 * SKV)) if causal else 1.0)
            return "attention", wl, f
        if n == "record_param_comms" or "Collective name" in args:
            op = COLLECTIVES.get(str(args.get("Collective name", "")).lower())
            size = TYPE_BYTES.get(str(args.get("dtype", "")).lower())
            gpus = int(args.get("Group size") or 0)
            nel = max(int(args.get("In msg nelems") or 0), int(args.get("Out msg nelems") or 0))
            if op and size and gpus > 1 and nel > 0:
                return "collective", {"kind": "collective", "op": op, "bytes": float(nel * size), "gpus": gpus}, 0.0
    except (IndexError, TypeError, ValueError):
        return None
    return None


def parse_chrome_trace(trace: dict) -> tuple[list[dict], list[dict]]:
    """(measurements, per-name summary). Each launching op instance's time is the sum of its
    kernels; a measurement's time is the median over instances of the same workload."""
    events = trace.get("traceEvents", trace if isinstance(trace, list) else [])
    ops = {}
    for e in events:
        a = e.get("args") or {}
        if e.get("cat") in ("cpu_op", "user_annotation", "record_param_comms") and "External id" in a:
            w = op_workload(e.get("name", ""), a)
            if w and a["External id"] not in ops:
                ops[a["External id"]] = (e.get("name", ""), w)
    per_name = defaultdict(lambda: {"calls": 0, "total_us": 0.0})
    per_instance = defaultdict(float)
    for e in events:
        if e.get("cat") != "kernel" or "dur" not in e:
            continue
        s = per_name[e.get("name", "")]
        s["calls"] += 1
        s["total_us"] += float(e["dur"])
        xid = (e.get("args") or {}).get("External id")
        if xid in ops:
            per_instance[xid] += float(e["dur"]) * 1e-6
    summary = [{"name": k, "family": kernel_family(k), "calls": v["calls"], "total_s": v["total_us"] * 1e-6,
                "mean_s": v["total_us"] * 1e-6 / v["calls"]} for k, v in per_name.items()]
    summary.sort(key=lambda r: -r["total_s"])
    groups = defaultdict(list)
    for xid, t in per_instance.items():
        opname, (fam, wl, flops) = ops[xid]
        groups[(opname, fam, json.dumps(wl, sort_keys=True))].append((t, flops))
    out = []
    for (opname, fam, wl), inst in groups.items():
        t = statistics.median(x for x, _ in inst)
        vals = {"time_s": (t, "s")}
        if inst[0][1]:
            vals["tflops"] = (inst[0][1] / t / 1e12, "TFLOP/s")
        wld = json.loads(wl)
        if fam == "collective":
            alg = wld["bytes"] / t / 1e9
            vals["algbw_gbps"] = (alg, "GB/s")
            vals["busbw_gbps"] = (alg * _bus_factor(wld["op"], wld["gpus"]), "GB/s")
        out.append({"family": fam, "kernel": f"profiler:{opname}", "workload": wld, "values": vals,
                    "notes": f"PyTorch profiler; median of {len(inst)} call(s); time = sum of the op's GPU kernels"})
    return out, summary


def trace_device(trace: dict) -> tuple[str, float]:
    """(name, memory bytes) of the first GPU in the trace's deviceProperties, if any."""
    for d in trace.get("deviceProperties") or []:
        if d.get("name"):
            return str(d["name"]), float(d.get("totalGlobalMem") or 0)
    return "", 0.0


# ------------------------------------------------------------------ nccl-tests

def _bus_factor(op: str, n: int) -> float:
    """nccl-tests busbw / algbw (PERFORMANCE.md): all_reduce 2(n-1)/n; all_gather, reduce_scatter and
    all_to_all (n-1)/n; send_recv 1."""
    return {"all_reduce": 2.0 * (n - 1) / n, "all_gather": (n - 1) / n, "reduce_scatter": (n - 1) / n,
            "all_to_all": (n - 1) / n}.get(op, 1.0)


_PERF_NAMES = {"all_reduce": "all_reduce", "all_gather": "all_gather", "reduce_scatter": "reduce_scatter",
               "alltoall": "all_to_all", "sendrecv": "send_recv"}


def parse_nccl_tests(text: str, op: str | None = None, gpus: int | None = None, where: str = "nccl-tests") -> dict:
    """{op, gpus, gpus_per_node, device, rows: [{size, count, type, redop, <placement>: {time_s,
    algbw_gbps, busbw_gbps}}]} from nccl-tests output."""
    if op is None:
        m = re.search(r"\b(all_reduce|all_gather|reduce_scatter|alltoall|sendrecv|broadcast|reduce|gather|scatter)"
                      r"_perf\b", text)
        if m and m.group(1) not in _PERF_NAMES:
            raise InputError(where, "op", f"nccl-tests '{m.group(1)}_perf' has no gpusim collective; expected "
                                          f"one of {sorted(set(_PERF_NAMES.values()))}")
        op = _PERF_NAMES[m.group(1)] if m else None
    if op is None:
        raise InputError(where, "op", "the output does not name its test (e.g. all_reduce_perf); pass --op")
    ranks = re.findall(r"#\s*Rank\s+\d+\s+Group\s+\d+\s+Pid\s+\d+\s+on\s+(\S+)\s+device\s+\d+\s+\[[^\]]*\]\s+(.+)", text)
    hdr = re.search(r"nThread\s+(\d+)\s+nGpus\s+(\d+)", text)
    if gpus is None:
        gpus = len(ranks) or (int(hdr.group(1)) * int(hdr.group(2)) if hdr else 0)
    if not gpus:
        raise InputError(where, "gpus", "no '# Rank ...' lines or nGpus header; pass --gpus")
    per_host = defaultdict(int)
    for host, _ in ranks:
        per_host[host] += 1
    device = ranks[0][1].strip() if ranks else ""
    cols = None
    rows = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            toks = s.lstrip("#").split()
            if "size" in toks and "count" in toks and "time" in toks:
                cols = toks
            continue
        toks = s.split()
        if not cols or len(toks) != len(cols) or not toks[0].isdigit():
            continue
        first = cols.index("time")
        second = cols.index("time", first + 1) if "time" in cols[first + 1:] else None
        rec = {"size": int(toks[0]), "count": int(toks[1]), "type": toks[2], "redop": toks[3]}
        for place, i in (("out-of-place", first), ("in-place", second)):
            if i is None:
                continue
            try:
                t_us, alg, bus = (float(x) for x in toks[i:i + 3])
            except ValueError:                               # 'N/A' where a test has no in-place run
                continue
            rec[place] = {"time_s": t_us * 1e-6, "algbw_gbps": alg, "busbw_gbps": bus}
        rows.append(rec)
    if not rows:
        raise InputError(where, "<table>", "no result lines found under a '# size count type ... time algbw "
                                           "busbw' header")
    return {"op": op, "gpus": gpus, "gpus_per_node": max(per_host.values()) if per_host else None,
            "device": device, "rows": rows}


def nccl_measurements(parsed: dict) -> list[dict]:
    out = []
    for r in parsed["rows"]:
        wl = {"kind": "collective", "op": parsed["op"], "bytes": float(r["size"]), "gpus": parsed["gpus"]}
        for place in ("out-of-place", "in-place"):
            if place in r:
                vals = {k: (v, "s" if k == "time_s" else "GB/s") for k, v in r[place].items()}
                out.append({"family": "collective", "kernel": f"nccl-tests {parsed['op']}_perf", "workload": wl,
                            "values": vals, "notes": f"nccl-tests {place}; {r['type']} {r['redop']}"})
    return out


# ------------------------------------------------------------------ files

def read_bench_csv(path: Path) -> tuple[list[dict], dict]:
    """Rows and fingerprint from a CSV written by ``gpusim bench``."""
    import pandas as pd
    from analysis.traces import COLUMNS
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    if "fingerprint_json" not in df.columns or not len(df):
        raise InputError(str(path), "fingerprint_json", "not a gpusim bench CSV (no fingerprint_json column or no rows)")
    fps = set(df["fingerprint_json"])
    if len(fps) != 1:
        raise InputError(str(path), "fingerprint_json", "rows from more than one machine; one CSV per bench run")
    fp = json.loads(fps.pop())
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InputError(str(path), missing[0], f"missing column; expected {COLUMNS}")
    return df[COLUMNS].to_dict("records"), fp


def _hardware(name: str, mem: float, given: str | None, where: str) -> str:
    from analysis.bench import zoo_name
    if given:
        return given
    if not name:
        raise InputError(where, "hardware", "the file does not name its GPU; pass --hardware")
    return zoo_name(name, mem)


def ingest_file(path, out, hardware: str | None = None, op: str | None = None, gpus: int | None = None):
    """Parse ``path`` (Chrome trace .json[.gz], gpusim bench .csv, or nccl-tests text), append its
    rows to the store under ``out``; returns (rows, part path)."""
    import gzip

    from analysis.bench import rows_from
    from analysis.traces import append_measured
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "<file>", "no such file")
    blob = path.read_bytes()
    if path.suffix == ".gz":
        blob = gzip.decompress(blob)
    text = blob.decode("utf-8", errors="replace")
    stamp = hashlib.sha1(blob).hexdigest()[:12]
    if path.suffix == ".csv":
        rows, fp = read_bench_csv(path)
    elif text.lstrip().startswith(("{", "[")):
        try:
            trace = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(str(path), "<file>", f"not valid JSON ({e.msg})") from None
        trace = {"traceEvents": trace} if isinstance(trace, list) else trace
        meas, summary = parse_chrome_trace(trace)
        name, mem = trace_device(trace)
        hw = _hardware(name, mem, hardware, str(path))
        fp = _fingerprint("chrome trace", name or hw, blob, path.name)
        for m in meas:
            m["notes"] += f"; from {path.name}"
        rows = rows_from(meas, fp, hw, stamp, source=f"gpusim ingest: PyTorch profiler trace {path.name}")
        if not rows:
            launches = sum(s["calls"] for s in summary)
            fams = defaultdict(float)
            for s in summary:
                fams[s["family"]] += s["total_s"]
            raise InputError(str(path), "traceEvents", f"{launches} kernel launches ({dict(fams)} s by family) but "
                             "none linked to an op with recorded shapes; record with record_shapes=True")
    else:
        parsed = parse_nccl_tests(text, op or _op_from_name(path.name), gpus, str(path))
        hw = _hardware(parsed["device"], 0.0, hardware, str(path))
        fp = _fingerprint("nccl-tests", parsed["device"] or hw, blob, path.name)
        rows = rows_from(nccl_measurements(parsed), fp, hw, stamp, source=f"gpusim ingest: nccl-tests {path.name}")
        if parsed["gpus_per_node"]:
            for r in rows:
                s = json.loads(r["scenario"])
                s["cluster"] = {"gpus": parsed["gpus"], "gpus_per_node": parsed["gpus_per_node"]}
                r["scenario"] = json.dumps(s, sort_keys=True)
    part = append_measured(rows, fp, out)
    return len(rows), part


def _op_from_name(name: str) -> str | None:
    m = re.search(r"(all_reduce|all_gather|reduce_scatter|alltoall|sendrecv)", name)
    return _PERF_NAMES[m.group(1)] if m else None
