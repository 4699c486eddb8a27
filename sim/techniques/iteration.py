"""One training iteration from its priced pieces (``Step``), two ways.

``closed_form(step)`` (analytical engine):
- pipeline path: T_pipe = m*max_i S_i + (sum_i S_i - max_i S_i)/v with S_i one micro-batch's
  forward+backward on stage i (``analytical.pipeline_time``); stage i's last backward ends
  sum_{k<i} B_k earlier than stage 0's; data-parallel buckets then finish
  ``overlap_exposed(K, c, B/K)`` after it (overlap on) or K*c after it (off); then the global
  sync, the optimizer step, the ZeRO-1/2 parameter all-gather and the per-iteration overhead.
- layerwise path (ZeRO-3, offload, MeZO; one pipeline stage): each micro-batch's forward is a
  flow line of L layers through [fetch weights (PCIe/NVMe), all-gather (ZeRO-3), compute, write
  activations] and its backward through [fetch weights and activations, all-gather, compute,
  reduce-scatter, gradients to host]: sum of one layer's stage times + (L-1) x the slowest
  (``offload.flow_line``); the host optimizer step is a flow line of sub-groups through
  [NVMe read, CPU, NVMe write, weights to GPU], exposed after backward, or hidden behind the
  last backward (Fuyou) or the next iteration (ZeRO-Offload's delayed parameter update).
``build_graph(step)`` lays the same pieces out as tasks on streams for the discrete-event
engine, which then finds overlap and contention itself; ``from_timeline`` reads the result.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.engine import analytical, pipeline
from sim.engine.graph import Graph, Timeline
from sim.techniques.offload import flow_line
from sim.techniques.step import Step


@dataclass
class Times:
    iteration_s: float
    phases: dict                 # seconds by phase on the critical stage
    exposed_comm_s: float
    bubble_fraction: float
    engine: str
    extra: dict = field(default_factory=dict)


# ---- analytical ---------------------------------------------------------------------------------
# Two forms of the same closed forms: plain Python for one configuration (``closed_form(step)``: numpy
# on one-element arrays would cost a predict() three times its time), and numpy with the configurations
# on the leading axis and the pipeline stages on the last (``pipeline_terms``, ``layerwise_closed``) for
# ``sim.techniques.training_batch``. tests/test_training_batch.py holds the two equal to 1e-9.
def _exclusive_cumsum(x):
    """sum_{k<i} x_k along the first axis, added in stage order."""
    out = np.zeros_like(x)
    if x.shape[0] > 1:
        out[1:] = np.cumsum(x[:-1], axis=0)
    return out


def dp_tail(k, c, last_b, overlap):
    """Exposed data-parallel reduction after a stage's last backward: k buckets of c seconds, one ready
    every last_b/k seconds when overlapping (``analytical.overlap_exposed``), all k after it otherwise."""
    k, c, last_b = (np.asarray(x, dtype=float) for x in (k, c, last_b))
    kk = np.maximum(k, 1.0)
    hidden = np.maximum(c, k * c - (k - 1) * last_b / kk)
    return np.where(k == 0, 0.0, np.where(overlap, hidden, k * c))


def pipeline_terms(m, v, S, B0, F0, count, dp_k, dp_c, dp_overlap, every_mb, opt, pag, pag_overlap) -> dict:
    """The scalars ``analytical.training_iteration`` needs, for runs of identical stages x configurations.

    Stages with the same layer count and role (first, middle, last) have the same times and data-
    parallel terms, so the first axis holds runs, in stage order: ``count`` stages each (0 pads a run);
    the second axis holds configurations (reductions over a short first axis are what numpy does
    fast). Per run: S one micro-batch's forward+backward on one stage, B0/F0 its first chunk's
    backward / forward, dp_k/dp_c data-parallel buckets and seconds per bucket, opt the optimizer
    step, pag the ZeRO-1/2 parameter all-gather. Per configuration: m, v, dp_overlap, every_mb
    (ZeRO-2: a reduce-scatter per micro-batch; what one cannot hide spills), pag_overlap. Stage i's
    last backward ends sum_{k<i} B0_k before stage 0's, so within a run the first stage's tail is the
    latest; the slowest tail sets the exposed reduction. Padded runs (count 0, zero times) change no
    maximum: every real term is >= 0 and the first run's offset is 0."""
    m = np.asarray(m, dtype=float)
    S, B0, F0, count, dp_k, dp_c, opt, pag = (np.asarray(x, dtype=float)
                                              for x in (S, B0, F0, count, dp_k, dp_c, opt, pag))
    tail = dp_tail(dp_k, dp_c, B0, np.asarray(dp_overlap))
    spill = np.maximum(0.0, dp_k * dp_c - S) * (m - 1)
    tail = np.where(np.asarray(every_mb), tail + spill, tail)
    dp_term = (tail - _exclusive_cumsum(B0 * count)).max(axis=0)
    ag_exposed = np.where(np.asarray(pag_overlap), np.maximum(0.0, pag - F0), pag)
    return {"m": m, "v": np.asarray(v, dtype=float), "s_sum": (S * count).sum(axis=0),
            "s_max": S.max(axis=0), "dp_term": dp_term, "step_term": (opt + ag_exposed).max(axis=0),
            "ag_exposed": ag_exposed.max(axis=0), "opt": opt.max(axis=0)}


