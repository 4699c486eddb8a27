"""Many ``training`` configurations at once: the analytical engine over numpy arrays.

Why: a layout search or a sweep asks for thousands of configurations that differ only in a few
knobs; pricing each one through ``price_step`` re-does per-configuration Python (~150 us) although
most of its pieces repeat. Here the configurations are columns, and each piece is priced once per
distinct value of what it depends on:

- one layer and the two ends (``step.layer_terms``): micro-batch, sequence, dtype, kernels,
  recomputation and the tp/sp/ep split; a search has a few hundred of these among thousands of
  layouts;
- per-stage data-parallel buckets, optimizer step and ZeRO gathers (``step.stage_terms``): tp, ep,
  pp, dp, sp, ZeRO stage, optimizer placement;
- pipeline send/recv, global sync, the layerwise path's offload and ZeRO-3 legs, FLOPs: their own
  small keys;

then the closed forms (``iteration.pipeline_terms`` with the stages as runs of identical stages,
``analytical.training_iteration``, ``iteration.layerwise_closed``) and the memory model
(``memory.memory_arrays``) run once over arrays of all configurations. They are the numpy twins of
the scalar path's plain-Python closed forms (numpy on one configuration would triple a
``predict``); tests/test_training_batch.py holds the two equal to 1e-9 relative, ``fits``, ``bound``
and errors included, on samples covering every knob.

Rows the arrays do not cover go through ``sim.scenario.predict`` one by one, so their result or
error message is exactly the scalar path's: values of an unexpected type, rows that fail a
cross-field rule (``training.validate``), layer shapes whose pricing raises, and ``engine: des``.
"""
from __future__ import annotations

import types
from typing import Literal, get_args, get_origin

import annotated_types
import numpy as np
import pandas as pd
from pydantic import BaseModel

from sim.cost.efficiency import eff
from sim.engine import analytical
from sim.errors import InputError
from sim.techniques import iteration as it
from sim.techniques import step as st
from sim.techniques.memory import dtype_bytes, memory_arrays, stage_runs
from sim.techniques.parallel import Layout

REQUIRED = object()
OUT_COLS = ["iteration_time_s", "tokens_per_s", "tflops_per_gpu", "hfu_tflops_per_gpu", "mfu", "hfu",
            "bubble_fraction", "exposed_comm_s", "fits", "memory_hbm_gb", "memory_host_gb", "memory_nvme_gb",
            "bound", "error"]


# ---- the workload schema as flat columns ('parallel.tp', 'offload.optimizer', ...) ---------------
def _field_spec(f) -> tuple:
    ann = f.annotation
    default = REQUIRED if f.is_required() else f.default
    bounds = [m for m in f.metadata if isinstance(m, (annotated_types.Ge, annotated_types.Gt,
                                                      annotated_types.Le, annotated_types.Lt))]
    if get_origin(ann) is Literal:
        return default, "lit", frozenset(get_args(ann)), bounds
    if ann is bool:
        return default, "bool", None, bounds
    if ann is int:
        return default, "int", None, bounds
    if ann is float:
        return default, "float", None, bounds
    if set(get_args(ann)) == {int, type(None)}:
        return default, "int?", None, bounds
    raise TypeError(f"training_batch: no column rule for {ann}")


def _schema() -> dict:
    from sim.techniques.training import TrainingIn
    out = {}
    for name, f in TrainingIn.model_fields.items():
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            for n2, f2 in f.annotation.model_fields.items():
                out[f"{name}.{n2}"] = _field_spec(f2)
        else:
            out[name] = _field_spec(f)
    return out


_SPEC: dict = {}


def schema() -> dict:
    """Column name -> (default or REQUIRED, kind, allowed literals, pydantic bounds), from ``TrainingIn``."""
    if not _SPEC:
        _SPEC.update(_schema())
    return _SPEC


def flatten_workload(wl: dict) -> dict | None:
    """{'parallel': {'tp': 2}} -> {'parallel.tp': 2}; None when the shape is not the schema's."""
    out = {}
    for k, v in wl.items():
        if k == "kind":
            continue
        if k in ("parallel", "offload"):
            if not isinstance(v, dict):
                return None
            for k2, v2 in v.items():
                out[f"{k}.{k2}"] = v2
        else:
            out[k] = v
    return out


def _in_bounds(a, bounds) -> np.ndarray:
    ok = np.ones(a.shape, dtype=bool)
    for b in bounds:
        if isinstance(b, annotated_types.Ge):
            ok &= a >= b.ge
        elif isinstance(b, annotated_types.Gt):
            ok &= a > b.gt
        elif isinstance(b, annotated_types.Le):
            ok &= a <= b.le
        else:
            ok &= a < b.lt
    return ok


