"""``gpusim calibrate``: fit each device's efficiency parameters to trace rows, check the fit by
cross-validation grouped by source, and write calibrated profiles that ``sim/hardware`` loads.

Why this shape:

* Only declared, physically meaningful parameters are fitted (``sim.cost.efficiency.PARAMS``:
  achievable fraction of a peak, a fixed per-launch or per-tile cost, a link efficiency), each
  inside its declared [lo, hi]. Each family lists the few parameters its rows can pin down
  (``FAMILIES``); a parameter the rows do not move (its effect on every prediction is under 1%
  when it doubles) is left at its spec value, and a family fits at most one parameter per two
  rows (a single row fits nothing: no residual would be left to check it). Nothing here is a
  free regressor.
* The objective is the log ratio log(predicted / measured), so a 10% miss weighs the same for a
  GEMM in TFLOP/s and a collective in GB/s, too fast and too slow alike, and a soft-L1 loss keeps
  one misread figure from dragging a whole family. A weak pull towards the spec value keeps a
  weakly constrained parameter where its source put it.
* A kernel row times one kernel by itself: its fixed cost is ``isolated_launch_s`` (the launch
  path of a lone kernel), which the GEMM family fits; the in-stream ``launch_overhead_s`` that
  every kernel of a training or decode step pays is fitted by no kernel family.
* A parameter used by several families is fitted once per device, by its home family only (the
  one whose rows measure it most directly); families are fitted in ``FAMILIES`` order, each with
  the values fitted before it in place (``hbm_efficiency`` from STREAM rows, then GEMM's Tensor
  Core fraction on top). Letting any family fit a shared parameter was tried and rejected: a
  launch cost fitted to decode kernels made held-out small GEMMs 2x too slow.
* The error quoted for a calibration is measured on rows it was not fitted to: k folds that hold
  out whole sources (a paper, a repository, one kernel on one measured machine), because rows of
  one source share its setup and would flatter the fit. Where a device's family has one source
  only, the folds hold out rows of that source and the table says so.

* End-to-end families (single-node and multi-node training, inference, serving) come last and fit
  only host-side parameters no kernel row measures (``host_dispatch_s``: the CPU time per launched
  kernel of an eager framework; ``infer_step_overhead_s``, ``infer_eager_dispatch_s``). The model
  reads them from the device, so they live in the device profile of the GPU the rows ran on, marked
  ``scope: host`` (docs/calibration.md says why). A family may list a parameter whose home is
  another family (``tc_peak_fraction``: gemm); it fits it only on a device with no rows of that
  family, and only if its rows move it apart from the parameters before it (independence check).
* Where one source holds a family's rows on a device, folds hold out whole groups of a family's
  ``group_by`` fields (vTrain: model shape, hidden x layers), so a held-out row's configuration was
  never seen in training; the tables call it 'within one source'.

The per-row prediction is ``analysis.validate``'s, so calibration and validation cannot disagree
about what a row means. The host side (``calibrate_hosts``) turns the host probes of a machine
(``gpusim bench`` without a GPU) into a host profile: its measured DRAM and file I/O rates as
figures over a zoo base host, and the CPU Adam and DRAM copy efficiencies fitted to them, which
``host: local`` selects on that machine (``sim.hardware.with_host_calibration``).
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sim.cost.efficiency import PARAMS
from sim.errors import InputError
from sim.hardware import CALIBRATED, load_device, names
from sim.hardware.spec import DeviceSpec


@dataclass(frozen=True)
class Family:
    """An op family: the parameters its rows fit (in priority order) and the size variables whose
    fitted range is stored, so predictions outside it can be flagged. ``group_by`` names the
    scenario fields whose values a cross-validation fold holds out whole when the family has one
    source on a device (rows of one configuration grid: see ``make_folds``)."""
    name: str
    params: tuple[str, ...]
    sizes: tuple[str, ...]
    why: str
    group_by: tuple[str, ...] = ()


# Each parameter has one home family, the one whose rows measure it most directly, and is fitted
# only there; every other family uses that value (so a fixed cost fitted on decode kernels cannot
# leak into GEMMs). Families are fitted in this order, each on top of the values fitted before.
FAMILIES: tuple[Family, ...] = (
    Family("memory", ("hbm_efficiency", "dram_latency_s"), ("bytes",),
           "STREAM-like kernels see the device-memory roof alone: the achievable fraction of the "
           "spec bandwidth, and the latency ramp (Little's law) where arrays are small"),
    Family("l2", ("l2_efficiency", "l2_latency_s"), ("bytes",),
           "an L2-resident read sees the L2 roof alone"),
    # A GEMM row times one kernel by itself, so its fixed cost is the isolated launch
    # (isolated_launch_s), not the in-stream gap (launch_overhead_s) the kernels of a training or
    # decode step pay: fitting the latter to small GEMMs made every decode step slower.
    Family("gemm", ("tc_peak_fraction", "tile_overhead_s", "isolated_launch_s"), ("m", "n", "k"),
           "large GEMMs measure the sustained Tensor Core fraction (clock under load, issue "
           "overheads); small ones the fixed per-tile cost and the launch of a kernel timed by itself"),
    Family("attention", ("mma_sync_fraction", "attn_flash3_overlap", "attn_fwd_alu_ops_per_score",
                         "attn_bwd_alu_ops_per_score"), ("batch", "seq_q", "seq_kv", "head_dim"),
           "fused attention: the share of the matrix peak mma.sync reaches on Hopper (FlashAttention "
           "1/2), how much softmax FlashAttention-3 hides under its GEMMs, and the CUDA-core work "
           "per score element forward and backward"),
    Family("decode_attention", ("kv_dequant_ops_per_elem",), ("batch", "seq_kv", "head_dim"),
           "decode attention streams the KV cache (HBM parameters come from the memory family); "
           "a quantized cache adds its dequantisation work"),
    Family("lowbit_gemm", ("dequant_ops_per_weight", "simt_overlap"), ("m", "n", "k"),
           "weight-only low-bit GEMMs dequantise on CUDA cores, partly hidden under the loads"),
    Family("sparse_gemm", ("sparse_extract_ops_per_nnz",), ("m", "n", "k"),
           "load-as-sparse GEMMs pay a per-nonzero extraction on CUDA cores"),
    Family("transfer", ("pcie_h2d_efficiency", "pcie_efficiency", "transfer_latency_s"), ("bytes",),
           "host<->GPU copies measure the PCIe payload share each direction and the per-copy cost"),
    Family("collective", ("nvlink_efficiency", "nccl_simple_launch_s", "nccl_ll128_launch_s", "collective_launch_s",
                          "nvls_efficiency"), ("bytes", "gpus"),
           "nccl-tests bus bandwidth measures the achievable link rate (large messages) and the "
           "fixed cost of each NCCL protocol (small and mid-size messages: LL, LL128, Simple)"),
    # End-to-end families come last, on top of every kernel-level value, and fit only host-side
    # parameters that no kernel row measures (the CPU and framework cost per launched kernel or step).
    # A parameter they list whose home is a kernel family (tc_peak_fraction: gemm) is fitted by them
    # only on a device without rows of that home family, and only if the rows constrain it apart
    # from the host-side parameter (``_lsq``'s independence check).
    Family("training_single_node", ("host_dispatch_s", "tc_peak_fraction"),
           ("hidden", "layers", "micro_batch", "global_batch", "seq_len", "tp", "pp", "dp", "gpus"),
           "small models on one node are host-bound: a layer costs the CPU time of issuing its kernels "
           "(host_dispatch_s per kernel: Python, autograd, dispatcher, allocator, cudaLaunchKernel on "
           "that machine's CPU and framework), whatever its width",
           group_by=("hidden", "layers")),
    Family("training", ("host_dispatch_s", "tc_peak_fraction"),
           ("hidden", "layers", "micro_batch", "global_batch", "seq_len", "tp", "pp", "dp", "gpus"),
           "multi-node training of large models: the host cost per kernel where they are host-bound "
           "(rarely: their kernels are long)", group_by=("hidden", "layers")),
    Family("inference", ("infer_step_overhead_s", "infer_eager_dispatch_s"),
           ("batch", "prompt_len", "gen_len", "tp"),
           "generation throughput and latency: the host work per forward step the GPU waits on "
           "(scheduling, sampling, sync), and per kernel where the framework is not graph-captured",
           group_by=("model",)),
    Family("serving", ("infer_step_overhead_s", "infer_eager_dispatch_s"),
           ("batch", "prompt_len", "gen_len", "tp"),
           "a serving engine under load: the same host costs per step as offline inference",
           group_by=("model",)),
)
FAMILY = {f.name: f for f in FAMILIES}
# Each parameter's home: the first family that lists it. A later family fits it only on a device
# with no rows of its home family (there, nothing else measures it).
HOME: dict[str, str] = {}
for _f in FAMILIES:
    for _p in _f.params:
        HOME.setdefault(_p, _f.name)
# Parameters that describe the machine's CPU and software stack, not the GPU: a device profile that
# holds them records the host they were fitted on (docs/calibration.md, 'Host-side parameters').
HOST_SIDE = frozenset({"host_dispatch_s", "recompute_host_overhead_s", "train_iteration_overhead_s",
                       "train_microbatch_overhead_s", "infer_step_overhead_s", "infer_eager_dispatch_s"})
SENSITIVITY = 0.01      # |d log(pred) / d log(param)| below this on every row: the rows do not pin it
PRIOR_WEIGHT = 0.02     # residual per unit relative departure from the spec value
LOSS_SCALE = 0.05       # soft-L1: log errors beyond ~5% count linearly, not squared
CAL_VERSION = 1


# ---------------------------------------------------------------- prediction with an override

def override(device: DeviceSpec, values: dict[str, float]) -> DeviceSpec:
    """The device with ``values`` merged over its efficiency (no re-validation: the values come
    from inside the declared bounds, and this runs thousands of times per fit)."""
    return device.model_copy(update={"efficiency": {**device.efficiency, **values}})


def predictor():
    """``fn(row, device) -> predicted value`` in the row's metric: the validator's own per-row
    prediction with the device replaced by ``device`` (spec parameters, no profile applied)."""
    from analysis.validate import predict_row
    from sim.cost.efficiency import declare_all
    declare_all()                          # host-side parameters the end-to-end families fit
    return lambda row, device: predict_row(row, device=device)


def _safe(predict, row, device) -> float:
    try:
        v = float(predict(row, device))
    except Exception:  # noqa: BLE001  (a row the model cannot price is listed as unpredictable, not fatal)
        return math.nan
    return v if math.isfinite(v) and v > 0 else math.nan


def log_errors(rows: pd.DataFrame, device: DeviceSpec, predict) -> np.ndarray:
    return np.array([math.log(_safe(predict, r, device) / r["value"]) for _, r in rows.iterrows()])


def rel_err(logr: np.ndarray) -> np.ndarray:
    """|pred/meas - 1| from log ratios."""
    return np.abs(np.expm1(logr))


# ---------------------------------------------------------------- one family

@dataclass
class FitResult:
    family: str
    values: dict[str, float]                     # fitted parameter -> value
    kept: dict[str, str] = field(default_factory=dict)    # candidate not fitted -> why
    n: int = 0
    ids: list[str] = field(default_factory=list)
    unpredictable: list[str] = field(default_factory=list)
    err_spec: list[float] = field(default_factory=list)   # |pred/meas-1| per row, spec parameters
    err_fit: list[float] = field(default_factory=list)    # same after the fit (in-sample)
    at_bound: list[str] = field(default_factory=list)


def _scale(p, x0: float) -> float:
    if x0 != 0:
        return abs(x0)
    span = p.hi - p.lo
    return span if math.isfinite(span) and span > 0 else 1.0


def declared(name: str):
    return PARAMS[name]


def current(device, name: str) -> float:
    """The value ``name`` has on ``device`` now, clipped into its declared bounds."""
    p = declared(name)
    return min(max(device.efficiency.get(name, p.default), p.lo), p.hi)


def _lsq(rows: pd.DataFrame, base: np.ndarray, device, names_: list[str], predict, prior_weight: float,
         res: FitResult, rows_per_param: int = 2) -> dict[str, float]:
    """Bounded least squares of log(pred/meas) over the parameters in ``names_`` the rows constrain."""
    from scipy.optimize import least_squares

    x0 = np.array([current(device, n) for n in names_])
    scale = np.array([_scale(declared(n), x) for n, x in zip(names_, x0)])
    # identifiability: does doubling (or, at a bound, halving) the parameter move any prediction by >1%?
    # independence: the part of its effect that the parameters accepted before it cannot mimic (the
    # residual of projecting its column onto theirs) must still move some prediction by >1%
    free, cols = [], []
    for j, n in enumerate(names_):
        step = x0[j] if x0[j] * 2 <= declared(n).hi else -x0[j] / 2
        if step == 0:
            step = scale[j] * 0.5
        col = log_errors(rows, override(device, {n: x0[j] + step}), predict) - base
        moved = np.nanmax(np.abs(col))
        if not moved >= SENSITIVITY:
            res.kept[n] = "the rows do not constrain it (predictions move <1% when it doubles)"
            continue
        if cols:
            ok = np.isfinite(col) & np.all(np.isfinite(np.array(cols)), axis=0)
            A = np.array(cols)[:, ok].T
            coef = np.linalg.lstsq(A, col[ok], rcond=None)[0]
            if not np.max(np.abs(col[ok] - A @ coef), initial=0.0) >= SENSITIVITY:
                res.kept[n] = ("the rows do not constrain it apart from " + ", ".join(names_[i] for i in free)
                               + " (its effect on them is a combination of theirs, within 1%)")
                continue
        free.append(j)
        cols.append(col)
    cap = len(rows) // rows_per_param
    for j in free[cap:]:
        res.kept[names_[j]] = f"at most one parameter per {rows_per_param} rows ({len(rows)} rows)"
    free = free[:cap]
    if not free:
        return {}
    fnames = [names_[j] for j in free]
    z0 = x0[free] / scale[free]
    lo = np.array([declared(n).lo for n in fnames]) / scale[free]
    hi = np.array([declared(n).hi for n in fnames]) / scale[free]

    def resid(z):
        r = log_errors(rows, override(device, dict(zip(fnames, (z * scale[free]).tolist()))), predict)
        r = np.where(np.isfinite(r), r, 5.0)      # a value the model cannot price is a large miss
        return np.concatenate([r, prior_weight * (z - z0)])

    # tolerances: 1e-5 of a parameter's (scaled) value is far below anything a row can resolve, and
    # each evaluation of an end-to-end family predicts every row again
    sol = least_squares(resid, z0, bounds=(lo, hi), loss="soft_l1", f_scale=LOSS_SCALE,
                        diff_step=1e-3, xtol=1e-5, ftol=1e-6, max_nfev=60 * len(fnames))
    out = {}
    for n, z, l, h in zip(fnames, sol.x, lo, hi):
        out[n] = float(z * scale[free[fnames.index(n)]])
        for bound, b in ((l, declared(n).lo), (h, declared(n).hi)):
            if np.isclose(z, bound, rtol=1e-3, atol=1e-9):
                out[n] = float(b)              # snap onto the bound it ended on
                res.at_bound.append(n)
    return out


def fit_family(rows: pd.DataFrame, device, family: Family, predict,
               owned: set[str] | dict[str, str] = frozenset(), prior_weight: float = PRIOR_WEIGHT,
               rows_per_param: int = 2, base: np.ndarray | None = None) -> FitResult:
    """Fit ``family``'s parameters (those not ``owned`` by an earlier family) to ``rows`` of one
    device, by bounded least squares on log(pred/meas); ``device`` carries every value fitted
    before (``base``: the rows' log errors on it, when already computed). Returns the fitted values
    and the row errors before and after."""
    res = FitResult(family.name, {}, n=len(rows), ids=list(rows["id"]))
    base = log_errors(rows, device, predict) if base is None else np.asarray(base, dtype=float)
    ok = np.isfinite(base)
    res.unpredictable = [i for i, good in zip(rows["id"], ok) if not good]
    rows, base = rows[ok], base[ok]
    res.err_spec = rel_err(base).tolist()
    res.err_fit = list(res.err_spec)
    if len(rows) == 0:
        return res
    names_ = []
    for nm in family.params:
        if nm not in PARAMS:
            res.kept[nm] = "not declared by the cost model"
        elif nm in owned:
            res.kept[nm] = owned[nm] if isinstance(owned, dict) else "fitted by an earlier family"
        else:
            names_.append(nm)
    if names_:
        for n, v in _lsq(rows, base, device, names_, predict, prior_weight, res, rows_per_param).items():
            if math.isclose(v, current(device, n), rel_tol=1e-9, abs_tol=1e-15):
                res.kept[n] = "the fit ends where it started: on its bound, at the spec value"
                res.at_bound = [a for a in res.at_bound if a != n]
            else:
                res.values[n] = v
    if res.values:
        res.err_fit = rel_err(log_errors(rows, override(device, res.values), predict)).tolist()
    return res


# ---------------------------------------------------------------- one device, all families

@dataclass
class DeviceFit:
    device: str
    values: dict[str, float]                      # every fitted parameter -> value
    owner: dict[str, str]                         # parameter -> family that fitted it
    fits: dict[str, FitResult]


def blocked(fam: Family, present: set[str], owner: dict[str, str]) -> dict[str, str]:
    """Parameters ``fam`` may not fit on this device, with the reason: those an earlier family fitted,
    and those whose home is another family that has rows here (that family's fit, or its decision
    to keep the spec value, stands: one home per parameter)."""
    out = {n: f"fitted by an earlier family ({f})" for n, f in owner.items()}
    for n in fam.params:
        if n not in out and HOME.get(n, fam.name) != fam.name and HOME[n] in present:
            out[n] = f"its home family {HOME[n]} has rows on this device (its value stands)"
    return out


def calibrate_device(rows: pd.DataFrame, spec: DeviceSpec, predict, families=None,
                     preset: dict[str, tuple[float, str]] | None = None, memo: dict | None = None,
                     present: set[str] | None = None) -> DeviceFit:
    """Fit every family of ``rows`` (one device) in ``FAMILIES`` order, each on top of the values
    fitted before it. ``preset`` holds values kept from an earlier profile (param -> (value, family));
    ``present`` the families the device has rows of (default: those of ``rows``; cross-validation and
    a ``--family`` refit pass the device's full set, so the home rule never depends on a fold)."""
    preset = preset or {}
    present = set(rows["family"]) if present is None else set(present)
    values = {n: v for n, (v, _) in preset.items()}
    owner = {n: f for n, (_, f) in preset.items()}
    fits = {}
    for fam in FAMILIES:
        if families is not None and fam.name not in families:       # [] fits nothing
            continue
        fr = rows[rows["family"] == fam.name]
        if fr.empty:
            continue
        owned = blocked(fam, present, owner)
        key = (spec.name, fam.name, tuple(sorted(fr["id"])), tuple(sorted(values.items())))
        res = memo.get(key) if memo is not None else None
        alt = start = None
        if res is None and memo is not None:
            # the same rows predicted the same under other earlier values (a fold that held out rows
            # of a family whose parameters do not reach these rows): the fit is the one made before
            start = log_errors(fr, override(spec, values), predict)
            alt = (key[:3], tuple(np.round(np.nan_to_num(start, nan=99.0), 9)), tuple(sorted(owned)),
                   tuple(sorted((n, v) for n, v in values.items() if n in fam.params)))
            res = memo.get(alt)
        if res is None:
            res = fit_family(fr, override(spec, values), fam, predict, owned=owned, base=start)
        if memo is not None:
            memo[key] = res
            if alt is not None:
                memo[alt] = res
        fits[fam.name] = res
        values.update(res.values)
        owner.update({n: fam.name for n in res.values})
    return DeviceFit(spec.name, values, owner, fits)


# ---------------------------------------------------------------- cross-validation by source

def group_key(row) -> str:
    """What a fold holds out whole: a published row's source; a measured row's machine and kernel."""
    if str(row.get("fingerprint", "") or "").strip():
        return f"measured:{row['fingerprint']}:{row['source_locator']}"
    return str(row["source"])


def scenario_field(scenario: str | dict, var: str):
    """A size or grouping variable of a row's scenario: the workload's field, else its ``parallel``
    or ``arrival`` block's, else the model's (the zoo name for ``model``, a dimension of inline
    dims), else the cluster's (``gpus``). None when absent."""
    scen = json.loads(scenario) if isinstance(scenario, str) else scenario
    wl = scen.get("workload", {})
    model = scen.get("model")
    if var == "model":
        return model if isinstance(model, str) else (json.dumps(model, sort_keys=True) if model else None)
    for block in (wl, wl.get("parallel") or {}, wl.get("arrival") or {},
                  model if isinstance(model, dict) else {}, scen.get("cluster") or {}):
        if isinstance(block, dict) and var in block:
            return block[var]
    return None


def _deal(rows: pd.DataFrame, keys: pd.Series, k: int) -> list[set[str]]:
    """Whole groups into ``k`` folds, largest first into the emptiest fold."""
    sizes = keys.value_counts()
    folds: list[set[str]] = [set() for _ in range(min(k, len(sizes)))]
    for g in sorted(sizes.index, key=lambda g: (-sizes[g], str(g))):
        i = min(range(len(folds)), key=lambda j: (len(folds[j]), j))
        folds[i] |= set(rows["id"][keys == g])
    return folds


def make_folds(rows: pd.DataFrame, k: int, family: Family | None = None) -> tuple[str, list[set[str]]]:
    """(scheme, folds of row ids). Whole sources go to folds, largest first into the emptiest fold.
    With one source only: when ``family`` names ``group_by`` fields and the rows hold two or more
    groups of them, whole groups go to folds (scheme 'by <fields>, one source only': a held-out row's
    configuration, e.g. its model shape, was never seen in training); otherwise rows are dealt
    round-robin (scheme 'by row, one source only')."""
    keys = rows.apply(group_key, axis=1)
    if keys.nunique() >= 2:
        return "by source", _deal(rows, keys, k)
    if family is not None and family.group_by:
        groups = rows["scenario"].map(lambda s: json.dumps([scenario_field(s, v) for v in family.group_by]))
        if groups.nunique() >= 2 and k >= 2:
            return f"by {' x '.join(family.group_by)}, one source only", _deal(rows, groups, k)
    k = min(k, len(rows))
    if k < 2:
        return "none (one row)", []
    ids = sorted(rows["id"])
    return "by row, one source only", [set(ids[i::k]) for i in range(k)]


def cross_validate(rows: pd.DataFrame, spec: DeviceSpec, predict, k: int = 5, families=None,
                   memo: dict | None = None, evaluate=None, preset=None, present=None) -> dict[str, dict]:
    """Per family of ``evaluate`` (default: those fitted): held-out median |pred/meas - 1| with spec
    parameters (before) and with the ``families`` fitted on the other folds (after). Every fold
    refits all families, so a shared parameter never sees the held-out rows either."""
    memo = {} if memo is None else memo
    reach = memo.setdefault("reach", {})
    present = set(rows["family"]) if present is None else present
    spec_err = dict(zip(rows["id"], rel_err(log_errors(rows, spec, predict))))
    evaluate = evaluate or families
    out = {}
    for fam in FAMILIES:
        if evaluate and fam.name not in evaluate:
            continue
        fr = rows[rows["family"] == fam.name]
        if fr.empty:
            continue
        scheme, folds = make_folds(fr, k, fam)
        before, after, test_ids = [], [], []
        needed = _needed(fam.name, families, rows, spec, predict, present, reach)
        for test in folds:
            fit = calibrate_device(rows[~rows["id"].isin(test)], spec, predict, needed, preset, memo=memo,
                                   present=present)
            t = fr[fr["id"].isin(test)]
            after += rel_err(log_errors(t, override(spec, fit.values), predict)).tolist()
            before += [spec_err[i] for i in t["id"]]
            test_ids += list(t["id"])
        out[fam.name] = {"scheme": scheme, "folds": len(folds), "sources": int(fr.apply(group_key, axis=1).nunique()),
                         "rows": len(fr), "held_out": int(np.isfinite(after).sum()),
                         "median_err_spec": _med(before), "median_err_calibrated": _med(after),
                         "held_out_rows": {i: [b, a] for i, b, a in zip(test_ids, before, after)}}
    return out


def _reaches(target: str, source: str, rows: pd.DataFrame, spec: DeviceSpec, predict, present: set[str],
             cache: dict) -> bool:
    """Could the parameters family ``source`` may fit on this device move any prediction of family
    ``target``'s rows? (Each doubled from its spec value; an exact structural zero, e.g. a host
    cost per training kernel on a GEMM kernel row, says no.)"""
    key = (spec.name, target, source)
    if key not in cache:
        cands = [n for n in FAMILY[source].params if n in PARAMS and n not in blocked(FAMILY[source], present, {})]
        tr = rows[rows["family"] == target]
        hit = False
        if cands and len(tr):
            base = log_errors(tr, spec, predict)
            for n in cands:
                x0 = current(spec, n)
                x1 = x0 * 2 if x0 * 2 <= declared(n).hi and x0 != 0 else (x0 / 2 if x0 != 0 else
                                                                            _scale(declared(n), x0) * 0.5)
                d = log_errors(tr, override(spec, {n: x1}), predict) - base
                if np.nanmax(np.abs(np.nan_to_num(d, nan=1.0)), initial=0.0) > 1e-9:
                    hit = True
                    break
        cache[key] = hit
    return cache[key]


def _needed(name: str, families, rows, spec, predict, present, cache) -> list[str]:
    """The families a cross-validation fold of family ``name`` must refit: every family fitted before
    it (their values feed its fit), and a later one only where its parameters reach the held-out
    rows, or reach the rows of another later family that is needed (its fit would change). Skipping
    the rest changes no held-out prediction and saves refitting slow end-to-end families in every
    kernel fold."""
    order = [f.name for f in FAMILIES if (families is None or f.name in families) and f.name in present]
    pos = {f.name: i for i, f in enumerate(FAMILIES)}
    needed = [g for g in order if pos[g] <= pos[name]]
    later: list[str] = []
    for g in reversed([g for g in order if pos[g] > pos[name]]):
        if any(_reaches(h, g, rows, spec, predict, present, cache) for h in [name, *later]):
            later.append(g)
    return needed + sorted(later, key=pos.get)


def _med(x) -> float | None:
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else None


# ---------------------------------------------------------------- the profile file

def _sig(v: float) -> float:
    return float(f"{v:.6g}")


def size_range(rows: pd.DataFrame, family: Family) -> dict[str, list[float]]:
    """[min, max] of each size variable of ``family`` over the rows' workloads (where present)."""
    seen: dict[str, list[float]] = {}
    for text in rows["scenario"]:
        scen = json.loads(text)
        for var in family.sizes:
            v = scenario_field(scen, var)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                seen.setdefault(var, []).append(float(v))
    return {var: [_sig(min(v)), _sig(max(v))] for var, v in seen.items()}


def _dtypes(rows: pd.DataFrame, errs: list[float]) -> dict:
    by: dict[str, list[float]] = {}
    for text, e in zip(rows["scenario"], errs):
        d = json.loads(text).get("workload", {}).get("dtype")
        if d:
            by.setdefault(d, []).append(e)
    return {d: {"rows": len(v), "median_err_calibrated": _sig(_med(v))} for d, v in sorted(by.items())
            if _med(v) is not None} if len(by) > 1 else {}


def build_profile(spec: DeviceSpec, rows: pd.DataFrame, fit: DeviceFit, cv: dict | None,
                  kept: dict | None = None) -> dict:
    """The calibrated profile of one device: the fitted efficiencies (what ``with_calibration``
    merges) and what they were fitted on (families, row ids, sources, errors, size ranges)."""
    kept = kept or {}
    fams = dict(kept.get("families", {}))
    for name, res in fit.fits.items():
        fam, fr = FAMILY[name], rows[rows["family"] == name]
        ok = fr[~fr["id"].isin(res.unpredictable)]
        fams[name] = {
            "params": sorted(res.values),
            "not_fitted": dict(sorted(res.kept.items())),
            "rows": len(fr),
            "row_ids": sorted(fr["id"]),
            "sources": sorted(set(fr.apply(group_key, axis=1))),
            "unpredictable": sorted(res.unpredictable),
            "in_sample": {"median_err_spec": _sig(_med(res.err_spec) or 0.0),
                          "median_err_calibrated": _sig(_med(res.err_fit) or 0.0),
                          "max_err_calibrated": _sig(max(res.err_fit, default=0.0))},
            "range": size_range(ok, fam),
            **({"by_dtype": _dtypes(ok, res.err_fit)} if _dtypes(ok, res.err_fit) else {}),
        }
    params = dict(kept.get("params", {}))
    for n, v in fit.values.items():
        p = declared(n)
        fam = fit.owner[n]
        at = fam in fit.fits and n in fit.fits[fam].at_bound
        params[n] = {"value": _sig(v), "spec": _sig(current(spec, n)), "lo": p.lo,
                     "hi": p.hi if math.isfinite(p.hi) else None, "family": fam, "at_bound": at,
                     "meaning": p.meaning, "source_of_spec_value": spec.sources.get(f"efficiency.{n}", p.source)}
        if n in HOST_SIDE:
            srcs = fams.get(fam, {}).get("sources") or []
            params[n]["scope"] = ("host: the CPU and software stack of the machine the rows ran on, not the GPU; "
                                  f"fitted on {', '.join(srcs) or 'its family rows'}; applies to every scenario on "
                                  f"{spec.name} with calibrated parameters (docs/calibration.md, host-side parameters)")
    used = rows[rows["family"].isin(list(fams))]
    return {
        "device": spec.name,
        "format": CAL_VERSION,
        "date": date.today().isoformat(),
        "written_by": "gpusim calibrate",
        "efficiency": {n: params[n]["value"] for n in sorted(params)},
        "fitted_on": {"rows": int(len(used)), "sources": sorted(set(used.apply(group_key, axis=1))) if len(used) else [],
                      "origins": {k: int(v) for k, v in used.get("origin", pd.Series(dtype=str)).value_counts().items()}},
        "families": fams,
        "params": dict(sorted(params.items())),
        "cv": {f: {k: (_sig(v) if isinstance(v, float) else v) for k, v in c.items() if k != "held_out_rows"}
               for f, c in (cv or {}).items()},
    }


HEADER = ("# Calibrated efficiency profile written by `gpusim calibrate` (analysis/calibrate.py).\n"
          "# `efficiency` is merged over the device spec by sim.hardware.with_calibration; the rest\n"
          "# records what it was fitted on. Regenerate, do not edit: see docs/calibration.md.\n")


def write_profile(profile: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{profile['device']}.yaml"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(HEADER + yaml.safe_dump(profile, sort_keys=False, width=110, allow_unicode=True,
                                           default_flow_style=None))
    tmp.replace(path)
    return path


def read_profile(path: Path) -> dict:
    from sim.hardware import read_yaml
    data = read_yaml(path)
    if not isinstance(data.get("efficiency"), dict):
        raise InputError(str(path), "efficiency", "expected a mapping of parameter name -> value")
    return data


# ---------------------------------------------------------------- command line

def add_arguments(p) -> None:
    p.add_argument("--device", action="append", metavar="D", help="only this zoo device (repeatable)")
    p.add_argument("--family", action="append", metavar="F", choices=[f.name for f in FAMILIES],
                   help="only this op family (repeatable); the profile keeps the other families' values")
    p.add_argument("--folds", type=int, default=5, metavar="K", help="cross-validation folds (default 5; 0: none)")
    p.add_argument("--out", type=Path, default=CALIBRATED, metavar="DIR",
                   help=f"where profiles are written (default {CALIBRATED})")
    p.add_argument("--traces", type=Path, default=None, metavar="DIR",
                   help="trace store root (default: the repository's traces/)")
    p.add_argument("--no-host", action="store_true", help="skip the host profile of this machine")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--markdown", action="store_true", help="print the results as Markdown tables (docs/calibration.md)")


def load_rows(traces: Path | None = None) -> pd.DataFrame:
    from analysis import traces as store
    if traces is None:
        return store.load_all()
    return store.load_all(traces / "published", traces / "measured")


def _kept(path: Path, families: list[str] | None) -> tuple[dict, dict]:
    """(profile parts to keep, preset values) from an existing profile when only some families are refitted."""
    if not families or not path.exists():
        return {}, {}
    old = read_profile(path)
    fams = {f: v for f, v in (old.get("families") or {}).items() if f not in families}
    params = {n: v for n, v in (old.get("params") or {}).items() if v.get("family") in fams}
    cv = {f: v for f, v in (old.get("cv") or {}).items() if f not in families}
    preset = {n: (float(old["efficiency"][n]), v["family"]) for n, v in params.items() if n in old["efficiency"]}
    return {"families": fams, "params": params, "cv": cv}, preset


def calibrate(rows: pd.DataFrame, devices=None, families=None, folds: int = 5, out: Path = CALIBRATED,
              predict=None, log=print) -> dict:
    """Fit and write a profile per device with rows; return the summary (also what --json prints)."""
    predict = predict or predictor()
    fitted_fams = [f.name for f in FAMILIES if not families or f.name in families]
    present_by_dev = rows.groupby("hardware")["family"].agg(lambda f: set(f) & set(FAMILY)).to_dict()
    every = rows[rows["family"].isin(list(FAMILY))]       # the cross-family check reads every family
    rows = rows[rows["family"].isin(fitted_fams)]
    zoo = set(names("device"))
    wanted = sorted(set(devices or rows["hardware"].unique()))
    summary = {"devices": {}, "spec_only": [], "not_in_zoo": []}
    for dev in wanted:
        if dev not in zoo:
            summary["not_in_zoo"].append(dev)
            continue
        dr = rows[rows["hardware"] == dev]
        if dr.empty:
            summary["spec_only"].append(dev)
            continue
        spec = load_device(dev)
        kept, preset = _kept(Path(out) / f"{dev}.yaml", families)
        fit, cv, rejected = _fit_gated(dr, spec, predict, fitted_fams, folds, preset, present_by_dev.get(dev),
                                       context=every[every["hardware"] == dev])
        path = Path(out) / f"{dev}.yaml"
        if not fit.values and not kept.get("params"):
            log(f"{dev}: no parameter constrained by its rows; spec parameters kept (no profile)")
            if path.exists() and not families:
                path.unlink()          # a stale profile would keep changing predictions
            summary["devices"][dev] = {"profile": None, "efficiency": {}, "families": {}, "cv": cv,
                                       "rejected": rejected}
            continue
        profile = build_profile(spec, dr, fit, {**kept.get("cv", {}), **cv}, kept)
        profile["rejected_by_cv"] = rejected
        path = write_profile(profile, Path(out))
        summary["devices"][dev] = {"profile": str(path), "efficiency": profile["efficiency"],
                                   "families": {f: {"params": v["params"], "rows": v["rows"], **v["in_sample"]}
                                                for f, v in profile["families"].items()},
                                   "cv": {**profile["cv"], **cv}, "rejected": rejected}
        why = ", ".join(f"{f} ({r['scheme']})" for f, r in rejected.items())
        log(f"{dev}: fitted {', '.join(f'{n}={v:.4g}' for n, v in sorted(fit.values.items())) or 'nothing'}"
            f"{'; rejected: ' + why if rejected else ''} -> {path}")
    if not devices:
        summary["spec_only"] += sorted(zoo - set(summary["devices"]) - set(summary["spec_only"]))
    summary["pooled_cv"] = pooled(summary)
    return summary


def _fit_gated(rows, spec, predict, families: list[str], folds: int, preset, present=None, context=None):
    """Fit, cross-validate, and drop the families whose fitted parameters do not predict their
    held-out rows better than the spec values did (worse, or no better: a fit the hold-outs cannot
    tell from spec is not evidence, so the sourced spec value stays); then drop the families whose
    values, kept, make the device's other families' rows worse (``cross_family``: a parameter such
    as the Tensor Core fraction is read by every end-to-end row, not only its home family's). The
    rest are refitted and re-validated without them (one pass). ``context``: every row of the
    device (default ``rows``), so a ``--family`` refit is judged on the other families' rows too.
    Returns (fit, cv, rejected family -> the figures that rejected it)."""
    memo: dict = {}
    fit = calibrate_device(rows, spec, predict, families, preset=preset, memo=memo, present=present)
    if folds < 2:
        return fit, {}, {}
    cv = cross_validate(rows, spec, predict, folds, families, memo=memo, preset=preset, present=present)
    rejected = {f: {"median_err_spec": _sig(c["median_err_spec"]),
                    "median_err_calibrated": _sig(c["median_err_calibrated"]), "scheme": c["scheme"]}
                for f, c in cv.items() if f in fit.fits and fit.fits[f].values
                and c["median_err_spec"] is not None and c["median_err_calibrated"] is not None
                and c["median_err_calibrated"] >= c["median_err_spec"]}
    kept = [f for f in families if f not in rejected]
    if rejected:
        fit = calibrate_device(rows, spec, predict, kept, preset=preset, memo=memo, present=present)
    context = rows if context is None else context
    cross = cross_family(context, spec, predict, fit, set(context["family"]) if present is None else present,
                         memo.setdefault("reach", {}))
    if cross:
        rejected.update(cross)
        kept = [f for f in kept if f not in cross]
        fit = calibrate_device(rows, spec, predict, kept, preset=preset, memo=memo, present=present)
    if not rejected:
        return fit, cv, {}
    cv = cross_validate(rows, spec, predict, folds, kept, memo=memo, evaluate=families, preset=preset,
                        present=present)
    return fit, cv, rejected


def cross_family(rows: pd.DataFrame, spec: DeviceSpec, predict, fit: DeviceFit, present: set[str],
                 reach: dict) -> dict[str, dict]:
    """The families whose fitted values make the device's other families' rows worse: for each
    family F that fitted values, the rows of every other family G its values move (``_reaches``,
    then an exact comparison) are predicted with the whole profile and with F's values back at
    spec (every other family's kept). F is rejected when the median |pred/meas - 1| pooled over
    those rows is worse with its values. In-sample is fair here: these rows did not fit F's values.
    Left out: a family fitted before F that fitted values of its own, since it fitted them to these
    very rows with F's values at spec, so any change of F's looks worse on them at the noise level.
    A family fitted after F fitted its values with F's in place: its rows lean towards keeping F,
    so a rejection is what remains after they had every chance to absorb F's values.
    Returns family -> the figures ('median_err_spec': F's values at spec, 'median_err_calibrated':
    with them), recorded beside the CV rejections with the scheme 'other families'."""
    pos = {f.name: i for i, f in enumerate(FAMILIES)}
    fams = sorted((set(rows["family"]) & set(FAMILY)), key=pos.get)
    full: dict[str, np.ndarray] = {}
    out = {}
    for F, res in fit.fits.items():
        if not res.values:
            continue
        without = override(spec, {n: v for n, v in fit.values.items() if fit.owner.get(n) != F})
        moved, w, wo = [], [], []
        for g in fams:
            if g == F or not _reaches(g, F, rows, spec, predict, present, reach):
                continue
            if pos[g] < pos[F] and g in fit.fits and fit.fits[g].values:
                continue          # fitted to these rows with F's values at spec: in-sample they favour spec
            gr = rows[rows["family"] == g]
            if g not in full:
                full[g] = rel_err(log_errors(gr, override(spec, fit.values), predict))
            e = rel_err(log_errors(gr, without, predict))
            if not np.nanmax(np.abs(np.nan_to_num(e - full[g], nan=1.0)), initial=0.0) > 1e-9:
                continue
            moved.append(g)
            w += full[g].tolist()
            wo += e.tolist()
        m_with, m_without = _med(w), _med(wo)
        if m_with is not None and m_without is not None and m_with > m_without:
            out[F] = {"median_err_spec": _sig(m_without), "median_err_calibrated": _sig(m_with),
                      "scheme": "other families", "families": moved, "rows": int(np.isfinite(w).sum())}
    return out


def pooled(summary: dict) -> dict:
    """Per family and CV scheme, over the held-out rows of every device: the median error before and
    after. 'by source' pools only device families with two or more sources (honest hold-outs)."""
    by: dict[tuple[str, str], dict[str, list]] = {}
    for d in summary["devices"].values():
        for f, c in d["cv"].items():
            if not c.get("held_out_rows"):
                continue
            kind = "by source" if c["scheme"] == "by source" else "within one source"
            b = by.setdefault((f, kind), {"spec": [], "cal": [], "devices": 0})
            b["devices"] += 1
            for before, after in c["held_out_rows"].values():
                if math.isfinite(after):
                    b["spec"].append(before)
                    b["cal"].append(after)
    return {f"{f} ({kind})": {"family": f, "scheme": kind, "devices": v["devices"], "held_out": len(v["cal"]),
                              "median_err_spec": _med(v["spec"]), "median_err_calibrated": _med(v["cal"])}
            for (f, kind), v in sorted(by.items())}


def table(summary: dict) -> str:
    lines = [f"{'device':<18} {'family':<17} {'rows':>4} {'src':>3} {'cv scheme':<24} "
             f"{'spec':>7} {'calib':>7}  params"]
    pct = lambda v: "   -   " if v is None else f"{100 * v:6.1f}%"  # noqa: E731
    for dev, d in summary["devices"].items():
        for f, c in d["cv"].items():
            params = d["families"].get(f, {}).get("params", [])
            if f in d.get("rejected", {}):
                r = d["rejected"][f]
                where = ("other families' rows (" + ", ".join(r["families"]) + ")"
                         if r["scheme"] == "other families" else "held out")
                params = [f"rejected: {where} {pct(r['median_err_calibrated']).strip()} vs spec "
                          f"{pct(r['median_err_spec']).strip()}; spec kept"]
            lines.append(f"{dev:<18} {f:<17} {c['rows']:>4} {c['sources']:>3} {c['scheme']:<24} "
                         f"{pct(c['median_err_spec'])} {pct(c['median_err_calibrated'])}  {', '.join(params)}")
    return "\n".join(lines)


def markdown(summary: dict) -> str:
    """The CV results as the Markdown tables of docs/calibration.md."""
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    out = ["| device | family | rows | sources | CV scheme | spec | calibrated | fitted |",
           "|---|---|---:|---:|---|---:|---:|---|"]
    for dev, d in summary["devices"].items():
        for f, c in d["cv"].items():
            if f in d.get("rejected", {}):
                r = d["rejected"][f]
                if r["scheme"] == "other families":
                    fitted = (f"rejected on other families' rows ({', '.join(r['families'])}: "
                              f"{pct(r['median_err_calibrated'])} with its values vs {pct(r['median_err_spec'])} "
                              "without): spec kept")
                else:
                    fitted = (f"rejected by CV ({pct(r['median_err_calibrated'])} vs {pct(r['median_err_spec'])}): "
                              "spec kept")
            else:
                fitted = ", ".join(f"`{p}` {d['efficiency'][p]:.4g}{' (host side)' if p in HOST_SIDE else ''}"
                                   for p in d["families"].get(f, {}).get("params", []))
            out.append(f"| {dev} | {f} | {c['rows']} | {c['sources']} | {c['scheme']} | "
                       f"{pct(c['median_err_spec'])} | {pct(c['median_err_calibrated'])} | {fitted or '-'} |")
    out += ["", "| family | CV scheme | devices | held-out rows | spec | calibrated |", "|---|---|---:|---:|---:|---:|"]
    for p in summary["pooled_cv"].values():
        out.append(f"| {p['family']} | {p['scheme']} | {p['devices']} | {p['held_out']} | "
                   f"{pct(p['median_err_spec'])} | {pct(p['median_err_calibrated'])} |")
    return "\n".join(out)


def run(args) -> int:
    rows = load_rows(args.traces)
    logs = []
    summary = calibrate(rows, args.device, args.family, args.folds, args.out,
                        log=(logs.append if args.json else lambda s: print(s, file=sys.stderr)))
    if not args.no_host and not args.device and not args.family:
        summary["host"] = calibrate_hosts(rows, out=Path(args.out) / "hosts",
                                          measured=(Path(args.traces) / "measured") if args.traces else None,
                                          log=(logs.append if args.json else lambda s: print(s, file=sys.stderr)))
    if args.json:
        for d in summary["devices"].values():
            for c in d["cv"].values():
                c.pop("held_out_rows", None)
        print(json.dumps(summary, indent=2, default=float))
        return 0
    if args.markdown:
        print(markdown(summary))
        return 0
    print("held-out median |pred/meas - 1| (cross-validation; 'by source' folds hold out whole sources)")
    print(table(summary))
    print("\npooled over devices (held-out rows):")
    for name, p in summary["pooled_cv"].items():
        pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        print(f"  {name:<40} {p['held_out']:>4} rows on {p['devices']} device(s): spec {pct(p['median_err_spec'])}"
              f" -> calibrated {pct(p['median_err_calibrated'])}")
    if summary["spec_only"]:
        print(f"no rows, spec parameters kept: {', '.join(summary['spec_only'])}")
    if summary["not_in_zoo"]:
        print(f"rows for devices not in the zoo (skipped): {', '.join(summary['not_in_zoo'])}")
    return 0



# ---------------------------------------------------------------- host side (this machine's probes)

HOST_FAMILIES: tuple[Family, ...] = (
    Family("host_memory", ("dram_efficiency",), ("bytes",),
           "a host memory copy streams DRAM: its share of the best STREAM rate measured (the DRAM figure)"),
    Family("cpu_adam", ("cpu_adam_dram_efficiency", "cpu_adam_simd_efficiency"), ("bytes",),
           "the CPU Adam step of ZeRO-Offload: the DRAM share it streams at, or the SIMD share when compute-bound"),
)
HOST_BASE = "PCIe-Gen4-workstation"
HOST_HEADER = ("# Host profile of one probed machine, written by `gpusim calibrate` from `gpusim bench` host probes.\n"
               "# `host` replaces the base host's figures (measured, or read from the OS); `efficiency` holds the\n"
               "# fitted host efficiencies. A scenario selects it with `host: local` on the same machine\n"
               "# (sim.hardware.with_host_calibration). Regenerate, do not edit: see docs/calibration.md.\n")


def _host_predictor(device: DeviceSpec):
    """``fn(row, host) -> value``: the validator's per-row prediction with ``host`` as the scenario's
    host and ``device`` as its hardware (host rows of a CPU-only machine name the CPU, and a host
    op's time does not depend on the GPU)."""
    from analysis.validate import predict_row
    from sim.scenario import predict as sim_predict

    def with_host(host):
        return lambda scen: sim_predict({**scen, "host": host})
    return lambda row, host: predict_row(row, device=device, predict=with_host(host))


def _best(rows: pd.DataFrame) -> pd.DataFrame:
    """Per workload, the fastest measured implementation's rows (ZeRO-Offload runs DeepSpeed's fused,
    vectorised CPU-Adam; of the implementations a probe times, the fastest is its closest stand-in)."""
    keep = []
    for _, g in rows.groupby("scenario"):
        keep.append(g.loc[g["value"].idxmin()])
    return pd.DataFrame(keep)


def stream_bytes(scenario: str) -> float:
    """DRAM bytes a host-memory probe moves, STREAM-counted: a host->host copy reads and writes its
    buffer; a host op states its bytes."""
    wl = json.loads(scenario)["workload"]
    return 2.0 * float(wl["bytes"]) if wl.get("kind") == "transfer" else float(wl["bytes"])


def local_host_figures(rows: pd.DataFrame, fp: dict, base) -> tuple[dict, dict]:
    """(HostSpec fields, their sources) for a probed machine: CPU and DRAM size from its
    fingerprint, the DRAM figure = its best STREAM rate, the NVMe figures = its measured
    sequential direct-I/O rates; what was not measured stays the base host's."""
    fid = fp.get("id", "?")
    figures, sources = {}, {}
    cores = int(fp.get("cpu_cores") or base.cpu.cores)
    per_core = base.cpu.fp32_tflops / base.cpu.cores
    figures["cpu"] = {"model": str(fp.get("cpu_model") or "unknown"), "sockets": 1, "cores": cores,
                      "fp32_tflops": _sig(per_core * cores)}
    sources["cpu"] = (f"model and logical CPUs from fingerprint {fid}; fp32_tflops assumed: {base.name}'s "
                      f"per-core rate ({per_core:.3g} TFLOP/s) x {cores}; sockets assumed 1")
    hm = rows[(rows["family"] == "host_memory") & (rows["metric"] == "time_s")]
    mem = float(fp.get("host_memory_bytes") or base.dram_bytes)
    if len(hm):
        rate = hm["value"].rdiv(hm["scenario"].map(stream_bytes))      # STREAM convention: read + written
        top = hm.loc[rate.idxmax()]
        figures["dram"] = {"capacity_gb": _sig(mem / 1e9), "bandwidth_gbps": _sig(float(rate.max()) / 1e9)}
        sources["dram"] = (f"capacity from fingerprint {fid}; bandwidth measured: best STREAM rate (bytes read + "
                           f"written / time) of gpusim bench ({top['source_locator']}, row {top['id']})")
    st = rows[(rows["family"] == "storage") & (rows["metric"] == "gbps")]
    rd = st[st["source_locator"].str.contains("read")]
    wr = st[st["source_locator"].str.contains("write")]
    if len(rd) and len(wr):
        figures["nvme"] = {"drives": 1, "capacity_tb_per_drive": base.nvme.capacity_tb_per_drive,
                           "read_gbps_per_drive": _sig(float(rd["value"].max())),
                           "write_gbps_per_drive": _sig(float(wr["value"].max()))}
        sources["nvme"] = (f"read/write measured by gpusim bench (file probe, rows {rd['id'].iloc[0]}, "
                           f"{wr['id'].iloc[0]}); one drive, capacity assumed from {base.name}")
    return figures, sources


def calibrate_hosts(rows: pd.DataFrame, out: Path, measured: Path | None = None, only_this_machine: bool = False,
                    log=print) -> dict:
    """A host profile per probed machine (fingerprint) with host-probe rows: measured figures over
    the base host, then the host efficiencies fitted to its host_memory and cpu_adam rows."""
    from analysis.traces import fingerprint_metadata
    from sim.hardware import HostSpec, load_host, this_machine
    from sim.hardware import _validate as validate_spec

    fams = [f.name for f in HOST_FAMILIES] + ["storage"]
    hr = rows[rows["family"].isin(fams) & (rows.get("fingerprint", pd.Series("", index=rows.index)) != "")]
    if hr.empty:
        log("host: no host-probe rows (run `gpusim bench`); host parameters stay at their defaults")
        return {}
    meta = fingerprint_metadata(measured) if measured else fingerprint_metadata()
    me, out_summary = this_machine(), {}
    for fid, fr in hr.groupby("fingerprint"):
        fp = {**meta.get(fid, {}), "id": fid}
        if only_this_machine and (fp.get("cpu_model"), fp.get("cpu_cores")) != (me["cpu_model"], me["cpu_cores"]):
            continue
        base = load_host(HOST_BASE)
        figures, sources = local_host_figures(fr, fp, base)
        d = {**base.model_dump(), **figures, "name": f"local:{fid}", "sources": {**base.sources, **sources}}
        host = validate_spec(HostSpec, d, f"host profile of {fid}")
        device = load_device(next(n for n in names("device") if load_device(n).default_host == HOST_BASE))
        predict = _host_predictor(device)
        fits, values = {}, {}
        for fam in HOST_FAMILIES:
            t = fr[(fr["family"] == fam.name) & (fr["metric"] == "time_s")]
            if fam.name == "host_memory":      # copies (transfer host->host) see dram_efficiency
                t = t[t["scenario"].map(lambda s: json.loads(s)["workload"].get("kind") == "transfer")]
            if fam.name == "cpu_adam":
                t = _best(t)
            if t.empty:
                continue
            # a probe measures its parameter directly on this machine: one row determines it
            res = fit_family(t, override(host, values), fam, predict, owned=set(values), rows_per_param=1)
            fits[fam.name] = res
            values.update(res.values)
        profile = {
            "kind": "host", "fingerprint": fid, "format": CAL_VERSION, "date": date.today().isoformat(),
            "written_by": "gpusim calibrate",
            "machine": {k: fp.get(k) for k in ("cpu_model", "cpu_cores", "host_memory_bytes")},
            "base": HOST_BASE, "host": figures, "sources": sources,
            "efficiency": {n: _sig(v) for n, v in sorted(values.items())},
            "families": {n: {"params": sorted(r.values), "not_fitted": dict(sorted(r.kept.items())), "rows": r.n,
                             "row_ids": sorted(r.ids),
                             "in_sample": {"median_err_spec": _sig(_med(r.err_spec) or 0.0),
                                           "median_err_calibrated": _sig(_med(r.err_fit) or 0.0)}}
                         for n, r in fits.items()},
        }
        Path(out).mkdir(parents=True, exist_ok=True)
        path = Path(out) / f"{fid}.yaml"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(HOST_HEADER + yaml.safe_dump(profile, sort_keys=False, width=110, allow_unicode=True,
                                                    default_flow_style=None))
        tmp.replace(path)
        out_summary[fid] = {"profile": str(path), "efficiency": profile["efficiency"], "host": figures,
                            "families": profile["families"]}
        log(f"host {fid}: fitted {', '.join(f'{n}={v:.4g}' for n, v in sorted(values.items())) or 'nothing'} -> {path}")
    return out_summary