def _dp_tail(step: Step, i: int) -> float:
    k, c = step.dp_k[i], step.dp_c[i]
    if k == 0:
        return 0.0
    last_b = step.B[i][0]
    if step.dp_overlap:
        return max(c, k * c - (k - 1) * last_b / k)        # analytical.overlap_exposed, scalar
    return k * c


def features(step: Step) -> dict:
    """The scalars the vectorised closed form needs (``analytical.training_iteration``)."""
    L = step.L
    S = [sum(f) + sum(b) for f, b in zip(step.F, step.B)]
    s_sum, s_max = sum(S), max(S)
    dp_term, off = -float("inf"), 0.0
    for i in range(L.pp):
        tail = _dp_tail(step, i)
        if step.dp_every_microbatch:  # ZeRO-2: a reduce-scatter per micro-batch; what one cannot hide spills
            tail += max(0.0, step.dp_k[i] * step.dp_c[i] - S[i]) * (step.m - 1)
        dp_term = max(dp_term, tail - off)
        off += step.B[i][0]           # stage i+1's last backward ends this much before stage 0's
    ag = step.param_ag
    ag_exposed = [max(0.0, a - f[0]) for a, f in zip(ag, step.F)] if step.param_ag_overlap else ag
    return {"m": step.m, "v": L.v, "s_sum": s_sum, "s_max": s_max, "dp_term": dp_term,
            "sync": step.sync_s, "step_term": max(o + a for o, a in zip(step.opt, ag_exposed)),
            "overhead": step.overhead_s, "ag_exposed": max(ag_exposed), "opt": max(step.opt)}


def pipeline_phases(m, t_pipe, f: dict, parts: dict, sync, overhead) -> dict:
    """Seconds by phase on the critical stage (``parts``: per micro-batch, mean over stages)."""
    p = parts
    comm_mb = p["tp_comm"] + p["sp_comm"] + p["ep_comm"] + p["p2p"]
    return {"forward": m * (p["fwd_compute"] + p["emb_f"] + p["head_f"]),
            "backward": m * (p["bwd_compute"] + p["emb_b"] + p["head_b"]),
            "recompute": m * p["recompute"],
            "host_dispatch_wait": m * p["host_bound_s"],
            "comm_in_layers": m * comm_mb,
            "pipeline_bubble": t_pipe - m * f["s_max"],
            "dp_comm_exposed": f["dp_term"],
            "sync": sync, "optimizer": f["opt"],
            "param_gather_exposed": f["ag_exposed"],
            "overhead": overhead}