def _object_column(a: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """A column of mixed Python values (sweeps): the values of the expected type, and where they are."""
    num = (int, float, np.integer, np.floating)
    is_bool = [isinstance(x, (bool, np.bool_)) for x in a]
    if kind == "bool":
        ok = np.array(is_bool, dtype=bool)
        return np.array([bool(x) if g else False for x, g in zip(a, ok)]), ok
    if kind in ("int", "int?"):
        good = [(isinstance(x, (int, np.integer)) or b) for x, b in zip(a, is_bool)]
        none = np.array([x is None for x in a]) if kind == "int?" else np.zeros(len(a), bool)
        vals = np.array([int(x) if g else -1 for x, g in zip(a, good)], dtype=np.int64)
        return vals, np.array(good) | none
    good = [isinstance(x, num) for x in a]
    return np.array([float(x) if g else 0.0 for x, g in zip(a, good)]), np.array(good)


def _check(a: np.ndarray, kind: str, allowed, bounds) -> tuple:
    """(array in the type the arithmetic uses, rows whose value the array path takes as valid[, integer
    codes of a literal column and their count]). Anything else (a float for an int, a string for a
    bool) goes to the scalar path, whose pydantic validation decides it exactly."""
    n = len(a)
    if kind == "lit":
        if isinstance(a, (pd.Series, pd.Categorical)):    # factorized by pandas without an object copy
            a = a if isinstance(a, pd.Categorical) or a.dtype.kind == "O" or str(a.dtype) in ("str", "string") \
                else np.asarray(a)
        elif a.dtype.kind not in "UO":
            return a, np.zeros(n, bool), None
        if n == 1:                                    # a value shared by every row
            x = a[0]
            ok = isinstance(x, str) and x in allowed
            return np.array([str(x) if ok else ""]), np.array([ok]), None
        codes, uniq = pd.factorize(a)                  # check and convert the distinct values only
        good = np.array([isinstance(u, str) and u in allowed for u in uniq] + [False])
        names = np.array([str(u) for u in uniq] + [""])
        return names[codes], good[codes], (codes.astype(np.int64) % (len(uniq) + 1), len(uniq) + 1)
    if a.dtype.kind == "O":
        vals, ok = _object_column(a, kind)
        if kind == "int?":
            return vals, ok & ((vals == -1) | _in_bounds(vals, bounds))
        return vals, ok & _in_bounds(vals, bounds) if kind != "bool" else ok
    if kind == "bool":
        return (a, np.ones(n, bool)) if a.dtype.kind == "b" else (np.zeros(n, bool), np.zeros(n, bool))
    if kind in ("int", "int?"):
        if a.dtype.kind in "iub":
            a = a.astype(np.int64)
            return a, _in_bounds(a, bounds)
        return np.zeros(n, np.int64), np.zeros(n, bool)
    if a.dtype.kind in "iubf":                         # float
        a = a.astype(float)
        return a, _in_bounds(a, bounds) & np.isfinite(a)
    return np.zeros(n), np.zeros(n, bool)


# ---- grouping ----------------------------------------------------------------------------------
def _codes(a: np.ndarray) -> tuple[np.ndarray, int]:
    """(integer code of every row, number of codes): small-range integers and booleans by arithmetic,
    anything else by ``pd.factorize``."""
    if a.dtype.kind == "b":
        return a.astype(np.int64), 2
    if a.dtype.kind in "iu" and len(a):
        lo, hi = int(a.min()), int(a.max())
        if hi - lo < 1 << 20:
            return a.astype(np.int64) - lo, hi - lo + 1
    codes, uniq = pd.factorize(a)
    return codes.astype(np.int64), max(1, len(uniq))


def _first_and_inverse(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct code, group index of every row). ``pd.factorize`` numbers groups in
    order of first appearance, so the running maximum of the group index steps by one exactly where a
    group first appears."""
    inv, uniq = pd.factorize(code)
    first = np.searchsorted(np.maximum.accumulate(inv), np.arange(len(uniq)))
    return first, inv.astype(np.int64)


def _ns(c: dict, i: int):
    """The workload of row i as the attribute object the pricing helpers read (``TrainingIn``'s shape)."""
    P = types.SimpleNamespace(**{k.split(".", 1)[1]: _py(c[k][i]) for k in c if k.startswith("parallel.")})
    O = types.SimpleNamespace(**{k.split(".", 1)[1]: _py(c[k][i]) for k in c if k.startswith("offload.")})
    top = {k: _py(c[k][i]) for k in c if "." not in k}
    return types.SimpleNamespace(parallel=P, offload=O, **top)


def _py(x):
    return x.item() if isinstance(x, np.generic) else x


# ---- validation (training.validate, as array rules) ----------------------------------------------
def _valid(c: dict, system, model) -> np.ndarray:
    """Rows that pass every cross-field rule of ``training.validate`` (the others are priced by the
    scalar path, which raises the rule's own error). Fills ``parallel.dp`` where it was left out."""
    from sim.techniques.step import compute_dtype
    gpus = system.cluster.gpus
    tp, pp, sp, ep = c["parallel.tp"], c["parallel.pp"], c["parallel.sp"], c["parallel.ep"]
    inner = tp * pp * sp
    dp = c["parallel.dp"]
    ok = np.where(dp < 0, gpus % inner == 0, inner * dp == gpus)
    dp = np.where(dp < 0, gpus // inner, dp)
    c["parallel.dp"] = dp
    mb, gb, seq = c["micro_batch"], c["global_batch"], c["seq_len"]
    ok &= gb % (mb * dp) == 0
    m = gb // (mb * dp)
    inter = c["parallel.schedule"] == "interleaved"
    vs = c["parallel.virtual_stages"]
    ok &= inter | (vs == 1)
    v = np.where(inter, vs, 1)
    ok &= pp * v <= model.layers
    ok &= ~((v > 1) & ((model.layers % np.maximum(pp * v, 1) != 0) | (m % pp != 0)))
    ok &= (sp == 1) | (seq % sp == 0)
    uly = c["parallel.sp_mode"] == "ulysses"
    ok &= ~((sp > 1) & uly & ((model.heads // tp) % sp != 0))
    if model.is_moe:
        ok &= (ep == 1) | ((model.experts % ep == 0) & ((dp * sp) % ep == 0))
    else:
        ok &= ep == 1
    O = {k: c[f"offload.{k}"] for k in ("optimizer", "params", "activations")}
    zo = c["optimizer"] == "zo"
    zero = c["parallel.zero"]
    layerwise = (zero == 3) | (O["params"] != "none") | (O["optimizer"] != "none") | (O["activations"] != "none") | zo
    ok &= ~(layerwise & (pp > 1))
    ok &= ~((zero == 2) & (pp > 1))
    ok &= (O["params"] == "none") | (zero == 3)
    ok &= ~(zo & (O["optimizer"] != "none"))
    from sim.cost.attention import BLACKWELL_ARCHS
    if system.device.arch not in BLACKWELL_ARCHS:               # flash4 needs datacenter Blackwell
        ok &= c["attn_impl"] != "flash4"
    peaks = system.device.peak_tflops
    for prec in np.unique(c["precision"]).tolist():
        if prec not in schema()["precision"][2]:             # a row already sent to the scalar path
            continue
        bad = (prec == "fp8" and "fp8" not in peaks) or compute_dtype(prec)[0] not in peaks
        if bad:
            ok &= c["precision"] != prec
    if system.host.nvme.drives == 0:
        ok &= (O["optimizer"] != "nvme") & (O["params"] != "nvme") & (O["activations"] != "nvme")
    return ok


# ---- the array path ----------------------------------------------------------------------------
SORT_KEY = ("parallel.pp", "parallel.zero", "offload.optimizer", "offload.params", "offload.activations", "optimizer",
            "parallel.schedule", "parallel.virtual_stages", "recompute", "parallel.overlap_grad_reduce",
            "parallel.overlap_param_gather")


def _mask_order(c: dict, codes: dict, n: int) -> np.ndarray:
    """A row order that puts configurations taking the same branches of the closed forms side by side:
    ``np.where`` over a mask in runs is several times faster than over a scattered one. ``codes``: the
    columns' integer codes where known (constant columns: card 1)."""
    code, span = np.zeros(n, dtype=np.int64), 1
    for k in SORT_KEY:
        cd, card = codes[k] if k in codes else _codes(c[k])
        if card == 1:
            continue
        if span * card > 1 << 62:
            break
        code, span = code * card + cd, span * card
    return np.argsort(code, kind="stable")


LAYER_KEY = ("micro_batch", "seq_len", "precision", "attn_impl", "dropout", "recompute", "cross_entropy", "optimizer",
             "parallel.tp", "parallel.sp", "parallel.sp_mode", "parallel.sequence_parallel", "parallel.ep",
             "parallel.tp_comm_overlap")
STAGE_KEY = ("parallel.tp", "parallel.ep", "parallel.pp", "parallel.dp", "parallel.sp", "parallel.zero",
             "parallel.overlap_grad_reduce", "optimizer", "precision", "offload.optimizer", "parallel.grad_reduce_in_fp32")
LY = ("f", "b", "fwd_compute", "bwd_compute", "recompute", "tp_comm", "sp_comm", "ep_comm", "host_bound_s",
      "act_bytes", "act_working")
ENDS = ("emb_f", "emb_b", "head_f", "head_b")
LW_LEGS = ("fetch_f", "fetch_b", "ag", "rs", "act_w", "grad_out")


def _layout(ns) -> Layout:
    return st.layout_of(ns)


_MEMO: dict = {}     # (system, model) fingerprints -> {(piece, key values): priced piece}


class _Batch:
    """The columns of one batch, each factorized once, and the memo of its (system, model): a piece
    already priced for these values in an earlier batch costs one dict lookup."""

    def __init__(self, c: dict, system, model, codes=None):
        self.c, self.system, self.model = c, system, model
        self._codes: dict = dict(codes or {})
        key = (st.system_key(system), st._fingerprint(model))
        if key not in _MEMO and len(_MEMO) > 64:
            _MEMO.clear()
        self.memo = _MEMO.setdefault(key, {})
        if len(self.memo) > 200_000:
            self.memo.clear()

    def _code(self, a) -> tuple[np.ndarray, int]:
        name = a if isinstance(a, str) else None
        if name is not None and name in self._codes:
            return self._codes[name]
        out = _codes(self.c[name] if name is not None else a)
        if name is not None:
            self._codes[name] = out
        return out

    def groups(self, *keys) -> tuple[np.ndarray, np.ndarray]:
        """(first row of each distinct combination of ``keys``: column names or arrays, group of every row)."""
        code, span = None, 1
        for k in keys:
            cd, card = self._code(k)
            if code is not None and span * card > 1 << 62:   # renumber before the code could overflow
                code, span = _codes(code)
            code = cd if code is None else code * card + cd
            span *= card
        return _first_and_inverse(code)

    def subset(self, R: np.ndarray) -> "_Batch":
        """The rows R as a batch of their own (codes carried over, not recomputed)."""
        return _Batch({k: x[R] for k, x in self.c.items()}, self.system, self.model,
                      {k: (cd[R], card) for k, (cd, card) in self._codes.items()})

    def each(self, piece: str, keys, first, fn) -> list:
        """fn(workload of the group's first row, that row) per group, memoised on (piece, the group's
        key values)."""
        cols = [(self.c[k] if isinstance(k, str) else k)[first].tolist() for k in keys]
        out = []
        for r, kt in zip(first.tolist(), zip(*cols)):
            hit = self.memo.get((piece, kt))
            if hit is None:
                hit = self.memo[(piece, kt)] = fn(_ns(self.c, r), r)
            out.append(hit)
        return out


def _layer_piece(ns, system, model):
    """One layer and the ends as arrays, the compute roof's name; None when pricing raises (scalar rows).
    The roof is the largest of per-resource sums (layer x layers + ends) / pp: its argmax does not depend
    on pp, so it is taken at pp = 1."""
    try:
        ly, ends, (lb, eb) = st.layer_terms(ns, system, model, _layout(ns))
    except InputError:
        return None
    b_ = st.compute_bounds(lb, eb, model.layers, 1)
    return (np.array([ly[k] for k in LY]), np.array([ends[k] for k in ENDS]),
            max(b_, key=b_.get) if b_ else "compute")


def _stage_piece(ns, system, model) -> tuple[np.ndarray, np.ndarray]:
    """``step.stage_terms`` per stage (p x 5) and per run of identical stages (4 x 5, zero-padded)."""
    per_stage = np.array(st.stage_terms(ns, system, model, _layout(ns)), dtype=float)
    runs = np.zeros((4, 5))
    firsts = [x[0] for x in stage_runs(model.layers, len(per_stage))]
    runs[:len(firsts)] = per_stage[firsts]
    return per_stage, runs


def _array_path(c: dict, system, model, memory: bool, codes=None) -> tuple[dict, np.ndarray]:
    """Metrics of every row of ``c`` (all valid; ``codes``: integer codes of columns known already);
    returns (columns, rows whose layer pricing raised)."""
    n = len(c["micro_batch"])
    bt = _Batch(c, system, model, codes)
    # ---- one layer and the ends, per distinct layer shape
    lg_first, lg_inv = bt.groups(*LAYER_KEY)
    lay = bt.each("layer", LAYER_KEY, lg_first, lambda ns, r: _layer_piece(ns, system, model))
    failed = [g for g, x in enumerate(lay) if x is None]
    if failed:
        return {}, np.isin(lg_inv, failed)
    LYm = np.stack([x[0] for x in lay]).T[:, lg_inv]          # one contiguous row per quantity
    ENm = np.stack([x[1] for x in lay]).T[:, lg_inv]
    ly = dict(zip(LY, LYm))
    ends = dict(zip(ENDS, ENm))

    tp, pp, dp, sp = (c[f"parallel.{k}"] for k in ("tp", "pp", "dp", "sp"))
    zero, ep = c["parallel.zero"], c["parallel.ep"]
    gb, mb, seq = c["global_batch"], c["micro_batch"], c["seq_len"]
    v = np.where(c["parallel.schedule"] == "interleaved", c["parallel.virtual_stages"], 1)
    m = gb // (mb * dp)
    zo = c["optimizer"] == "zo"
    O = {k: c[f"offload.{k}"] for k in ("optimizer", "params", "activations")}
    layerwise = (zero == 3) | (O["params"] != "none") | (O["optimizer"] != "none") | (O["activations"] != "none") | zo
    gpn = system.cluster.gpus_per_node
    stride_pp = tp * sp * dp
    pp_per_node = np.where(stride_pp < gpn, np.maximum(1, np.minimum(2, gpn // stride_pp)), 1)
    multi = pp > 1

    # ---- pipeline send/recv, global sync, per-stage data-parallel terms, FLOPs: once per distinct key
    keys = (*LAYER_KEY, pp_per_node, multi)
    first, inv = bt.groups(lg_inv, pp_per_node, multi)
    t_p2p = np.array(bt.each("p2p", keys, first, lambda ns, r: st.p2p_time(ns, system, model, _layout(ns))))[inv]
    w_B = np.where(np.isin(c["precision"], ["fp32", "tf32"]), 4.0, 2.0)
    keys = ("parallel.tp", "parallel.pp", pp_per_node, "precision", zo)
    first, inv = bt.groups(*keys)
    sync = np.array(bt.each("sync", keys, first, lambda ns, r: st.sync_time(ns, system, model, _layout(ns))))[inv]
    keys = ("global_batch", "seq_len", "recompute", zo)
    first, inv = bt.groups(*keys)
    fl = np.array([(x["model"], x["hardware"]) for x in bt.each("flops", keys, first,
                                                                 lambda ns, r: st.model_flops(ns, model))]).T
    flops, hw_flops = fl[:, inv]
    sg_first, sg_inv = bt.groups(*STAGE_KEY)
    stage_pieces = bt.each("stages", STAGE_KEY, sg_first, lambda ns, r: _stage_piece(ns, system, model))
    stages = [x[0] for x in stage_pieces]
    overhead = eff(system.device, "train_iteration_overhead_s")
    mb_over = eff(system.device, "train_microbatch_overhead_s")

    out = {k: np.zeros(n) for k in ("total", "t_pipe", "bubble", "exposed")}
    # the bound's candidates (training._bound): compute, communication, pipeline_bubble, offload_transfers,
    # host_optimizer, framework_overhead, optimizer; candidates x rows
    cands = np.zeros((7, n))
    mem_rows = {}

    # ---- pipelined path: all configurations in one pass, stages as runs of identical stages (runs x rows)
    R = np.flatnonzero(~layerwise)
    if len(R):
        K = 4
        upp, pidx = np.unique(pp[R], return_inverse=True)
        run = np.zeros((len(upp), 5, K))                       # first stage, count, layers, first?, last?
        for q, p in enumerate(upp.tolist()):
            for k, x in enumerate(stage_runs(model.layers, p)):
                run[q, :, k] = x
        first_st, cnt, nl, isf, isl = np.ascontiguousarray(np.transpose(run[pidx], (1, 2, 0)))
        isf, isl, real = isf > 0, isl > 0, cnt > 0
        sgr = np.stack([x[1] for x in stage_pieces])          # per stage group and run: dk, dc, opt, param_ag, n_local
        dk, dc, o, a = np.ascontiguousarray(np.transpose(sgr[sg_inv[R]], (2, 1, 0))[:4])
        vR = v[R].astype(float)
        pc = nl / vR
        t2 = t_p2p[R]
        Fc = pc * ly["f"][R] + t2
        Bc = pc * ly["b"][R] + t2
        e_f, e_b = ends["emb_f"][R] + mb_over, ends["emb_b"][R]
        h_f, h_b = ends["head_f"][R], ends["head_b"][R]
        S = vR * Fc + vR * Bc
        S = np.where(isf, S + (e_f + e_b), S)
        S = np.where(isl, S + (h_f + h_b), S)
        one_chunk = isl & (vR == 1)                             # the head sits on the first chunk too
        F0 = np.where(isf, Fc + e_f, Fc)
        F0 = np.where(one_chunk, F0 + h_f, F0)
        B0 = np.where(isf, Bc + e_b, Bc)
        B0 = np.where(one_chunk, B0 + h_b, B0)
        S, F0, B0 = (np.where(real, x, 0.0) for x in (S, F0, B0))
        f = it.pipeline_terms(m[R], v[R], S, B0, F0, cnt, dk, dc, c["parallel.overlap_grad_reduce"][R], zero[R] >= 2,
                              o, a, c["parallel.overlap_param_gather"][R])
        total, t_pipe = analytical.training_iteration(f["m"], f["v"], f["s_sum"], f["s_max"], f["dp_term"], sync[R],
                                                      f["step_term"], overhead)
        busy = f["m"] * f["s_max"]
        out["total"][R], out["t_pipe"][R] = total, t_pipe
        out["bubble"][R] = np.where(t_pipe > 0, 1.0 - busy / np.where(t_pipe > 0, t_pipe, 1.0), 0.0)
        parts = _parts(ly, ends, t_p2p, v, R, model.layers, pp[R])
        phs = it.pipeline_phases(f["m"], t_pipe, f, parts, sync[R], overhead)
        for i, x in enumerate(_bound_candidates(phs)):
            cands[i, R] = x
        out["exposed"][R] = phs["comm_in_layers"] + f["dp_term"] + sync[R] + f["ag_exposed"]

    # ---- layerwise path (ZeRO-3, offload, MeZO: one stage)
    R = np.flatnonzero(layerwise)
    if len(R):
        nl_max = np.array([s_[:, 4].max() for s_ in stages])[sg_inv]
        act_B = np.where(O["activations"] != "none", ly["act_bytes"], -1.0)
        keys = ["parallel.tp", "parallel.ep", "parallel.dp", "parallel.sp", "parallel.zero", "precision", "optimizer",
                "offload.optimizer", "offload.params", "offload.activations", "offload.delayed_param_update",
                "offload.overlap_optimizer_step", "parallel.grad_reduce_in_fp32", act_B[R], nl_max[R]]
        sub = bt.subset(R)
        first, inv = sub.groups(*keys)
        aR, nR = act_B[R], nl_max[R]
        terms = sub.each("layerwise", keys, first, lambda ns, r: st.layerwise_terms(
            ns, system, model, _layout(ns), float(max(aR[r], 0.0)), float(nR[r])))
        lw = {k: np.array([t[0][k] for t in terms])[inv] for k in LW_LEGS}
        hosts = [it.host_arrays(t[1]) for t in terms]
        host = {k: np.array([h[k] for h in hosts])[inv] for k in hosts[0]}
        perturb = np.array([t[2]["perturb_s"] if t[2] else 0.0 for t in terms])[inv]
        lw.update({k: ly[k][R] for k in ("f", "b")}, **{k: ends[k][R] for k in ENDS}, n=model.layers)
        s0 = np.stack([x[1][0] for x in stage_pieces])[sg_inv[R]]   # the one stage: dk, dc, opt, param_ag, n_local
        k0 = np.where(zero[R] >= 2, 0.0, s0[:, 0])             # reduce-scattered layer by layer instead
        last_b = model.layers / v[R] * ly["b"][R] + t_p2p[R] + ends["emb_b"][R]        # stage 0's first chunk
        last_b = np.where(v[R] == 1, last_b + ends["head_b"][R], last_b)
        tail = it.dp_tail(k0, s0[:, 1], last_b, c["parallel.overlap_grad_reduce"][R])
        t_opt = s0[:, 2] + np.where(zero[R] == 3, 0.0, s0[:, 3]) + perturb
        parts = _parts(ly, ends, t_p2p, v, R, model.layers, 1)
        r = it.layerwise_closed(lw, m[R], zo[R], host, tail, t_opt, sync[R], overhead, parts)
        out["total"][R], out["t_pipe"][R], out["exposed"][R] = r["total"], r["t_pipe"], r["exposed"]
        for i, x in enumerate(_bound_candidates(r["phases"])):
            cands[i, R] = x

    # ---- memory, one pass per pipeline depth
    if memory:
        prec = c["precision"]
        mixed = ~np.isin(prec, ["fp32", "tf32"])
        opt_name = c["optimizer"]
        o_B = np.where(opt_name == "adam", np.where(mixed, 12.0, 8.0), np.where(opt_name == "sgd",
                                                                               np.where(mixed, 8.0, 4.0), 0.0))
        B = np.where(mixed, dtype_bytes("bf16"), dtype_bytes("fp32"))
        full = c["recompute"] == "full"
        gpipe = c["parallel.schedule"] == "gpipe"
        g_B = np.where(zo, 0.0, np.where(c["parallel.grad_reduce_in_fp32"].astype(bool), 4.0, w_B))
        r = {"tp": tp, "pp": pp, "ep": ep, "shard": dp * sp, "sp": sp, "zero": zero, "m": m, "v": v, "gpipe": gpipe,
             "b": mb, "s": seq, "B": B, "w_B": w_B, "g_B": g_B, "o_B": o_B, "zo": zo, "full": full,
             "off_opt": O["optimizer"], "off_par": O["params"], "off_act": O["activations"],
             "per_layer": ly["act_bytes"], "working": ly["act_working"], "gpus": tp * pp * dp * sp}
        a = memory_arrays(model, system, r)
        mem, fits = a, a["fits"]
        mem_rows = {"fits": fits, "memory_hbm_gb": mem["hbm"] / 1e9, "memory_host_gb": mem["host"] / 1e9,
                    "memory_nvme_gb": mem["nvme"] / 1e9}

    # ---- the bound resource (training._bound over arrays)
    comp = [x[2] for x in lay]
    names = np.array(comp + ["communication", "pipeline_bubble", "offload_transfers", "host_optimizer",
                             "framework_overhead", "optimizer"], dtype=object)
    j = np.argmax(cands, axis=0)                              # the first of equal candidates, as max() does
    bound = names[np.where(j == 0, lg_inv, len(comp) + j - 1)]

    # ---- metrics (predict_training's formulas)
    T = out["total"]
    gpus = system.cluster.gpus
    first, inv = bt.groups("precision")
    peak = np.array([system.device.peak_flops(st.compute_dtype(str(c["precision"][r]))[0]) for r in first])[inv]
    tflops = flops / T / gpus / 1e12
    hfu_tflops = hw_flops / T / gpus / 1e12
    res = {"iteration_time_s": T, "tokens_per_s": gb * seq / T, "tflops_per_gpu": tflops,
           "hfu_tflops_per_gpu": hfu_tflops, "mfu": tflops * 1e12 / peak, "hfu": hfu_tflops * 1e12 / peak,
           "bubble_fraction": np.where(layerwise, 0.0, out["bubble"]), "exposed_comm_s": out["exposed"],
           **mem_rows, "bound": bound}
    return res, np.zeros(n, dtype=bool)


def _bound_candidates(ph: dict) -> list:
    """``training._bound``'s candidates from the phases, in its order (absent phases count 0)."""
    z = 0.0
    return [ph["forward"] + ph["backward"] + ph["recompute"],
            ph.get("comm_in_layers", z) + ph.get("dp_comm_exposed", z) + ph.get("param_gather_exposed", z)
            + ph.get("sync", z), ph.get("pipeline_bubble", z), ph.get("offload_and_zero3_exposed", z),
            ph.get("host_step_exposed", z), ph.get("overhead", z), ph.get("optimizer", z)]


def _parts(ly, ends, t_p2p, v, R, layers: int, p) -> dict:
    """``Step.parts`` (per micro-batch, mean over stages) for rows R of pipeline depth p (array or number)."""
    mean_layers = layers / p
    return {"fwd_compute": mean_layers * ly["fwd_compute"][R], "bwd_compute": mean_layers * ly["bwd_compute"][R],
            "recompute": mean_layers * ly["recompute"][R], "tp_comm": 2 * mean_layers * ly["tp_comm"][R],
            "sp_comm": mean_layers * ly["sp_comm"][R], "ep_comm": 2 * mean_layers * ly["ep_comm"][R],
            "p2p": np.where(np.asarray(p) > 1, 2 * v[R] * t_p2p[R], 0.0),
            "host_bound_s": mean_layers * ly["host_bound_s"][R], **{k: ends[k][R] / p for k in ENDS}}


# ---- entry points ------------------------------------------------------------------------------
def _scalar_row(sc: dict, memory: bool) -> dict:
    """One configuration through ``sim.scenario.predict``: the reference, and the path for rows the
    arrays do not cover."""
    from sim.scenario import predict
    try:
        p = predict(sc)
    except InputError as e:
        return {"error": str(e)}
    mt = p.metrics
    row = {k: mt[k] for k in ("iteration_time_s", "tokens_per_s", "tflops_per_gpu", "hfu_tflops_per_gpu", "mfu",
                              "hfu", "bubble_fraction", "exposed_comm_s")}
    if memory:
        row.update(fits=bool(p.fits), memory_hbm_gb=mt["memory_hbm_gb"], memory_host_gb=mt["memory_host_gb"],
                   memory_nvme_gb=mt["memory_nvme_gb"])
    row.update(bound=p.bound, error="")
    return row


def _system_model(top: dict):
    """(system, model) of a scenario's non-workload fields, resolved once per distinct content per call."""
    from sim.scenario import resolve
    stub = {**top, "workload": {"kind": "training", "global_batch": 1, "micro_batch": 1, "seq_len": 1,
                                "precision": "fp32"}}
    _, system, model, _ = resolve(stub)
    return system, model


def evaluate_table(top: dict, base_workload: dict, columns: dict, n: int, memory: bool = True,
                   scenario_of=None, scalar_rows=None) -> pd.DataFrame:
    """Predict ``n`` training configurations that share ``top`` (hardware, host, cluster, model,
    parameters, whatif) and ``base_workload``, with per-configuration values in ``columns`` (flat
    names: 'micro_batch', 'parallel.tp', 'offload.optimizer', ...; arrays of length n, or pandas
    Series / Categoricals for the literal ones). ``scenario_of(i)`` gives row i as a scenario mapping
    for the scalar path (default: built from the columns); ``scalar_rows`` marks rows to send there
    whatever their values. Returns one row per configuration: ``OUT_COLS`` (no memory columns
    without ``memory``); ``error`` holds the InputError message of a configuration that is not valid."""
    spec = schema()
    flat = flatten_workload(base_workload)

    def build(i: int) -> dict:
        if scenario_of is not None:
            return scenario_of(i)
        wl: dict = {"kind": "training"}
        for k, val in {**(flat or {}), **{k: _py(a[i]) for k, a in columns.items()}}.items():
            if "." in k:
                grp, f = k.split(".", 1)
                wl.setdefault(grp, {})[f] = val
            else:
                wl[k] = val
        return {**top, "workload": wl}

    scalar = np.ones(n, dtype=bool)
    res: dict = {}
    c: dict = {}
    try:
        system, model = _system_model(top)
        shape_ok = flat is not None and all(k in spec for k in flat) and all(k in spec for k in columns)
    except InputError:
        shape_ok = False
    const: set = set()                                    # columns with one value for every row
    lit: dict = {}                                        # codes of the literal columns (factorized once)
    vec = np.zeros(0, dtype=np.int64)
    if shape_ok and n:
        scalar[:] = False if scalar_rows is None else scalar_rows
        for k, (default, kind, allowed, bounds) in spec.items():
            if k in columns:
                col = columns[k]
                col = col if (kind == "lit" and isinstance(col, (pd.Series, pd.Categorical))) else np.asarray(col)
                c[k], ok, *cd = _check(col, kind, allowed, bounds)
                if cd and cd[0] is not None:
                    lit[k] = cd[0]
                scalar |= ~ok
                continue
            if k in flat:                                     # one value for every row: checked once
                raw = np.array([flat[k]], dtype=object if flat[k] is None else None)
            elif default is not REQUIRED:
                raw = np.array([-1 if default is None else default])
            else:
                scalar[:] = True
                break
            one, ok, *_ = _check(raw, kind, allowed, bounds)
            if not ok[0]:
                scalar[:] = True
                break
            c[k] = np.full(n, one[0])
            const.add(k)
        if not scalar.all():
            with np.errstate(divide="ignore", invalid="ignore"):   # rows already sent to the scalar path hold 0s
                scalar |= ~(_valid(c, system, model) & (c["engine"] == "analytical"))
            vec = np.flatnonzero(~scalar)
            known = {k: (None, 1) for k in const}
            known.update({k: (cd[vec], card) for k, (cd, card) in lit.items()})
            order = _mask_order({k: c[k][vec] for k in SORT_KEY if k not in const}, known, len(vec))
            vec = vec[order]                                     # equal branches side by side
            c = {k: (np.full(len(vec), x[0]) if k in const else x[vec]) for k, x in c.items()}
            codes = {k: (np.zeros(len(vec), np.int64), 1) for k in const}
            codes.update({k: (cd[vec], card) for k, (cd, card) in lit.items()})
            while len(vec):
                res, fail = _array_path(c, system, model, memory, codes)
                if not fail.any():
                    break
                scalar[vec[fail]] = True                     # layer shapes whose pricing raised: scalar rows
                vec = vec[~fail]
                c = {k: x[~fail] for k, x in c.items()}
                codes = {k: (cd[~fail], card) for k, (cd, card) in codes.items()}
                res = {}
    cols = [k for k in OUT_COLS if memory or not (k == "fits" or k.startswith("memory_"))]
    out = {k: np.full(n, np.nan) for k in cols}
    out["bound"] = np.full(n, None, dtype=object)
    out["error"] = np.full(n, "", dtype=object)
    if memory:
        out["fits"] = np.zeros(n, dtype=bool)
    if res:                                                   # vec: the rows of res, in its order
        for k in cols:
            if k in res:
                out[k][vec] = res[k]
    for i in np.flatnonzero(scalar):
        for k, val in _scalar_row(build(int(i)), memory).items():
            out[k][i] = val
    return pd.DataFrame({k: (pd.Series(out[k], dtype=object) if out[k].dtype.kind == "O" else out[k]) for k in cols},
                        columns=cols)


_MISSING = object()


def _workload_columns(workloads: list) -> tuple[dict, np.ndarray]:
    """Flat columns of a list of workload mappings, and the rows to leave to the scalar path (not a
    mapping, a field outside the schema, a required field left out): one pass, no per-row dicts."""
    spec = schema()
    n = len(workloads)
    cols: dict = {}
    odd = np.zeros(n, dtype=bool)
    prefixed = {g: {} for g in ("parallel", "offload")}      # 'tp' -> 'parallel.tp', built once per name
    for j, wl in enumerate(workloads):
        if not isinstance(wl, dict):
            odd[j] = True
            continue
        for k, v in wl.items():
            if k in prefixed:
                if not isinstance(v, dict):
                    odd[j] = True
                    continue
                names = prefixed[k]
                items = [(names.get(k2) or names.setdefault(k2, f"{k}.{k2}"), v2) for k2, v2 in v.items()]
            elif k == "kind":
                continue
            else:
                items = ((k, v),)
            for name, val in items:
                col = cols.get(name)
                if col is None:
                    if name not in spec:
                        odd[j] = True
                        continue
                    col = cols[name] = [_MISSING] * n
                col[j] = val
    out = {}
    for name, col in cols.items():
        default = spec[name][0]
        if default is REQUIRED:
            miss = [j for j, x in enumerate(col) if x is _MISSING]
            odd[miss] = True
            default = None
        vals = [default if x is _MISSING else x for x in col]
        out[name] = np.array(vals, dtype=object) if any(x is None for x in vals) else np.array(vals)
    for name, (default, *_) in spec.items():
        if default is REQUIRED and name not in out:
            odd[:] = True                                      # nobody gave it: every row's error is the scalar path's
    return out, odd


def evaluate_many(scenarios, memory: bool = True) -> pd.DataFrame:
    """Predict many ``training`` scenarios (mappings as ``gpusim predict`` takes): grouped by everything
    but the workload, each group's workloads become columns for ``evaluate_table``."""
    scenarios = list(scenarios)
    groups: dict = {}
    plain = (str, int, float, bool, type(None))
    for i, sc in enumerate(scenarios):
        # scenarios written the same way share a group (a dict's repr keeps its order: two orders of the
        # same fields only make two groups)
        key = tuple((k, v if isinstance(v, plain) else repr(v)) for k, v in sc.items() if k != "workload")
        groups.setdefault(key, []).append(i)
    parts = []
    for idx in groups.values():
        top = {k: v for k, v in scenarios[idx[0]].items() if k != "workload"}
        cols, odd = _workload_columns([scenarios[i].get("workload") for i in idx])
        df = evaluate_table(top, {}, cols, len(idx), memory, lambda j, idx=idx: scenarios[idx[j]], scalar_rows=odd)
        df.index = idx
        parts.append(df)
    if not parts:
        return pd.DataFrame(columns=OUT_COLS)
    return pd.concat(parts).sort_index()
