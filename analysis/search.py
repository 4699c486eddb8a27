"""``gpusim search``: rank every valid training layout, or the cheapest inference deployment.

Why it exists: picking tp/pp/dp, ZeRO stage, micro-batch and recomputation by hand (as Calculon
and Megatron users do) misses layouts; the model is cheap enough to try them all. This module
only enumerates, filters, distributes and ranks; every number comes from the workload kinds
(``sim.techniques.training.evaluate_many`` in vectorized batches, ``sim.scenario.predict`` for
single configurations): there is no cost model here. docs/search.md has the rules.
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from sim.errors import InputError

RECOMPUTE = ("none", "selective", "full")
# (offload.optimizer, offload.params) pairs tried on one pipeline stage
OFFLOADS = (("none", "none"), ("cpu", "none"), ("cpu", "cpu"))
LAYOUT_COLS = ["tp", "pp", "dp", "cp", "cp_mode", "sequence_parallel", "ep", "zero", "micro_batch",
               "schedule", "virtual_stages", "recompute", "offload_optimizer", "offload_params"]


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


# ---- training: the search space ---------------------------------------------------------------
@dataclass
class TrainingSpace:
    """What is held fixed (model, cluster, batch) and which knobs the enumeration opens."""
    model: object                      # ModelSpec
    gpus: int
    gpus_per_node: int = 8
    global_batch: int = 1536
    seq_len: int = 2048
    cross_node_tp: bool = False        # allow tp > gpus_per_node
    context_parallel: bool = True      # enumerate cp (the training kind's parallel.sp) > 1
    offload: bool = True               # enumerate CPU offload on one pipeline stage
    flash: bool = True                 # attention is FlashAttention (attn_impl flash2)
    max_micro_batch: int | None = None
    rejected: Counter = field(default_factory=Counter)

    def reject(self, reason: str, n: int = 1):
        self.rejected[reason] += n


def _layout_ok(sp: TrainingSpace, tp: int, pp: int, cp: int, dp: int) -> bool:
    """Rules on (tp, pp, cp, dp) alone; each failure is counted once per layout."""
    m = sp.model
    kv = m.n_kv_heads
    rules = [
        (tp > sp.gpus_per_node and not sp.cross_node_tp, "tp > gpus_per_node (tensor parallelism kept in a node)"),
        (m.heads % tp != 0, "tp must divide heads"),
        (kv % tp != 0 and tp % kv != 0, "tp must divide kv_heads or be a multiple of it"),
        (m.ffn % tp != 0, "tp must divide ffn"),
        (pp > m.layers, "pp > layers"),
        (cp > 1 and not sp.context_parallel, "context parallelism not enumerated (--cp off; auto: seq_len < 16384)"),
        (cp > 1 and sp.seq_len % cp != 0, "cp must divide seq_len"),
        (sp.global_batch % dp != 0, "dp must divide global_batch"),
    ]
    for bad, reason in rules:
        if bad:
            sp.reject(reason)
            return False
    return True


def _schedules(sp: TrainingSpace, pp: int, m: int) -> list[tuple[str, int]]:
    """1F1B, plus interleaved 1F1B with every v >= 2 dividing layers/pp (needs m % pp == 0)."""
    if pp == 1:
        return [("1f1b", 1)]
    out = [("1f1b", 1)]
    L = sp.model.layers
    if L % pp:
        sp.reject("interleaved needs pp to divide layers")
        return out
    vs = [v for v in divisors(L // pp) if v >= 2]
    if m % pp:
        sp.reject("interleaved needs micro-batches divisible by pp", len(vs))
        return out
    return out + [("interleaved", v) for v in vs]


def _zero_offload(sp: TrainingSpace, pp: int, shard: int) -> list[tuple[int, str, str]]:
    out = []
    for zero in range(4):
        for opt, par in (OFFLOADS if sp.offload else OFFLOADS[:1]):
            reason = None
            if zero > 0 and shard == 1:
                reason = "ZeRO needs a data-parallel group (dp*cp > 1)"
            elif zero >= 2 and pp > 1:
                reason = "ZeRO-2/3 with pipeline parallelism not modelled (DeepSpeed forbids it)"
            elif opt != "none" and pp > 1:
                reason = "offload needs pp = 1"
            elif opt != "none" and zero == 0:
                reason = "optimizer offload needs ZeRO >= 1 (DeepSpeed offload_optimizer)"
            elif par != "none" and zero != 3:
                reason = "parameter offload needs ZeRO-3"
            if reason:
                sp.reject(reason)
            else:
                out.append((zero, opt, par))
    return out


def enumerate_training(sp: TrainingSpace) -> pd.DataFrame:
    """Every valid layout as one row of ``LAYOUT_COLS``; ``sp.rejected`` counts the discarded
    candidates by reason, at the level where the rule applies (a rejected (tp, pp, cp, dp) is
    counted once, not once per micro-batch below it)."""
    m = sp.model
    rows = []
    N = sp.gpus
    for tp in divisors(N):
        for pp in divisors(N // tp):
            for cp in divisors(N // (tp * pp)):
                dp = N // (tp * pp * cp)
                if not _layout_ok(sp, tp, pp, cp, dp):
                    continue
                modes = [("none", 1)]
                if cp > 1:
                    modes = [("ring", 1)]
                    if (m.heads // tp) % cp == 0:
                        modes.append(("ulysses", 1))
                    else:
                        sp.reject("ulysses needs cp to divide heads/tp")
                seqpar = [False, True] if tp > 1 else [False]
                eps = [1]
                if m.is_moe:
                    eps = [e for e in divisors(m.experts) if (dp * cp) % e == 0]
                    sp.reject("ep must divide experts and dp*cp", len(divisors(m.experts)) - len(eps))
                per_dp = sp.global_batch // dp
                mbs = divisors(per_dp)
                if sp.max_micro_batch:
                    sp.reject("micro_batch > --max-micro-batch", sum(b > sp.max_micro_batch for b in mbs))
                    mbs = [b for b in mbs if b <= sp.max_micro_batch]
                zo = _zero_offload(sp, pp, dp * cp)
                recs = list(RECOMPUTE)
                if sp.flash:
                    recs.remove("selective")
                    sp.reject("selective recompute = none under FlashAttention (no scores stored)")
                for mb in mbs:
                    for sched, v in _schedules(sp, pp, per_dp // mb):
                        for cp_mode, _ in modes:
                            for spar in seqpar:
                                for ep in eps:
                                    for zero, opt, par in zo:
                                        for rc in recs:
                                            rows.append((tp, pp, dp, cp, cp_mode, spar, ep, zero, mb, sched, v,
                                                         rc, opt, par))
    return pd.DataFrame(rows, columns=LAYOUT_COLS)


def training_scenario(row, hardware, model_ref, gpus: int, gpus_per_node: int, global_batch: int, seq_len: int,
                      precision: str = "bf16", attn_impl: str = "flash2", inter_node_gbps: float | None = None,
                      parameters: str | None = None) -> dict:
    """The ``gpusim predict`` scenario of one enumerated layout (the scalar path)."""
    par = {"tp": int(row["tp"]), "pp": int(row["pp"]), "dp": int(row["dp"]), "sp": int(row["cp"]),
           "sequence_parallel": bool(row["sequence_parallel"]), "ep": int(row["ep"]), "zero": int(row["zero"]),
           "schedule": row["schedule"], "virtual_stages": int(row["virtual_stages"])}
    if row["cp_mode"] != "none":
        par["sp_mode"] = row["cp_mode"]
    cluster = {"gpus": gpus, "gpus_per_node": gpus_per_node}
    if inter_node_gbps:
        cluster["inter_node_gbps"] = inter_node_gbps
    wl = {"kind": "training", "global_batch": global_batch, "micro_batch": int(row["micro_batch"]),
          "seq_len": seq_len, "precision": precision, "parallel": par, "recompute": row["recompute"],
          "attn_impl": attn_impl,
          "offload": {"optimizer": row["offload_optimizer"], "params": row["offload_params"]}}
    sc = {"hardware": hardware, "cluster": cluster, "model": model_ref, "workload": wl}
    if parameters:
        sc["parameters"] = parameters
    return sc


# ---- evaluation: the training kind's functions, in chunks, on Dask or in this process --------
@dataclass(frozen=True)
class TrainingContext:
    """Everything but the layout: shipped once per chunk to a worker."""
    hardware: str
    model: str | dict
    gpus: int
    gpus_per_node: int
    global_batch: int
    seq_len: int
    precision: str = "bf16"
    attn_impl: str = "flash2"
    inter_node_gbps: float | None = None
    parameters: str | None = None          # 'spec' | 'calibrated' (the scenario default: calibrated)

    def scenario(self, row) -> dict:
        return training_scenario(row, self.hardware, self.model, self.gpus, self.gpus_per_node, self.global_batch,
                                 self.seq_len, self.precision, self.attn_impl, self.inter_node_gbps, self.parameters)


METRIC_COLS = ["fits", "iteration_time_s", "tokens_per_s", "tflops_per_gpu", "mfu", "memory_hbm_gb", "bound", "error"]
NUMERIC = ["iteration_time_s", "tokens_per_s", "tflops_per_gpu", "mfu", "memory_hbm_gb"]


def evaluate_scalar(ctx: TrainingContext, layouts: pd.DataFrame) -> pd.DataFrame:
    """One ``sim.scenario.predict`` per layout (the scalar path: the reference the vectorized
    path is checked against, and the per-configuration loop of the benchmark)."""
    from sim.scenario import predict
    out = []
    for row in layouts.to_dict("records"):
        try:
            p = predict(ctx.scenario(row))
        except InputError as e:
            out.append({"fits": False, "bound": None, "error": str(e)})
            continue
        out.append({"fits": bool(p.fits), "iteration_time_s": p.metrics["iteration_time_s"],
                    "tokens_per_s": p.metrics["tokens_per_s"], "tflops_per_gpu": p.metrics["tflops_per_gpu"],
                    "mfu": p.metrics["mfu"], "memory_hbm_gb": p.memory_bytes["hbm"] / 1e9, "bound": p.bound,
                    "error": ""})
    return pd.DataFrame(out, columns=METRIC_COLS, index=layouts.index)


_ANY_LAYOUT = {"tp": 1, "pp": 1, "dp": 1, "cp": 1, "cp_mode": "none", "sequence_parallel": False, "ep": 1, "zero": 0,
               "micro_batch": 1, "schedule": "1f1b", "virtual_stages": 1, "recompute": "none",
               "offload_optimizer": "none", "offload_params": "none"}


def evaluate_vectorized(ctx: TrainingContext, layouts: pd.DataFrame) -> pd.DataFrame:
    """The training kind's batch evaluation of a chunk of layouts (``sim.techniques.training_batch.
    evaluate_table``: the layouts as columns, each distinct piece priced once, closed forms and memory
    over numpy arrays); equal to ``evaluate_scalar`` row by row, ``bound`` included."""
    from sim.techniques.training_batch import evaluate_table
    sc = ctx.scenario(_ANY_LAYOUT)                                      # what every row shares
    top = {k: v for k, v in sc.items() if k != "workload"}
    base = {k: v for k, v in sc["workload"].items() if k not in ("parallel", "micro_batch", "recompute", "offload")}
    cols = {f"parallel.{k}": layouts[c].to_numpy() for k, c in (("tp", "tp"), ("pp", "pp"), ("dp", "dp"), ("sp", "cp"),
                                                                ("sequence_parallel", "sequence_parallel"),
                                                                ("ep", "ep"), ("zero", "zero"),
                                                                ("virtual_stages", "virtual_stages"))}
    codes, modes = pd.factorize(layouts["cp_mode"])                     # cp 1 ('none'): the kind's default
    cols["parallel.sp_mode"] = pd.Categorical.from_codes(codes, [m if m != "none" else "ulysses" for m in modes],
                                                         validate=False) \
        if "ulysses" not in set(modes) or "none" not in set(modes) else layouts["cp_mode"].replace("none", "ulysses")
    cols.update({"micro_batch": layouts["micro_batch"].to_numpy(), "recompute": layouts["recompute"],
                 "parallel.schedule": layouts["schedule"], "offload.optimizer": layouts["offload_optimizer"],
                 "offload.params": layouts["offload_params"]})
    res = evaluate_table(top, base, cols, len(layouts), scenario_of=lambda i: ctx.scenario(layouts.iloc[i]))
    return res[METRIC_COLS].set_axis(layouts.index)


def _chunks(df: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [df.iloc[i:i + size] for i in range(0, len(df), size)]


def run_chunks(fn, ctx, frames: list, client=None) -> list:
    """``fn(ctx, frame)`` for every frame, in order: as Dask tasks when a client is given, else here.
    The context is a few names and numbers: it travels with each task."""
    if client is None:
        return [fn(ctx, f) for f in frames]
    futures = [client.submit(fn, ctx, f, pure=False) for f in frames]
    return client.gather(futures)


# ---- inference: the cheapest deployment meeting TTFT/TPOT targets -----------------------------
# On-demand price per GPU-hour. Source: RunPod, "Serverless pricing" (docs.runpod.io/serverless/
# pricing), "active worker" (always-on) rate per second x 3600, the one vendor page we could read
# that lists most zoo devices at once. Prices change; pass --price NAME=USD to use your own.
# The page names GPU families, not form factors: "A100 80 GB" is used for both A100 80 GB cards,
# "H100 PRO 80 GB" for both H100 cards, "L40, L40S, 6000 Ada", "A6000, A40", "4090 PRO",
# "L4, A5000, 3090". Devices without a row (A100 40 GB, V100, T4, A10, H800, GH200, MI250X,
# MI300X) have no price and are left out of a cost ranking unless --price gives one.
RUNPOD_ACTIVE_USD_PER_S = {
    "A100-SXM4-80GB": 0.00060, "A100-PCIe-80GB": 0.00060,
    "H100-SXM5-80GB": 0.00093, "H100-PCIe-80GB": 0.00093,
    "H200-SXM-141GB": 0.00124, "B200": 0.00190,
    "L40S": 0.00037, "RTX-A6000": 0.00024, "RTX-4090": 0.00021, "RTX-3090": 0.00013,
}
PRICE_USD_PER_HOUR = {k: round(v * 3600, 4) for k, v in RUNPOD_ACTIVE_USD_PER_S.items()}
PRICE_SOURCE = "RunPod serverless pricing page (docs.runpod.io/serverless/pricing), active-worker rate x 3600"


@dataclass(frozen=True)
class InferenceTarget:
    model: str | dict
    prompt_len: int
    gen_len: int
    ttft_s: float
    tpot_s: float


def _weight_formats(device) -> list[str]:
    """16-bit (bf16 where the device has it), fp8 and int8 where it has those Tensor Cores, and
    W4A16 int4 (weight-only: runs on any device's 16-bit Tensor Cores)."""
    pk = device.peak_tflops
    out = ["bf16" if "bf16" in pk else "fp16"]
    out += [w for w in ("fp8", "int8") if w in pk]
    return out + ["int4"]


def _kv_formats(device) -> list[str]:
    return ["bf16" if "bf16" in device.peak_tflops else "fp16"] + (["fp8"] if "fp8" in device.peak_tflops else [])


def inference_candidates(model, devices: list[str], max_gpus: int, weights: list[str] | None = None,
                         kv_dtypes: list[str] | None = None, rejected: Counter | None = None) -> list[dict]:
    """(device, tp, weights, kv_cache) combinations: tp a power of two up to ``max_gpus`` and the
    host's GPUs (one node: TP needs its fast links), dividing heads (Megatron's rules)."""
    from sim.hardware import load_device, load_host
    rejected = rejected if rejected is not None else Counter()
    out = []
    kv = model.n_kv_heads
    for name in devices:
        dev = load_device(name)
        host_gpus = load_host(dev.default_host).gpus
        wfs = weights or _weight_formats(dev)
        kvs = kv_dtypes or _kv_formats(dev)
        tp = 1
        while tp <= max_gpus:
            reason = None
            if tp > host_gpus:
                reason = "tp > GPUs in the device's host"
            elif model.heads % tp or (kv % tp and tp % kv) or model.ffn % tp:
                reason = "tp must divide heads, kv_heads (or be a multiple) and ffn"
            if reason:
                rejected[reason] += len(wfs) * len(kvs)
            else:
                out += [{"hardware": name, "tp": tp, "weights": w, "kv_cache": k} for w in wfs for k in kvs]
            tp *= 2
    return out


def inference_scenario(c: dict, t: InferenceTarget, batch) -> dict:
    return {"hardware": c["hardware"], "cluster": {"gpus": c["tp"], "gpus_per_node": c["tp"]}, "model": t.model,
            "workload": {"kind": "inference", "batch": batch, "prompt_len": t.prompt_len, "gen_len": t.gen_len,
                         "weights": c["weights"], "kv_cache": c["kv_cache"], "tp": c["tp"]}}


def _predict_rows(_ctx, scenarios: list[dict]) -> list[dict]:
    """Scalar predictions (``analysis.sweep.evaluate``: inputs and metrics as flat columns)."""
    from analysis.sweep import evaluate
    return [evaluate({"config_id": i, "overrides": {}, "scenario": s}) for i, s in enumerate(scenarios)]


def _flat(results: list[list[dict]]) -> list[dict]:
    return [r for part in results for r in part]


def search_inference(t: InferenceTarget, devices: list[str], max_gpus: int = 8, prices: dict | None = None,
                     weights=None, kv_dtypes=None, client=None, chunk: int = 64) -> tuple[pd.DataFrame, dict]:
    """All (device, tp, weights, kv, batch) rows with their predictions and cost; a summary."""
    from sim.models import load_model
    model = load_model(t.model)
    prices = {**PRICE_USD_PER_HOUR, **(prices or {})}
    rejected: Counter = Counter()
    cands = inference_candidates(model, devices, max_gpus, weights, kv_dtypes, rejected)
    # 1) capacity: the most sequences of prompt+gen tokens that fit (batch 'max')
    scen = [inference_scenario(c, t, "max") for c in cands]
    caps = _flat(run_chunks(_predict_rows, None, [scen[i:i + chunk] for i in range(0, len(scen), chunk)], client))
    grid = []
    for c, r in zip(cands, caps):
        cap = int(r.get("metric.batch", 0) or 0) if not r.get("error") else 0
        if r.get("error"):
            rejected["not predicted: " + r["error"].split(":")[-1].strip()[:60]] += 1
            continue
        if cap < 1 or not r.get("fits", False):
            rejected["weights leave no room for one sequence's KV cache"] += 1
            continue
        batches = sorted({2 ** k for k in range(int(math.log2(cap)) + 1)} | {cap})
        grid += [(c, b) for b in batches]
    # 2) every batch size up to capacity
    scen = [inference_scenario(c, t, b) for c, b in grid]
    res = _flat(run_chunks(_predict_rows, None, [scen[i:i + chunk] for i in range(0, len(scen), chunk)], client))
    rows = []
    for (c, b), r in zip(grid, res):
        if r.get("error"):
            rejected["not predicted: " + r["error"].split(":")[-1].strip()[:60]] += 1
            continue
        price = prices.get(c["hardware"])
        usd_h = price * c["tp"] if price is not None else float("nan")
        tps = r["metric.tokens_per_s"]
        rows.append({**c, "batch": b, "gpus": c["tp"], "fits": bool(r["fits"]), "ttft_s": r["metric.ttft_s"],
                     "tpot_s": r["metric.tpot_s"], "tokens_per_s": tps, "tokens_per_s_per_gpu": tps / c["tp"],
                     "memory_hbm_gb": r["memory.hbm"] / 1e9, "bound": r["bound"], "usd_per_hour": usd_h,
                     "usd_per_mtok": usd_h / (tps * 3600) * 1e6 if tps > 0 else float("nan")})
    df = pd.DataFrame(rows)
    if df.empty:
        return df, {"candidates": len(cands), "evaluated": 0, "meeting": 0, "rejected": dict(rejected)}
    df["meets"] = df["fits"] & (df["ttft_s"] <= t.ttft_s) & (df["tpot_s"] <= t.tpot_s)
    df["priced"] = df["usd_per_hour"].notna()
    ok = df[df["meets"] & df["priced"]].sort_values(["usd_per_hour", "usd_per_mtok", "hardware", "tp", "batch"],
                                                    kind="mergesort")
    df["rank"] = pd.Series(range(1, len(ok) + 1), index=ok.index).reindex(df.index).astype("Int64")
    summary = {"candidates": len(cands), "evaluated": len(df), "meeting": int(df["meets"].sum()),
               "meeting_unpriced": int((df["meets"] & ~df["priced"]).sum()), "rejected": dict(rejected),
               "price_source": PRICE_SOURCE}
    return df, summary


def search_training(ctx: TrainingContext, space: TrainingSpace, client=None, chunk: int = 4096,
                    evaluator=None, confirm_top: int = 0) -> tuple[pd.DataFrame, dict]:
    """Enumerate, evaluate in chunks (vectorized by default), rank the layouts that fit by tokens/s.

    A layout the training kind rejects although the enumeration let it through is dropped and
    counted under ``rejected`` ("training kind: <field>"), so a rule added to the kind later
    cannot crash or pollute a search. ``confirm_top``: the best n rows are predicted again one by
    one (scalar path): that fills their ``bound`` and must agree to 1e-6 relative.
    """
    t0 = time.perf_counter()
    layouts = enumerate_training(space)
    t_enum = time.perf_counter() - t0
    evaluator = evaluator or evaluate_vectorized
    parts = run_chunks(evaluator, ctx, _chunks(layouts, chunk), client) if len(layouts) else []
    metrics = pd.concat(parts) if parts else pd.DataFrame(columns=METRIC_COLS)
    df = pd.concat([layouts, metrics], axis=1)
    bad = df["error"] != ""
    for msg in df.loc[bad, "error"]:
        field_ = msg.split("field '")[1].split("'")[0] if "field '" in msg else msg[:60]
        space.reject(f"training kind: {field_}")
    df = df[~bad].drop(columns="error").reset_index(drop=True)
    df.insert(0, "config_id", range(len(df)))
    # ties (equal throughput) go to less memory, then to the enumeration order: deterministic
    ranked = df[df["fits"]].sort_values(["tokens_per_s", "memory_hbm_gb", "config_id"],
                                        ascending=[False, True, True], kind="mergesort")
    df["rank"] = pd.Series(range(1, len(ranked) + 1), index=ranked.index).reindex(df.index).astype("Int64")
    if confirm_top and len(ranked):
        confirm(ctx, df, ranked.index[:confirm_top])
    summary = {"candidates": len(layouts) + sum(space.rejected.values()), "valid": len(layouts),
               "evaluated": len(df), "fit": len(ranked), "rejected": dict(space.rejected.most_common()),
               "enumerate_s": t_enum, "wall_s": time.perf_counter() - t0}
    return df, summary


def confirm(ctx: TrainingContext, df: pd.DataFrame, index) -> None:
    """Predict rows ``index`` of ``df`` through ``sim.scenario.predict``; fill ``bound`` in place and
    check that the batch path gave the same numbers (1e-6 relative)."""
    ref = evaluate_scalar(ctx, df.loc[index, LAYOUT_COLS])
    rel = ((df.loc[index, NUMERIC] - ref[NUMERIC]).abs() / ref[NUMERIC].abs()).to_numpy().max()
    if rel > 1e-6 or (df.loc[index, "fits"] != ref["fits"]).any():
        raise RuntimeError(f"vectorized and scalar training predictions differ (max relative {rel:.1e})")
    df["bound"] = df["bound"].astype(object)
    df.loc[index, "bound"] = ref["bound"].astype(object)


def layout_label(r) -> str:
    s = f"tp{r['tp']} pp{r['pp']} dp{r['dp']}"
    if r["cp"] > 1:
        s += f" cp{r['cp']}({r['cp_mode']})"
    if r["ep"] > 1:
        s += f" ep{r['ep']}"
    if r["sequence_parallel"]:
        s += " sp"
    s += f" z{r['zero']} mb{r['micro_batch']}"
    if r["schedule"] == "interleaved":
        s += f" v{r['virtual_stages']}"
    if r["recompute"] != "none":
        s += f" rc:{r['recompute']}"
    if r["offload_optimizer"] != "none":
        s += " off:opt" + ("+params" if r["offload_params"] != "none" else "")
    return s


# ---- command line -----------------------------------------------------------------------------
def add_arguments(p):
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("training", help="rank every valid parallel layout by tokens/s under the memory limit")
    t.add_argument("--model", required=True, help="zoo name or a model file")
    t.add_argument("--gpus", type=int, required=True)
    t.add_argument("--hardware", required=True, help="device zoo name or spec file")
    t.add_argument("--global-batch", type=int, default=1536, help="sequences per iteration (default 1536)")
    t.add_argument("--seq-len", type=int, default=2048)
    t.add_argument("--gpus-per-node", type=int, default=8)
    t.add_argument("--precision", default="bf16", choices=["fp32", "tf32", "fp16", "bf16", "fp8"])
    t.add_argument("--parameters", choices=["spec", "calibrated"], default=None,
                   help="efficiency parameters: the spec's or the calibrated profile's (default: the scenario default)")
    t.add_argument("--inter-node-gbps", type=float, default=None, help="per-GPU network line rate (default: the kind's)")
    t.add_argument("--cross-node-tp", action="store_true", help="also try tp > gpus-per-node")
    t.add_argument("--cp", choices=["auto", "on", "off"], default="auto",
                   help="context parallelism (Ulysses/ring) degrees > 1: auto = only when seq-len >= 16384")
    t.add_argument("--no-offload", action="store_true", help="do not try CPU offload")
    t.add_argument("--max-micro-batch", type=int, default=None)
    t.add_argument("--scalar", action="store_true", help="evaluate with one predict() per layout (slow; a check)")
    _common(t)
    i = sub.add_parser("inference", help="cheapest deployment meeting TTFT/TPOT targets")
    i.add_argument("--model", required=True)
    i.add_argument("--ttft", type=float, required=True, help="time-to-first-token target, seconds")
    i.add_argument("--tpot", type=float, required=True, help="time-per-output-token target, seconds")
    i.add_argument("--prompt-len", type=int, default=1024)
    i.add_argument("--gen-len", type=int, default=256)
    i.add_argument("--hardware", default=",".join(PRICE_USD_PER_HOUR), help="comma-separated devices "
                   "(default: every device with a price)")
    i.add_argument("--max-gpus", type=int, default=8)
    i.add_argument("--weights", default=None, help="comma-separated weight formats (default: per device)")
    i.add_argument("--kv-dtypes", default=None, help="comma-separated KV-cache dtypes (default: per device)")
    i.add_argument("--price", action="append", default=[], metavar="DEVICE=USD",
                   help="override/add a per-GPU hourly price (repeatable)")
    _common(i)


def _common(p):
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print one JSON object (summary and top rows)")
    p.add_argument("--out", default=None, help="write every evaluated row to this Parquet file")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, default=None, help="local cluster workers (default: cores)")
    p.add_argument("--serial", action="store_true", help="no Dask: evaluate in this process")