def closed_form(step: Step) -> Times:
    if step.path == "layerwise":
        return _closed_layerwise(step)
    f = features(step)
    total, t_pipe = analytical.training_iteration(f["m"], f["v"], f["s_sum"], f["s_max"], f["dp_term"], f["sync"],
                                                  f["step_term"], f["overhead"])
    total, t_pipe = float(total), float(t_pipe)
    busy = step.m * f["s_max"]
    bubble = 1.0 - busy / t_pipe if t_pipe > 0 else 0.0
    phases = pipeline_phases(step.m, t_pipe, f, step.parts, step.sync_s, step.overhead_s)
    exposed = phases["comm_in_layers"] + f["dp_term"] + step.sync_s + f["ag_exposed"]
    return Times(total, phases, exposed, bubble, "analytical", {"pipeline_s": t_pipe})


def flow_line_arr(stage_totals, chunks):
    """``offload.flow_line`` over arrays: stages of zero time drop out of the line."""
    tot = [np.asarray(t, dtype=float) for t in stage_totals]
    pos = [np.where(t > 0, t, 0.0) for t in tot]
    k = np.maximum(1.0, np.asarray(chunks, dtype=float))
    s = pos[0]
    mx = pos[0]
    for t in pos[1:]:
        s = s + t
        mx = np.maximum(mx, t)
    return s / k + (k - 1) * mx / k


def layerwise_closed(lw: dict, m, zo, host: dict, tail, opt, sync, overhead, parts: dict) -> dict:
    """The layerwise path (ZeRO-3, offload, MeZO; one stage) for arrays of configurations.

    ``lw``: per-layer seconds (n layers; f, b compute; fetch_f, fetch_b from host/NVMe; ag, rs the ZeRO-3
    all-gather and reduce-scatter; act_w activations out; grad_out gradients to the host) and the
    ends (emb_f, emb_b, head_f, head_b). Forward of a micro-batch: a flow line of the layers through
    [fetch weights, all-gather, compute, write activations], the LM head computing while the last
    activations are written; backward: [fetch weights and activations, all-gather + reduce-scatter
    (one link), compute], then the embedding. The host step (``host``: has, nvme, cpu, h2d, chunks,
    dpu, overlap) is exposed after backward, hidden behind the last backward but one layer (Fuyou),
    or behind the next iteration (DPU). ``zo``: MeZO, two forwards and no backward."""
    n = np.asarray(lw["n"], dtype=float)
    zo = np.asarray(zo, dtype=bool)
    fetch, gather, comp = lw["fetch_f"] * n, lw["ag"] * n, lw["f"] * n
    head = lw["head_f"] + np.where(zo, 0.0, lw["head_b"])
    fwd = lw["emb_f"] + np.maximum(flow_line_arr([fetch, gather, comp, lw["act_w"] * n], n),
                                   flow_line_arr([fetch, gather, comp], n) + head)
    bwd_line = [lw["fetch_b"] * n, (lw["ag"] + lw["rs"]) * n, lw["b"] * n]
    bwd = np.where(zo, 0.0, flow_line_arr(bwd_line, n) + lw["emb_b"])
    passes = np.where(zo, 2.0, 1.0)
    # gradients stream out (device-to-host) on their own copy engine while the next micro-batch computes
    compute = m * (passes * fwd + bwd)
    with_out = flow_line_arr(bwd_line + [lw["grad_out"] * n], n) + lw["emb_b"]
    t_tail = np.maximum(0.0, with_out - bwd)
    d2h = m * n * (lw["grad_out"] + lw["act_w"])
    t_pipe = np.where(zo | (lw["grad_out"] <= 0), compute, np.maximum(compute + t_tail, fwd + d2h + lw["emb_b"]))
    has = np.asarray(host["has"], dtype=bool)
    k = np.where(host["overlap"], np.maximum(host["chunks"], n), host["chunks"])
    t_host = np.where(has, flow_line_arr([host["nvme"], host["cpu"], host["h2d"]], k), 0.0)
    dpu = has & np.asarray(host["dpu"], dtype=bool)
    ovl = has & ~dpu & np.asarray(host["overlap"], dtype=bool)
    plain = has & ~dpu & ~ovl
    host_ovl = np.maximum(t_host / n, t_host - (bwd - lw["b"]))
    host_exposed = np.where(dpu, np.maximum(0.0, t_host - t_pipe - tail),
                            np.where(ovl, host_ovl, np.where(plain, t_host, 0.0)))
    t_end = np.where(dpu, np.maximum(t_pipe + tail, t_host) + sync + opt,
                     np.where(ovl, t_pipe + np.maximum(tail, host_ovl) + sync + opt,
                              np.where(plain, t_pipe + tail + t_host + sync + opt, t_pipe + tail + sync + opt)))
    total = t_end + overhead
    compute_mb = passes * (lw["emb_f"] + lw["head_f"] + n * lw["f"]) + np.where(
        zo, 0.0, lw["emb_b"] + lw["head_b"] + n * lw["b"])
    p = parts
    phases = {"forward": m * passes * (p["fwd_compute"] + p["emb_f"] + p["head_f"]),
              "backward": np.where(zo, 0.0, m * (p["bwd_compute"] + p["emb_b"] + p["head_b"])),
              "recompute": np.where(zo, 0.0, m * p["recompute"]),
              "comm_in_layers": m * (p["tp_comm"] + p["sp_comm"] + p["ep_comm"]),
              "offload_and_zero3_exposed": t_pipe - m * compute_mb,
              "dp_comm_exposed": tail, "host_step_exposed": host_exposed, "sync": sync,
              "optimizer": opt, "overhead": overhead}
    exposed = phases["comm_in_layers"] + phases["offload_and_zero3_exposed"] + tail + sync
    return {"total": total, "t_pipe": t_pipe, "t_host": t_host, "phases": phases, "exposed": exposed}


