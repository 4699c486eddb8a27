"""``gpusim validate``: predict every trace row and report the error per family and per device.

Each row's scenario goes through ``sim.scenario.predict`` (and its baseline, for a speedup row);
the predicted value of the row's metric is held against the measured one. The error of a row is
``|predicted / measured - 1|``; a family's figures are the median, 90th percentile and maximum
of that error over its predicted rows. A row whose kind is not registered yet, whose device or
model is missing from the zoos, or whose prediction raises is counted as 'not predicted' with
the reason, never a crash. Kernel FLOP rates are recomputed from the predicted time with the
FLOP convention of the published numbers (``flops_convention``), so the two sides always count
the same FLOPs. Docs: docs/validation.md.
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable

import numpy as np

from analysis.traces import MEASURED, PUBLISHED, load_all
from sim.errors import InputError

DEFAULT_BUDGET_S = 35.0
DTYPE_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "int4": 0.5, "int2": 0.25}


class NotPredicted(Exception):
    """A row that cannot be compared; the message is the reason shown in the summary."""


# ---- metric conventions of the published numbers ---------------------------------------------------

def flops_convention(wl: dict) -> float:
    """FLOPs as the published kernel numbers count them (2 per multiply-add).

    gemm: 2*m*n*k*batch, dense-equivalent even when the weights are sparse (Flash-LLM, cuBLAS).
    attention (FlashAttention benchmark rule): forward 4*B*H*Sq*Skv*d, halved when causal;
    backward 2.5x forward; forward+backward 3.5x forward.
    """
    if wl["kind"] == "gemm":
        return 2.0 * wl["m"] * wl["n"] * wl["k"] * wl.get("batch", 1)
    if wl["kind"] == "attention":
        fwd = 4.0 * wl["batch"] * wl["heads"] * wl["seq_q"] * wl["seq_kv"] * wl["head_dim"]
        if wl.get("causal"):
            fwd /= 2
        return fwd * {"fwd": 1.0, "bwd": 2.5, "fwd_bwd": 3.5}[wl.get("pass", "fwd")]
    raise NotPredicted(f"no FLOP convention for kind '{wl['kind']}'")


def decode_bytes(wl: dict) -> float:
    """Bytes a decode-attention kernel must read: the K and V cache, plus q and the output."""
    kv = DTYPE_BYTES[wl.get("kv_dtype") or wl.get("dtype", "fp16")]
    act = DTYPE_BYTES[wl.get("dtype", "fp16")]
    kvh = wl.get("kv_heads") or wl["heads"]
    cache = 2.0 * wl["batch"] * wl["seq_kv"] * kvh * wl["head_dim"] * kv
    return cache + 2.0 * wl["batch"] * wl["seq_q"] * wl["heads"] * wl["head_dim"] * act


def _hbm_Bps(hardware) -> float:
    from sim.hardware import load_device
    return load_device(hardware).hbm_Bps


def predicted_value(metric: str, scen: dict, pred, base=None) -> float:
    """The prediction's value of ``metric``, in the unit the trace stores it in."""
    wl = scen["workload"]
    if metric == "speedup":
        return base.time_s / pred.time_s
    if metric == "time_s":
        return pred.time_s
    if metric == "tflops" and wl["kind"] in ("gemm", "attention"):
        return flops_convention(wl) / pred.time_s / 1e12
    if metric == "hbm_utilization":
        return decode_bytes(wl) / pred.time_s / _hbm_Bps(scen["hardware"])
    value = (pred.metrics or {}).get(metric)
    if not isinstance(value, (int, float)):
        raise NotPredicted(f"metric '{metric}' not in the {wl['kind']} prediction")
    return float(value)


# ---- evaluation -------------------------------------------------------------------------------------

# measured on the host of a machine without a GPU (gpusim bench): they calibrate that host
# (CPU Adam, DRAM, storage efficiencies) rather than validate a device prediction
HOST_PROBE_FAMILIES = {"cpu_adam", "host_memory", "storage"}


def _reason(exc: Exception, scen: dict) -> str:
    """A short reason that groups well in the summary."""
    if isinstance(exc, NotPredicted):
        return str(exc)
    if isinstance(exc, InputError):
        f = exc.field
        if f == "workload.kind":
            return f"kind '{scen['workload'].get('kind')}' not registered"
        if f == "hardware":
            return f"device '{scen.get('hardware')}' not in the zoo"
        if f in ("host", "model"):
            return f"{f} not in the zoo: {str(exc.problem).split(';')[0]}"
        return f"scenario rejected: {f}: {str(exc.problem).split(';')[0][:80]}"
    msg = str(exc).splitlines()[0][:100] if str(exc) else ""
    return f"predictor raised {type(exc).__name__}: {msg}"