def _client(args):
    if args.serial:
        return None
    from analysis.sweep import make_client
    return make_client(args.scheduler, args.workers)


def _close(client):
    if client is not None:
        from analysis.sweep import close_client
        close_client(client)


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts at full float precision (``DataFrame.to_json`` rounds to 10 digits)."""
    def py(v):
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return None
        return v.item() if hasattr(v, "item") else v
    return [{k: py(v) for k, v in r.items()} for r in df.to_dict("records")]


def _table(df: pd.DataFrame, cols: list[tuple[str, str, str]]) -> str:
    """Fixed-width text table: (header, column, format)."""
    cells = [[h for h, _, _ in cols]] + [[format(r[c], f) if f else str(r[c]) for _, c, f in cols]
                                         for _, r in df.iterrows()]
    w = [max(len(row[k]) for row in cells) for k in range(len(cols))]
    left = [not f for _, _, f in cols]                      # text left, numbers right
    return "\n".join("  ".join(v.ljust(w[k]) if left[k] else v.rjust(w[k]) for k, v in enumerate(row)) for row in cells)


def _check_model_and_device(model_ref, devices):
    from sim.hardware import load_device
    from sim.models import load_model
    model = load_model(model_ref, where="--model", prefix="")
    for d in devices:
        load_device(d)
    return model


def run(args) -> int:
    return _run_training(args) if args.what == "training" else _run_inference(args)


def _run_training(args) -> int:
    model = _check_model_and_device(args.model, [args.hardware])
    if args.gpus < 1 or args.global_batch < 1 or args.seq_len < 1 or args.gpus_per_node < 1:
        raise InputError("search", "--gpus/--global-batch/--seq-len/--gpus-per-node", "must be positive integers")
    cp = args.cp == "on" or (args.cp == "auto" and args.seq_len >= 16384)
    space = TrainingSpace(model, args.gpus, min(args.gpus_per_node, args.gpus), args.global_batch, args.seq_len,
                          cross_node_tp=args.cross_node_tp, context_parallel=cp, offload=not args.no_offload,
                          max_micro_batch=args.max_micro_batch)
    ctx = TrainingContext(args.hardware, args.model, args.gpus, space.gpus_per_node, args.global_batch, args.seq_len,
                          args.precision, inter_node_gbps=args.inter_node_gbps, parameters=args.parameters)
    client = _client(args)
    try:
        df, summary = search_training(ctx, space, client, evaluator=evaluate_scalar if args.scalar else None,
                                      confirm_top=args.top)
    finally:
        _close(client)
    top = df[df["rank"].notna()].sort_values("rank").head(args.top)
    if args.out:
        df.to_parquet(args.out, index=False)
    if args.json:
        print(json.dumps({**summary, "top": _records(top)}))
        return 0
    print(f"{args.model} on {args.gpus} x {args.hardware}, global batch {args.global_batch}, seq {args.seq_len}: "
          f"{summary['evaluated']} valid layouts evaluated ({sum(summary['rejected'].values())} candidates "
          f"rejected), "
          f"{summary['fit']} fit in memory; {summary['wall_s']:.2f} s")
    for reason, n in summary["rejected"].items():
        print(f"  rejected {n:6d}: {reason}")
    if top.empty:
        print("no layout fits in memory")
        return 0
    top = top.assign(layout=top.apply(layout_label, axis=1), it_ms=top["iteration_time_s"] * 1e3)
    print(_table(top, [("rank", "rank", "d"), ("layout", "layout", ""), ("iter ms", "it_ms", ".1f"),
                       ("tokens/s", "tokens_per_s", ",.0f"), ("MFU", "mfu", ".3f"),
                       ("HBM GB/GPU", "memory_hbm_gb", ".1f"), ("bound", "bound", "")]))
    if args.out:
        print(f"all {len(df)} rows -> {args.out}")
    return 0


def _run_inference(args) -> int:
    devices = [d.strip() for d in args.hardware.split(",") if d.strip()]
    _check_model_and_device(args.model, devices)
    prices = {}
    for p in args.price:
        name, _, usd = p.partition("=")
        try:
            prices[name.strip()] = float(usd)
        except ValueError:
            raise InputError("search", "--price", f"expected DEVICE=USD_PER_HOUR, got {p!r}") from None
    target = InferenceTarget(args.model, args.prompt_len, args.gen_len, args.ttft, args.tpot)
    split = (lambda s: [x.strip() for x in s.split(",")] if s else None)
    client = _client(args)
    try:
        df, summary = search_inference(target, devices, args.max_gpus, prices, split(args.weights),
                                       split(args.kv_dtypes), client)
    finally:
        _close(client)
    if args.out and not df.empty:
        df.to_parquet(args.out, index=False)
    ranked = df[df["rank"].notna()].sort_values("rank").head(args.top) if not df.empty else df
    unpriced = df[df["meets"] & ~df["priced"]].sort_values("tokens_per_s_per_gpu", ascending=False).head(args.top) \
        if not df.empty else df
    if args.json:
        print(json.dumps({**summary, "top": _records(ranked),
                          "unpriced_top_by_tokens_per_s_per_gpu": _records(unpriced)}))
        return 0
    print(f"{args.model}: prompt {args.prompt_len}, gen {args.gen_len}, TTFT <= {args.ttft} s, TPOT <= {args.tpot} s: "
          f"{summary['evaluated']} deployments evaluated, {summary['meeting']} meet the targets")
    for reason, n in summary["rejected"].items():
        print(f"  rejected {n:6d}: {reason}")
    cols = [("hardware", "hardware", ""), ("GPUs", "gpus", "d"), ("weights", "weights", ""), ("KV", "kv_cache", ""),
            ("batch", "batch", "d"), ("TTFT s", "ttft_s", ".3f"), ("TPOT ms", "tpot_ms", ".1f"),
            ("tokens/s", "tokens_per_s", ",.0f"), ("HBM GB", "memory_hbm_gb", ".1f")]
    if not ranked.empty:
        ranked = ranked.assign(tpot_ms=ranked["tpot_s"] * 1e3)
        print(f"cheapest first (USD per GPU-hour: {summary['price_source']}):")
        print(_table(ranked, [("rank", "rank", "d")] + cols + [("$/h", "usd_per_hour", ".2f"),
                                                                  ("$/Mtok", "usd_per_mtok", ".2f")]))
    else:
        print("no priced deployment meets the targets")
    if not unpriced.empty:
        unpriced = unpriced.assign(tpot_ms=unpriced["tpot_s"] * 1e3)
        print("meeting the targets on devices without a price (ranked by tokens/s per GPU; give --price):")
        print(_table(unpriced, cols + [("tok/s/GPU", "tokens_per_s_per_gpu", ",.0f")]))
    return 0