def host_arrays(host: dict | None) -> dict:
    """The host step of one configuration in ``layerwise_closed``'s form."""
    if host is None:
        return {"has": False, "nvme": 0.0, "cpu": 0.0, "h2d": 0.0, "chunks": 1.0, "dpu": False, "overlap": False}
    legs = host["legs"]
    return {"has": True, "nvme": legs["nvme_read"] + legs["nvme_write"], "cpu": legs["cpu"],
            "h2d": legs["h2d_params"], "chunks": host["chunks"], "dpu": host["dpu"], "overlap": host["overlap"]}


def _mb_times(step: Step) -> tuple[float, float]:
    """(forward, backward) of one micro-batch on the layerwise path: a flow line of the layers
    through [fetch weights, all-gather, compute, write activations] forward and [fetch weights and
    activations, all-gather + reduce-scatter, compute, gradients out] backward. The LM head's
    forward and backward compute while the last activations are still being written; backward's
    fetches start only then (the last activation written is the first read back)."""
    lw = step.lw
    n = lw["n"]
    fetch, gather, comp = lw["fetch_f"] * n, lw["ag"] * n, lw["f"] * n
    head = lw["head_f"] + (0.0 if step.zo is not None else lw["head_b"])
    fwd = lw["emb_f"] + max(flow_line([fetch, gather, comp, lw["act_w"] * n], n),
                            flow_line([fetch, gather, comp], n) + head)
    if step.zo is not None:
        return fwd, 0.0
    bwd = flow_line([lw["fetch_b"] * n, (lw["ag"] + lw["rs"]) * n, lw["b"] * n], n) + lw["emb_b"]
    return fwd, bwd


def _pipe_layerwise(step: Step, fwd: float, bwd: float, passes: int) -> float:
    """All micro-batches: gradients stream out (device-to-host) on their own copy engine while the next
    micro-batch computes, so only the last micro-batch's unhidden tail, or a copy engine busier
    than the compute, adds to the sum of the passes."""
    lw, n, m = step.lw, step.lw["n"], step.m
    compute = m * (passes * fwd + bwd)
    if step.zo is not None or lw["grad_out"] <= 0:
        return compute
    with_out = flow_line([lw["fetch_b"] * n, (lw["ag"] + lw["rs"]) * n, lw["b"] * n, lw["grad_out"] * n], n) \
        + lw["emb_b"]
    tail = max(0.0, with_out - bwd)
    d2h = m * n * (lw["grad_out"] + lw["act_w"])
    return max(compute + tail, fwd + d2h + lw["emb_b"])