def _default_predict():
    from sim.scenario import predict
    return predict


def _scenario(text: str, device, calibrated: bool) -> dict:
    scen = json.loads(text)
    if device is not None:
        scen["hardware"] = device          # a DeviceSpec: calibration fits try efficiency overrides
    scen["parameters"] = "calibrated" if calibrated else "spec"
    return scen


def predict_row(row, device=None, calibrated: bool = False, predict: Callable | None = None) -> float:
    """The predicted value of one trace row's metric, in the row's unit (raises when it cannot).

    ``device`` replaces the scenario's hardware (a DeviceSpec with trial efficiencies, as
    calibration uses it); ``predict`` defaults to ``sim.scenario.predict``. Validation and
    calibration both go through here, so they cannot disagree on what a row means.
    """
    predict = predict or _default_predict()
    scen = _scenario(row["scenario"], device, calibrated)
    base = predict(_scenario(row["baseline_scenario"], device, calibrated)) if row["metric"] == "speedup" else None
    return predicted_value(row["metric"], scen, predict(scen), base)


def evaluate(rows, predict: Callable | None = None, calibrated: bool = False,
             budget_s: float | None = DEFAULT_BUDGET_S) -> list[dict]:
    """Predict every row; return one result dict per row (predicted or with a reason).

    Families are visited smallest first so a time budget, when it runs out, leaves the big
    families partly done rather than the small ones untouched. Identical scenarios (e.g. a shared
    baseline) are predicted once.
    """
    setup_error = None
    if predict is None:
        predict = _default_predict()
        try:
            import sim.techniques  # noqa: F401  (kinds register on import; a broken module fails all rows)
        except Exception as e:     # noqa: BLE001  (reported on every row instead of crashing)
            setup_error = f"technique modules failed to import: {type(e).__name__}: {str(e)[:80]}"
    cache: dict[str, object] = {}

    def cached(scen: dict):
        key = json.dumps(scen, sort_keys=True)
        if key not in cache:
            try:
                cache[key] = predict(scen)
            except Exception as e:   # noqa: BLE001  (every failure becomes a reason, never a crash)
                cache[key] = e
        out = cache[key]
        if isinstance(out, Exception):
            raise out
        return out

    sizes = Counter(rows["family"])
    order = sorted(range(len(rows)), key=lambda i: (sizes[rows["family"].iloc[i]], rows["family"].iloc[i], i))
    t0 = time.perf_counter()
    results = [None] * len(rows)
    for i in order:
        r = rows.iloc[i]
        res = {"id": r["id"], "family": r["family"], "hardware": r["hardware"], "metric": r["metric"],
               "measured": float(r["value"]), "unit": r["unit"], "origin": r.get("origin", "published"),
               "predicted": None, "error": None, "ratio": None, "bound": None, "reason": None}
        results[i] = res
        if setup_error:
            res["reason"] = setup_error
            continue
        if budget_s is not None and time.perf_counter() - t0 > budget_s:
            res["reason"] = f"time budget ({budget_s:g} s) spent"
            continue
        if r["family"] in HOST_PROBE_FAMILIES:
            res["reason"] = "host probe of a CPU-only machine: fitted into its host profile by gpusim calibrate"
            continue
        try:
            value = predict_row(r, calibrated=calibrated, predict=cached)
            if not (math.isfinite(value) and value > 0):
                raise NotPredicted(f"predicted {r['metric']} is not a positive number")
        except Exception as e:   # noqa: BLE001
            res["reason"] = _reason(e, json.loads(r["scenario"]))
            continue
        res["predicted"] = value
        res["error"] = abs(value / res["measured"] - 1.0)
        res["ratio"] = value / res["measured"]
        res["bound"] = getattr(cached(_scenario(r["scenario"], None, calibrated)), "bound", "")
    return results


# ---- statistics ---------------------------------------------------------------------------------------