def host_step_time(step: Step) -> float:
    if step.host is None:
        return 0.0
    legs, k = step.host["legs"], step.host["chunks"]
    if step.host["overlap"]:
        k = max(k, step.lw["n"])
    # reads and write-backs share the drives: one stage of the line
    return flow_line([legs["nvme_read"] + legs["nvme_write"], legs["cpu"], legs["h2d_params"]], k)


def _closed_layerwise(step: Step) -> Times:
    lw = step.lw
    fwd, bwd = _mb_times(step)
    passes = 2 if step.zo is not None else 1
    t_pipe = _pipe_layerwise(step, fwd, bwd, passes)
    tail = _dp_tail(step, 0)
    t_host = host_step_time(step)
    t_opt = step.opt[0] + step.param_ag[0]
    if step.zo is not None:
        t_opt += step.zo["perturb_s"]
    if step.host is None:
        t_end = t_pipe + tail + step.sync_s + t_opt
        host_exposed = 0.0
    elif step.host["dpu"]:
        t_end = max(t_pipe + tail, t_host) + step.sync_s + t_opt
        host_exposed = max(0.0, t_host - t_pipe - tail)
    elif step.host["overlap"]:                  # per layer, starting when the first layer's gradients are out
        host_exposed = max(t_host / lw["n"], t_host - (bwd - lw["b"]))
        t_end = t_pipe + max(tail, host_exposed) + step.sync_s + t_opt
    else:
        host_exposed = t_host
        t_end = t_pipe + tail + t_host + step.sync_s + t_opt
    total = t_end + step.overhead_s
    compute_mb = passes * (lw["emb_f"] + lw["head_f"] + lw["n"] * lw["f"]) + (
        0.0 if step.zo is not None else lw["emb_b"] + lw["head_b"] + lw["n"] * lw["b"])
    p = step.parts
    phases = {"forward": step.m * passes * (p["fwd_compute"] + p["emb_f"] + p["head_f"]),
              "backward": 0.0 if step.zo is not None else step.m * (p["bwd_compute"] + p["emb_b"] + p["head_b"]),
              "recompute": 0.0 if step.zo is not None else step.m * p["recompute"],
              "comm_in_layers": step.m * (p["tp_comm"] + p["sp_comm"] + p["ep_comm"]),
              "offload_and_zero3_exposed": t_pipe - step.m * compute_mb,
              "dp_comm_exposed": tail, "host_step_exposed": host_exposed, "sync": step.sync_s,
              "optimizer": t_opt, "overhead": step.overhead_s}
    exposed = phases["comm_in_layers"] + phases["offload_and_zero3_exposed"] + tail + step.sync_s
    return Times(total, phases, exposed, 0.0, "analytical", {"pipeline_s": t_pipe, "host_step_s": t_host})


# ---- task graph for the discrete-event engine ---------------------------------------------------
def build_graph(step: Step) -> tuple[Graph, dict]:
    if step.path == "layerwise":
        return _graph_layerwise(step)
    L = step.L
    g = Graph()
    split = [step.dp_k[i] if (step.dp_overlap and step.dp_k[i] > 1) else 1 for i in range(L.pp)]
    ids = pipeline.build(g, L.schedule, L.pp, step.m, L.v, step.F, step.B, split_last=split)
    pipe_end = [ids[("B", i, step.m - 1, 0)] for i in range(L.pp)]
    pieces = [ids.get(("pieces", i), [pipe_end[i]]) for i in range(L.pp)]
    last_comm = []
    for i in range(L.pp):
        prev = pipe_end[i]
        for q in range(step.dp_k[i]):
            dep = pieces[i][min(q, len(pieces[i]) - 1)] if step.dp_overlap else pipe_end[i]
            prev = g.add(f"dp_reduce{q}", f"gpu{i}/comm", step.dp_c[i], [dep], phase="comm", pid=i)
        last_comm.append(prev)
    ends = []
    for i in range(L.pp):
        sync = g.add("sync", f"gpu{i}/compute", step.sync_s, last_comm, phase="comm", pid=i)
        opt = g.add("optimizer", f"gpu{i}/compute", step.opt[i], [sync], phase="optimizer", pid=i)
        end = opt
        if step.param_ag[i] > 0:
            ag = step.param_ag[i]
            if step.param_ag_overlap:
                ag = max(0.0, ag - step.F[i][0])
            end = g.add("param_all_gather", f"gpu{i}/comm", ag, [opt], phase="comm", pid=i)
        ends.append(g.add("overhead", f"gpu{i}/compute", step.overhead_s, [end], phase="overhead", pid=i))
    return g, {"pipe_end": pipe_end, "ends": ends}