def error_stats(results: list[dict]) -> dict:
    """rows, predicted, and over the predicted rows: median, p90 and max of |pred/meas - 1|, and the
    median signed ratio - 1 (bias: > 0 means the model predicts high)."""
    errs = np.array([r["error"] for r in results if r["error"] is not None], dtype=float)
    ratios = np.array([r["ratio"] for r in results if r["error"] is not None], dtype=float)
    out = {"rows": len(results), "predicted": int(errs.size)}
    if errs.size:
        out.update(median=float(np.median(errs)), p90=float(np.percentile(errs, 90)), max=float(errs.max()),
                   bias=float(np.median(ratios) - 1.0))
    else:
        out.update(median=None, p90=None, max=None, bias=None)
    return out


def summarize(results: list[dict]) -> dict:
    by = {"family": defaultdict(list), "hardware": defaultdict(list)}
    for r in results:
        by["family"][r["family"]].append(r)
        by["hardware"][r["hardware"]].append(r)
    reasons = Counter(r["reason"] for r in results if r["reason"])
    return {"overall": error_stats(results),
            "by_family": {k: error_stats(v) for k, v in sorted(by["family"].items())},
            "by_device": {k: error_stats(v) for k, v in sorted(by["hardware"].items())},
            "not_predicted": dict(reasons.most_common())}


# ---- command line -----------------------------------------------------------------------------------------

def add_arguments(p):
    p.add_argument("--json", action="store_true", help="print one JSON object: stats and per-row results")
    p.add_argument("--family", action="append", metavar="F", help="only this family (repeatable)")
    p.add_argument("--device", action="append", metavar="D", help="only this zoo device (repeatable)")
    p.add_argument("--calibrated", action="store_true",
                   help="use the calibrated efficiency profiles (default: spec efficiencies, before fitting)")
    p.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                   help=f"stop predicting after this many seconds (default {DEFAULT_BUDGET_S:g}; 0 = no limit)")
    p.add_argument("--published", default=str(PUBLISHED), help="published traces folder")
    p.add_argument("--measured", default=str(MEASURED), help="measured traces folder")


def _pct(v) -> str:
    return "      -" if v is None else f"{100 * v:6.1f}%"


def _table(title: str, stats: dict[str, dict], width: int) -> list[str]:
    lines = [f"{title:<{width}} {'rows':>5} {'pred':>5} {'median':>7} {'p90':>7} {'max':>7} {'bias':>7}"]
    for k, s in stats.items():
        lines.append(f"{k:<{width}} {s['rows']:>5} {s['predicted']:>5} {_pct(s['median'])} {_pct(s['p90'])} "
                     f"{_pct(s['max'])} {_pct(s['bias'])}")
    return lines


def render(summary: dict, n_pub: int, n_meas: int, seconds: float, calibrated: bool) -> str:
    """Text report; the last lines (per family, reasons, one overall line) are the compact summary."""
    width = max([len(k) for k in (*summary["by_device"], *summary["by_family"])] + [10])
    lines = _table("device", summary["by_device"], width) + [""]
    lines += _table("family", summary["by_family"], width)
    top = list(summary["not_predicted"].items())
    for reason, n in top[:3]:
        lines.append(f"  not predicted {n:>5}: {reason}")
    if len(top) > 3:
        lines.append(f"  not predicted {sum(n for _, n in top[3:]):>5}: {len(top) - 3} other reasons (--json)")
    o = summary["overall"]
    err = "no rows predicted" if not o["predicted"] else \
        f"|pred/meas-1| median {100 * o['median']:.1f}%, p90 {100 * o['p90']:.1f}%, max {100 * o['max']:.0f}%"
    lines.append(f"validate ({'calibrated' if calibrated else 'spec'}): {o['predicted']}/{o['rows']} rows "
                 f"predicted ({n_pub} published, {n_meas} measured) in {seconds:.1f} s; {err}")
    return "\n".join(lines)


def run(args) -> int:
    t0 = time.perf_counter()
    df = load_all(args.published, args.measured)
    if args.family:
        df = df[df["family"].isin(args.family)]
    if args.device:
        df = df[df["hardware"].isin(args.device)]
    if not len(df):
        raise InputError("gpusim validate", "--family/--device", "no trace rows match the filter")
    results = evaluate(df.reset_index(drop=True), calibrated=args.calibrated, budget_s=args.budget_s or None)
    summary = summarize(results)
    seconds = time.perf_counter() - t0
    n_meas = int((df["origin"] == "measured").sum())
    if args.json:
        print(json.dumps({**summary, "parameters": "calibrated" if args.calibrated else "spec",
                          "seconds": round(seconds, 3), "rows": results}, default=float))
    else:
        print(render(summary, len(df) - n_meas, n_meas, seconds, args.calibrated))
    return 0