def _graph_layerwise(step: Step) -> tuple[Graph, dict]:
    lw, g = step.lw, Graph()
    n = lw["n"]
    C, H2D, D2H, NET, CPU = "gpu0/compute", "gpu0/h2d", "gpu0/d2h", "gpu0/comm", "host/cpu"
    passes = 2 if step.zo is not None else 1
    prev_end = None
    grads_out = {}
    last_b = None
    for j in range(step.m):
        for ps in range(passes):
            e = g.add("embed", C, lw["emb_f"], [prev_end] if prev_end is not None else [], phase="fwd",
                      meta={"mb": j})
            fl, act_out = [], {}
            for layer in range(n):
                dep = [fl[layer - 2]] if layer >= 2 else []
                fetch = g.add(f"fetch{layer}", H2D, lw["fetch_f"], dep, phase="offload", meta={"mb": j}) \
                    if lw["fetch_f"] > 0 else None
                ag = g.add(f"all_gather{layer}", NET, lw["ag"], [x for x in (fetch,) if x is not None] + dep,
                           resource="gpu0/net", phase="comm", meta={"mb": j}) if lw["ag"] > 0 else None
                f = g.add(f"F{layer}", C, lw["f"], [x for x in (fetch, ag) if x is not None], phase="fwd",
                          meta={"mb": j, "layer": layer})
                if lw["act_w"] > 0:
                    act_out[layer] = g.add(f"act_out{layer}", D2H, lw["act_w"], [f], phase="offload",
                                           meta={"mb": j})
                fl.append(f)
            prev_end = g.add("lm_head", C, lw["head_f"], [], phase="fwd", meta={"mb": j})
        if step.zo is not None:
            continue
        hb = g.add("lm_head_bwd", C, lw["head_b"], [], phase="bwd", meta={"mb": j})
        bl = {}
        for layer in reversed(range(n)):
            dep = [bl[layer + 2]] if layer + 2 < n else []
            fetch = g.add(f"fetch_bwd{layer}", H2D, lw["fetch_b"], dep + [x for x in (act_out.get(layer),) if x is not None],
                          phase="offload", meta={"mb": j}) if lw["fetch_b"] > 0 else None
            ag = g.add(f"all_gather_bwd{layer}", NET, lw["ag"], [x for x in (fetch,) if x is not None] + dep,
                       resource="gpu0/net", phase="comm", meta={"mb": j}) if lw["ag"] > 0 else None
            b = g.add(f"B{layer}", C, lw["b"], [x for x in (fetch, ag, hb) if x is not None], phase="bwd",
                      meta={"mb": j, "layer": layer})
            bl[layer] = b
            out = b
            if lw["rs"] > 0:
                out = g.add(f"reduce_scatter{layer}", "gpu0/comm_rs", lw["rs"], [b], resource="gpu0/net",
                            phase="comm", meta={"mb": j})
            if lw["grad_out"] > 0:
                out = g.add(f"grad_out{layer}", D2H, lw["grad_out"], [out], phase="offload", meta={"mb": j})
            grads_out[layer] = out
        last_b = g.add("embed_bwd", C, lw["emb_b"], [], phase="bwd", meta={"mb": j})
        prev_end = last_b
    tail_dep = [prev_end] + list(grads_out.values())
    for q in range(step.dp_k[0]):
        tail_dep.append(g.add(f"dp_reduce{q}", NET, step.dp_c[0], [prev_end], phase="comm"))
    comm_end = tail_dep
    if step.host is not None:
        legs, k = step.host["legs"], max(1, int(round(step.host["chunks"])))
        if step.host["overlap"]:
            k = max(k, n)                              # Fuyou: the step follows backward layer by layer
        host_tasks = []
        for q in range(k):
            if step.host["dpu"]:
                deps = []                              # updates the previous iteration's gradients
            elif step.host["overlap"]:
                # chunk q holds the layers backward finishes q-th: its lowest layer ends last
                deps = [grads_out[max(0, n - ((q + 1) * n) // k)]] if grads_out else []
            else:
                deps = list(tail_dep)
            r = g.add(f"nvme_read{q}", "host/nvme_read", legs["nvme_read"] / k, deps, resource="nvme",
                      phase="offload", pid=-1) if legs["nvme_read"] > 0 else None
            c = g.add(f"cpu_step{q}", CPU, legs["cpu"] / k, deps + ([r] if r is not None else []),
                      phase="optimizer", pid=-1)
            w = g.add(f"nvme_write{q}", "host/nvme_write", legs["nvme_write"] / k, [c], resource="nvme",
                      phase="offload", pid=-1) if legs["nvme_write"] > 0 else None
            h = g.add(f"params_in{q}", H2D, legs["h2d_params"] / k, [c], phase="offload") \
                if legs["h2d_params"] > 0 else None
            host_tasks.append(h or w or c)
        comm_end = comm_end + host_tasks
    sync = g.add("sync", C, step.sync_s, comm_end, phase="comm")
    opt_s = step.opt[0] + step.param_ag[0] + (step.zo["perturb_s"] if step.zo else 0.0)
    opt = g.add("optimizer", C, opt_s, [sync], phase="optimizer")
    end = g.add("overhead", C, step.overhead_s, [opt], phase="overhead")
    return g, {"ends": [end], "pipe_end": [prev_end]}


def from_timeline(step: Step, g: Graph, tl: Timeline, marks: dict) -> Times:
    total = tl.makespan
    ref = closed_form(step)                       # phase sums are engine-independent; re-read the timing ones
    phases = dict(ref.phases)
    if step.path == "pipeline":
        L = step.L
        t_pipe = max(tl.end[t] for t in marks["pipe_end"])
        busy = max(sum(t.duration for t in g.tasks if t.stream == f"gpu{i}/compute" and t.phase in ("fwd", "bwd"))
                   for i in range(L.pp))
        bubble = 1.0 - busy / t_pipe if t_pipe > 0 else 0.0
        phases["pipeline_bubble"] = t_pipe - busy
        dp_end = max((tl.end[t.id] for t in g.tasks if t.name.startswith("dp_reduce")), default=t_pipe)
        phases["dp_comm_exposed"] = max(0.0, dp_end - t_pipe)
        exposed = phases["comm_in_layers"] + phases["dp_comm_exposed"] + step.sync_s + phases["param_gather_exposed"]
    else:
        t_pipe = tl.end[marks["pipe_end"][0]]
        bubble = 0.0
        compute = sum(t.duration for t in g.tasks if t.stream == "gpu0/compute" and t.phase in ("fwd", "bwd"))
        phases["offload_and_zero3_exposed"] = t_pipe - compute
        exposed = phases["comm_in_layers"] + phases["offload_and_zero3_exposed"] + step.sync_s
    return Times(total, phases, exposed, bubble, "des", {"pipeline_s": t_pipe, "tasks": len(g)})
