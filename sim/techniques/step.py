"""Price the pieces of one training iteration: the primitives both engines run on.

``price_step`` turns (workload, system, model) into a ``Step``: per stage and micro-batch the
forward and backward time of each model chunk (layer ops from ``sim.techniques.layers`` priced
by ``sim.cost``, plus the tensor/sequence/expert-parallel collectives that block the compute
stream, the pipeline send/recv and recomputation), the data-parallel buckets, the optimizer step,
and for ZeRO-3 and offload the per-layer fetch/evict traffic and the host-side step. Nothing here
decides how those overlap: ``sim.techniques.iteration`` does, once in closed form and once as a
task graph for the discrete-event engine.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import ceil

from sim.cost import cost
from sim.cost.efficiency import eff, param
from sim.ops import DTYPE_BYTES, Attention, Collective, Elementwise, Gemm
from sim.techniques import offload as off
from sim.techniques.eager import (EMBEDDING_BWD_FAST_INDICES, MEGATRON_SOFTMAX_MAX_SEQ,  # noqa: F401 (re-exported)
                                   eager_kernels, embedding_kernels, is_flash, megatron_attention_kernels,
                                   megatron_cross_entropy_kernels, weight_tensors)
from sim.techniques.layers import backward_ops, embedding_ops, layer_forward_ops, lm_head_ops
from sim.techniques.memory import (dtype_bytes, layer_activation_bytes, optimizer_bytes_per_param, stage_layers,
                                   stage_params, stage_params_cached)
from sim.techniques.parallel import (Layout, dp_grad_op, dp_param_gather_op, ep_ops, group, group_system, p2p_op,
                                     ring_ops, tp_ops, ulysses_ops)

param("host_dispatch_s", 17.5e-6,
      "CPU time an eager framework spends per GPU kernel or collective it issues (Python module call, "
      "autograd bookkeeping, ATen dispatcher, caching allocator, TorchScript calls, cudaLaunchKernel); a "
      "layer's kernels cannot run faster than the CPU issues them",
      "benchmarks/probe_eager_dispatch.py: a Megatron-style GPT layer's eager forward+backward at tiny sizes "
      "takes ~14.4 us of CPU per kernel as this model counts them (least-disturbed run, this project's CPU, "
      "no CUDA); plus ~3 us for cudaLaunchKernel on a GPU (PyTorch dispatch 5-25 us per op: 'From PyTorch "
      "op to kernel launch', jiahuanglin.xyz GPU-kernel lessons 18)", lo=0.0, hi=1e-4)
param("recompute_host_overhead_s", 4.6e-4,
      "CPU time of activation checkpointing per layer and micro-batch beyond re-issuing the forward's "
      "kernels (autograd function re-entry, RNG state save/restore, detach and re-run bookkeeping)",
      "benchmarks/probe_eager_dispatch.py: reentrant torch.utils.checkpoint around the same layer, "
      "least-disturbed run on this project's CPU (0.46-0.71 ms measured)", lo=0.0, hi=1e-2)
param("train_iteration_overhead_s", 5e-4,
      "fixed per-iteration framework time outside the layers and the optimizer kernels: loss-scale and "
      "grad-norm host synchronisations, LR-scheduler and logging Python",
      "physical reasoning: 2-3 host-device synchronisations (a stream drain plus a device-to-host copy, "
      "~20-50 us each) and ~20-50 framework ops at ~10 us each: 0.3-0.7 ms", lo=0.0, hi=0.1)
param("train_microbatch_overhead_s", 3e-4,
      "fixed per-micro-batch framework time: data-loader next(), broadcast of the batch to the TP "
      "ranks, mask/position preprocessing, loss bookkeeping",
      "physical reasoning: Megatron get_batch broadcasts tokens, labels, masks (3-4 small collectives "
      "~20-40 us each) plus ~20 small ops at ~10 us", lo=0.0, hi=0.01)
param("dp_bucket_params", 4e7,
      "gradient elements per data-parallel bucket when the reduction overlaps backward (the floor; larger "
      "groups take dp_bucket_params_per_rank x ranks)",
      "Megatron-Core DistributedDataParallel default bucket_size = max(40M, 1M x dp) parameters "
      "(megatron/core/distributed/distributed_data_parallel.py)", lo=1e5, hi=1e10)
param("dp_bucket_params_per_rank", 1e6,
      "gradient elements per data-parallel bucket per rank of the group: large groups take larger buckets "
      "so that each ring step's chunk stays bandwidth-bound",
      "Megatron-Core DistributedDataParallel default bucket_size = max(40M, 1M x dp) parameters; its "
      "comment: larger DP sizes need larger buckets for NCCL ring chunks to stay bandwidth- rather than "
      "latency-bound (megatron/core/distributed/distributed_data_parallel.py)", lo=0.0, hi=1e9)

# ---- pricing with a cache: sweeps price the same op shapes over and over --------------------------
_CACHE: dict = {}
_FP: dict = {}             # id(spec) -> (spec, fingerprint): specs are rebuilt per scenario, content decides
_STAGE_CACHE: dict = {}    # data-parallel and optimizer costs of a stage kind
_LAYER_CACHE: dict = {}    # one layer and the embedding/head of a (model, system, shape): shared by configs


def _fingerprint(spec) -> str:
    hit = _FP.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    if len(_FP) > 2000:
        _FP.clear()
    fp = spec.model_dump_json()
    _FP[id(spec)] = (spec, fp)
    return fp


_SYSKEY: dict = {}


def system_key(system) -> tuple:
    hit = _SYSKEY.get(id(system))
    if hit is not None and hit[0] is system:
        return hit[1]
    if len(_SYSKEY) > 20_000:
        _SYSKEY.clear()
    key = (_fingerprint(system.device), _fingerprint(system.host), system.cluster)
    _SYSKEY[id(system)] = (system, key)
    return key


def price(op, system):
    """``sim.cost.cost`` with memoisation on (system content, op)."""
    key = (system_key(system), op)
    c = _CACHE.get(key)
    if c is None:
        if len(_CACHE) > 500_000:
            _CACHE.clear()
        c = _CACHE[key] = cost(op, system)
    return c


@dataclass
class Step:
    L: Layout
    m: int
    b: int
    s: int
    layers: list[int]
    path: str                                   # 'pipeline' | 'layerwise'
    F: list[list[float]]                        # [stage][chunk] forward of one micro-batch (s)
    B: list[list[float]]                        # [stage][chunk] backward incl. recompute (s)
    parts: dict                                 # per micro-batch, per stage (mean): what F and B hold
    dp_k: list[int]                             # DP buckets per stage after the last backward
    dp_c: list[float]                           # seconds per bucket
    dp_overlap: bool
    dp_every_microbatch: bool
    sync_s: float                               # global small collectives before the step
    opt: list[float]                            # GPU optimizer step per stage
    param_ag: list[float]                       # ZeRO-1/2 parameter all-gather after the step
    param_ag_overlap: bool
    overhead_s: float
    flops: dict
    bounds: dict = field(default_factory=dict)  # compute time by bounding resource (forward+backward ops)
    lw: dict | None = None                      # layerwise path: per-layer times
    host: dict | None = None                    # host-side optimizer step
    zo: dict | None = None                      # MeZO step


def _sum(ops, system, bounds=None, weight=1.0) -> float:
    t = 0.0
    for op in ops:
        c = price(op, system)
        t += c.time_s
        if bounds is not None:
            bounds[c.bound] = bounds.get(c.bound, 0.0) + c.time_s * weight
    return t


def _dispatch_floor(t_gpu: float, n_ops: int, system) -> float:
    """A stream of n eager ops cannot finish before the CPU has issued them."""
    return max(t_gpu, n_ops * eff(system.device, "host_dispatch_s"))


def compute_dtype(precision: str) -> tuple[str, str]:
    """(GEMM dtype, dtype of everything else)."""
    return {"fp32": ("fp32", "fp32"), "tf32": ("tf32", "fp32"), "fp16": ("fp16", "fp16"),
            "bf16": ("bf16", "bf16"), "fp8": ("fp8", "bf16")}[precision]


def _retype(ops, gemm_dtype):
    return [replace(o, dtype=gemm_dtype) if isinstance(o, Gemm) and o.dtype != gemm_dtype else o for o in ops]


def _dropout_ops(att, att_scale: float, tokens: float, h: int, B: float, flash: bool) -> tuple[list, list]:
    """(forward, backward) extra kernels of dropout p > 0 in a GPT-style layer (Megatron-LM):
    with naive attention the probabilities get a dropout pass (read P, write P' and a 1-byte mask;
    backward reads dP' and the mask, writes dP); FlashAttention drops inside its kernel. The two
    hidden-state dropouts are fused with the bias add and residual, so they only add a mask each."""
    fwd, bwd = [], []
    if not flash:
        n = att.batch * att.heads * att.seq_q * att.seq_kv * att_scale
        fwd.append(Elementwise(bytes_read=n * B, bytes_written=n * (B + 1), flops=2 * n, name="attn_dropout"))
        bwd.append(Elementwise(bytes_read=n * (B + 1), bytes_written=n * B, flops=n, name="attn_dropout_bwd"))
    mask = tokens * h
    fwd.append(Elementwise(bytes_read=0.0, bytes_written=2 * mask, flops=2 * mask, name="hidden_dropout_masks"))
    bwd.append(Elementwise(bytes_read=2 * mask, bytes_written=0.0, flops=2 * mask, name="hidden_dropout_masks_bwd"))
    return fwd, bwd


def grad_accumulation_op(n_params: float, wl) -> Elementwise:
    """Each micro-batch's weight gradients are added into the fp32 accumulation buffer (Megatron-LM's
    ``main_grad``; fused into the wgrad GEMM's epilogue by Megatron-Core, which moves the same bytes):
    read the new 16-bit gradient and the fp32 sum, write the sum."""
    g_B = 4.0 if wl.precision in ("fp32", "tf32") else 2.0
    return Elementwise(bytes_read=n_params * (g_B + 4.0), bytes_written=n_params * 4.0, flops=n_params,
                       name="grad_accumulate")


def _layer(model, wl, L: Layout, system, bounds) -> dict:
    """Forward / backward / recompute / communication of one layer for one micro-batch on one GPU."""
    b, s = wl.micro_batch, wl.seq_len
    g_dt, a_dt = compute_dtype(wl.precision)
    B = DTYPE_BYTES[a_dt]
    s_loc = s // L.sp
    flash = is_flash(wl.attn_impl)
    megatron = wl.attn_impl == "megatron"
    fwd = _retype(layer_forward_ops(model, b, s_loc, s_loc, tp=L.tp, dtype=a_dt,
                                    attn_impl="naive" if megatron else wl.attn_impl,
                                    causal=True, sp=L.sequence_parallel, ep=L.ep), g_dt)
    att = next(o for o in fwd if isinstance(o, Attention))
    others = [o for o in fwd if o is not att]
    # attention over the whole sequence: Ulysses gives each GPU heads/sp, ring attention 1/sp of the blocks
    if L.sp > 1 and L.sp_mode == "ulysses":
        att = replace(att, heads=att.heads // L.sp, kv_heads=max(1, att.kv_heads // L.sp), seq_q=s, seq_kv=s)
        att_scale = 1.0
    elif L.sp > 1:
        att, att_scale = replace(att, seq_q=s, seq_kv=s), 1.0 / L.sp
    else:
        att_scale = 1.0
    if megatron:
        k_f, k_b = megatron_attention_kernels(att)
        k_f, k_b = _retype(k_f, g_dt), _retype(k_b, g_dt)
        t_att_f = _sum(k_f, system, bounds, att_scale) * att_scale
        t_att_b = _sum(k_b, system, bounds, att_scale) * att_scale
        att_kernels = (len(k_f), len(k_b))
    else:
        att_b = replace(att, pass_="bwd", name="attn_bwd")
        c_att_f, c_att_b = price(att, system), price(att_b, system)
        t_att_f, t_att_b = c_att_f.time_s * att_scale, c_att_b.time_s * att_scale
        bounds[c_att_f.bound] = bounds.get(c_att_f.bound, 0.0) + t_att_f
        bounds[c_att_b.bound] = bounds.get(c_att_b.bound, 0.0) + t_att_b
        att_kernels = (1, 3) if flash else None
    drop_f, drop_b = _dropout_ops(att, att_scale, b * s_loc / (L.tp if L.sequence_parallel else 1),
                                  model.hidden, B, flash) if wl.dropout > 0 else ([], [])
    t_f = _sum(others + drop_f, system, bounds) + t_att_f
    acc = [grad_accumulation_op(model.params_per_layer() / L.tp, wl)] if wl.optimizer != "zo" else []
    t_b = _sum(_retype(backward_ops(others), g_dt) + drop_b + acc, system, bounds) + t_att_b

    act = b * s_loc * model.hidden * B                       # one activation tensor of a TP rank
    tp_c = _sum(tp_ops(L, act), group(system, L, "tp")[1])
    tp_f = tp_b = tp_c
    if wl.parallel.tp_comm_overlap:     # collectives split in chunks and overlapped with the adjacent GEMMs
        g_f = sum(price(o, system).time_s for o in others if isinstance(o, Gemm))
        tp_f = max(0.0, tp_c - g_f)
        tp_b = max(0.0, tp_c - 2 * g_f)
    q_w = model.heads // L.tp * model.d_head
    kv_w = max(1, model.n_kv_heads // L.tp) * model.d_head
    sp_sys = group(system, L, "sp")[1]
    if L.sp_mode == "ring":
        ring = _sum(ring_ops(L, b, s, kv_w, B), sp_sys)
        sp_f, sp_b = max(0.0, ring - t_att_f), max(0.0, ring - t_att_b)   # overlapped with block compute
    else:
        sp_f = sp_b = _sum(ulysses_ops(L, b, s, q_w, kv_w, B), sp_sys)
    ep_c = _sum(ep_ops(L, b * s_loc / (L.tp if L.sequence_parallel else 1), model.top_k, model.hidden, B),
                group(system, L, "ep")[1]) if model.is_moe else 0.0
    n_comm = len(tp_ops(L, act)) + (4 if L.sp > 1 else 0) + (2 if L.ep > 1 else 0)
    n_f, n_b = eager_kernels(fwd, len(drop_f), not flash, True, model, att_kernels)
    d = eff(system.device, "host_dispatch_s")
    gpu_f, gpu_b = t_f + tp_f + sp_f + ep_c, t_b + tp_b + sp_b + ep_c
    host_f, host_b = (n_f + n_comm) * d, (n_b + n_comm) * d
    gpu_rec, host_rec = 0.0, 0.0
    if wl.recompute == "full":                 # the layer's forward again, inside the checkpoint machinery
        gpu_rec, host_rec = gpu_f, host_f + eff(system.device, "recompute_host_overhead_s")
    elif wl.recompute == "selective" and not flash:
        n_core = att_kernels[0] if att_kernels else 4
        gpu_rec, host_rec = t_att_f, n_core * d + eff(system.device, "recompute_host_overhead_s")
    # the GPU runs a layer's kernels no faster than the CPU issues them
    f_total = max(gpu_f, host_f)
    b_total = max(gpu_rec + gpu_b, host_rec + host_b)
    stored, working = layer_activation_bytes(model, b, s, L, wl.recompute, flash, dtype_bytes(wl.precision))
    return {"f": f_total, "b": b_total, "fwd_compute": t_f, "bwd_compute": t_b, "recompute": gpu_rec,
            "tp_comm": (tp_f + tp_b) / 2, "sp_comm": sp_f + sp_b, "ep_comm": ep_c, "act_bytes": stored,
            "act_working": working, "host_bound_s": (f_total - gpu_f) + (b_total - gpu_rec - gpu_b),
            "kernels": (n_f, n_b)}


def _ends(model, wl, L: Layout, system, bounds) -> dict:
    """Embedding (first stage) and LM head + loss (last stage) for one micro-batch."""
    g_dt, a_dt = compute_dtype(wl.precision)
    B = DTYPE_BYTES[a_dt]
    tokens = wl.micro_batch * wl.seq_len // L.sp
    emb = embedding_ops(model, tokens, L.tp, a_dt)
    head = _retype(lm_head_ops(model, tokens, L.tp, a_dt, loss=wl.optimizer != "zo"), g_dt)
    if wl.optimizer != "zo" and wl.cross_entropy == "megatron":      # the unfused fp32 kernels instead of one pass
        lm = next(o for o in head if isinstance(o, Gemm))
        ce_f, ce_b = megatron_cross_entropy_kernels(tokens, lm.n, B)
        pre = head[:-1]
        head_f_ops, head_b_ops = pre + ce_f, ce_b + _retype(backward_ops(pre), g_dt)
    else:
        head_f_ops, head_b_ops = head, _retype(backward_ops(head), g_dt)
    tp_sys = group(system, L, "tp")[1]
    ar = [Collective("all_reduce", tokens * model.hidden * B, L.tp)] if L.tp > 1 else []
    ce = [Collective("all_reduce", tokens * 4, L.tp)] * 3 if L.tp > 1 else []   # max, sum-exp, target logit
    k_ef, k_eb = embedding_kernels(model, L.tp, tokens, wl.dropout)
    emb_f = _dispatch_floor(_sum(emb, system, bounds) + _sum(ar, tp_sys), k_ef + len(ar), system)
    acc_e = [grad_accumulation_op(model.embedding_params() / L.tp, wl)] if wl.optimizer != "zo" else []
    acc_h = [grad_accumulation_op((model.output_params() or model.vocab * model.hidden) / L.tp, wl)] \
        if wl.optimizer != "zo" else []
    emb_b = _dispatch_floor(_sum(backward_ops(emb) + acc_e, system, bounds), k_eb, system)
    head_f = _dispatch_floor(_sum(head_f_ops, system, bounds) + _sum(ce, tp_sys), len(head_f_ops) + len(ce), system)
    head_b = _dispatch_floor(_sum(head_b_ops + acc_h, system, bounds) + _sum(ar, tp_sys),
                             len(head_b_ops) + len(ar) + 1, system)
    return {"emb_f": emb_f, "emb_b": emb_b, "head_f": head_f, "head_b": head_b}


def _optimizer_gpu(n: float, wl, system) -> float:
    """Fused optimizer over this GPU's partition of n parameters, plus the grad-norm pass."""
    if n <= 0 or wl.optimizer == "zo":
        return 0.0
    w_B = 4.0 if wl.precision in ("fp32", "tf32") else 2.0
    g_B = grad_bytes(wl)
    st = optimizer_bytes_per_param(wl.optimizer, wl.precision)
    flops = off.ADAM_FLOPS_PER_PARAM if wl.optimizer == "adam" else off.SGD_FLOPS_PER_PARAM
    upd = Elementwise(bytes_read=n * (st + g_B), bytes_written=n * (st + w_B), flops=flops * n, name="optimizer")
    norm = Elementwise(bytes_read=n * g_B, bytes_written=0.0, flops=2 * n, name="grad_norm")
    return price(upd, system).time_s + price(norm, system).time_s


def layout_of(wl) -> Layout:
    P = wl.parallel
    return Layout(tp=P.tp, pp=P.pp, dp=P.dp, sp=P.sp, sp_mode=P.sp_mode, sequence_parallel=P.sequence_parallel,
                  ep=P.ep, zero=P.zero, schedule=P.schedule, v=P.virtual_stages if P.schedule == "interleaved" else 1)


def layer_terms(wl, system, model, L: Layout) -> tuple[dict, dict, tuple[dict, dict]]:
    """One layer's and the two ends' costs for one micro-batch (``_layer``, ``_ends``) and their compute
    time by bounding resource. They depend only on what shapes the layer's ops (micro-batch, sequence,
    dtype, kernels, recompute, tp/sp/ep split), not on pp, dp or ZeRO: cached on exactly those, so a
    sweep prices each distinct layer once."""
    key = (system_key(system), model, wl.micro_batch, wl.seq_len, wl.precision, wl.attn_impl, wl.dropout, wl.recompute,
           wl.cross_entropy, wl.optimizer, L.tp, L.sp, L.sp_mode, L.sequence_parallel, L.ep,
           wl.parallel.tp_comm_overlap)
    hit = _LAYER_CACHE.get(key)
    if hit is None:
        if len(_LAYER_CACHE) > 50_000:
            _LAYER_CACHE.clear()
        lb: dict = {}
        eb: dict = {}
        hit = _LAYER_CACHE[key] = (_layer(model, wl, L, system, lb), _ends(model, wl, L, system, eb), (lb, eb))
    return hit


def compute_bounds(lb: dict, eb: dict, layers: int, pp: int) -> dict:
    """Compute time per micro-batch by bounding resource, averaged over stages: one layer's ops x
    layers/pp, plus the embedding and the head once per pipeline."""
    bounds = {k: v * layers / pp for k, v in lb.items()}
    for k, v in eb.items():
        bounds[k] = bounds.get(k, 0.0) + v / pp
    return bounds


def p2p_time(wl, system, model, L: Layout) -> float:
    """One pipeline send/recv of a micro-batch's boundary activation (0 without pipelining)."""
    if L.pp == 1:
        return 0.0
    return price(p2p_op(L, wl.micro_batch * wl.seq_len // L.sp * model.hidden * dtype_bytes(wl.precision)),
                 group(system, L, "pp")[1]).time_s


def weight_bytes(precision: str) -> float:
    """Bytes of a weight (and of its gradient) as the optimizer and the collectives move it."""
    return 4.0 if precision in ("fp32", "tf32") else 2.0


def grad_bytes(wl) -> float:
    """Bytes of a gradient as the data-parallel reduction and the optimizer see it: the weight's width, or
    4 when a 16-bit run accumulates and reduces gradients in fp32 (``parallel.grad_reduce_in_fp32``:
    Megatron-LM's accumulate_allreduce_grads_in_fp32, forced for bf16 by megatron/training/arguments.py);
    0 for zeroth-order training, which has no gradients."""
    if wl.optimizer == "zo":
        return 0.0
    return 4.0 if getattr(wl.parallel, "grad_reduce_in_fp32", False) else weight_bytes(wl.precision)


def dp_bucket(system, shard: int) -> float:
    """Gradient elements per overlapped data-parallel bucket: max(floor, per-rank x ranks) (Megatron-Core)."""
    return max(eff(system.device, "dp_bucket_params"), eff(system.device, "dp_bucket_params_per_rank") * shard)


def stage_terms(wl, system, model, L: Layout) -> list[tuple]:
    """Per pipeline stage: (data-parallel buckets after the last backward, seconds per bucket, GPU
    optimizer step, ZeRO-1/2 parameter all-gather, this GPU's ZeRO partition of parameters).
    Stages with the same layer count and role price the same; cached across configurations."""
    P, O = wl.parallel, wl.offload
    w_B = weight_bytes(wl.precision)
    g_B = grad_bytes(wl)
    dp_sys = group(system, L, "dp")[1]
    bucket = dp_bucket(system, L.shard)
    layers = stage_layers(model.layers, L.pp)
    per_type: dict = {}
    dp_key = (system_key(system), model, L.tp, L.ep, L.pp, L.dp, L.sp, L.zero, P.overlap_grad_reduce, wl.optimizer,
              wl.precision, O.optimizer, g_B)
    if len(_STAGE_CACHE) > 100_000:
        _STAGE_CACHE.clear()
    out = []
    for i in range(L.pp):
        kind = (layers[i], i == 0, i == L.pp - 1)
        if kind not in per_type:
            ckey = (dp_key, kind)
            if ckey in _STAGE_CACHE:
                per_type[kind] = _STAGE_CACHE[ckey]
        if kind not in per_type:
            nd, ne = stage_params_cached(model, L.tp, L.ep, L.pp, i, layers[i])
            n = nd + ne
            n_local = nd / L.shard + ne / max(1, L.shard // L.ep)
            if L.shard > 1 and g_B > 0 and L.zero < 3:
                k = max(1, ceil(n / bucket)) if P.overlap_grad_reduce else 1
                dk, dc = k, price(dp_grad_op(L, n * g_B / k), dp_sys).time_s
            else:
                dk, dc = 0, 0.0
            shard_opt = n_local if L.zero >= 1 else n
            o = 0.0 if O.optimizer != "none" else _optimizer_gpu(shard_opt, wl, system)
            a = price(dp_param_gather_op(L, n * w_B), dp_sys).time_s \
                if (L.zero in (1, 2) and L.shard > 1 and O.optimizer == "none") else 0.0
            per_type[kind] = _STAGE_CACHE[(dp_key, kind)] = (dk, dc, o, a, n_local)
        out.append(per_type[kind])
    return out


def sync_time(wl, system, model, L: Layout) -> float:
    """Small global collectives before the step: grad-norm and inf check over the model-parallel group,
    tied embedding gradients between the first and last stage."""
    sync = 0.0
    if wl.optimizer != "zo":
        g_B = weight_bytes(wl.precision)
        mp = L.tp * L.pp
        if mp > 1:
            sync += 2 * price(Collective("all_reduce", 4.0, mp), group_system(system, mp, 1)).time_s
        if model.tied_embeddings and L.pp > 1:
            sync += price(Collective("all_reduce", model.vocab * model.hidden / L.tp * g_B, 2),
                          group(system, L, "pp")[1]).time_s
    return sync


def model_flops(wl, model) -> dict:
    """Model FLOPs (what MFU counts: no recomputation) and hardware FLOPs (with it) of one iteration."""
    tokens = wl.global_batch * wl.seq_len
    if wl.optimizer == "zo":
        f = 2 * tokens * model.flops_per_token(wl.seq_len, causal=False)
        return {"model": f, "hardware": f}
    return {"model": tokens * model.training_flops_per_token(wl.seq_len, causal=False, recompute="none"),
            "hardware": tokens * model.training_flops_per_token(wl.seq_len, causal=False, recompute=wl.recompute)}


def is_layerwise(wl) -> bool:
    """ZeRO-3, any offload and MeZO run the layer-by-layer path (one pipeline stage)."""
    O = wl.offload
    return (wl.parallel.zero == 3 or O.params != "none" or O.optimizer != "none" or O.activations != "none"
            or wl.optimizer == "zo")


def layerwise_terms(wl, system, model, L: Layout, act_bytes: float, n_local_max: float) -> tuple[dict, dict | None,
                                                                                                  dict | None]:
    """Per-layer traffic of the layerwise path (weights from host/NVMe, ZeRO-3 all-gather and
    reduce-scatter, activations out and back, gradients to the host), the host optimizer step's legs
    and MeZO's perturbation passes: (legs, host, zo)."""
    O = wl.offload
    w_B = weight_bytes(wl.precision)
    g_B = grad_bytes(wl)
    dp_sys = group(system, L, "dp")[1]
    gpn = min(system.cluster.gpus_per_node, L.gpus)
    pr = (lambda op: price(op, system))
    lp = model.params_per_layer() / L.tp                   # one layer's parameters on this TP rank
    fetch_B = lp / L.shard * w_B if (O.params != "none") else 0.0
    ag = price(Collective("all_gather", lp * w_B, L.shard), dp_sys).time_s if (
        L.zero == 3 and L.shard > 1) else 0.0
    rs = price(Collective("reduce_scatter", lp * g_B, L.shard), dp_sys).time_s if (
        L.zero >= 2 and L.shard > 1 and g_B > 0) else 0.0
    act_B = act_bytes if O.activations != "none" else 0.0
    grad_out_B = lp / L.shard * g_B if O.optimizer != "none" else 0.0
    legs = {"fetch_f": off.to_gpu(O.params, fetch_B, gpn, pr),
            "fetch_b": off.to_gpu(O.params, fetch_B, gpn, pr) + off.to_gpu(O.activations, act_B, gpn, pr),
            "ag": ag, "rs": rs, "act_w": off.from_gpu(O.activations, act_B, gpn, pr),
            "grad_out": off.from_gpu("cpu" if O.optimizer != "none" else "none", grad_out_B, gpn, pr)}
    host = zo = None
    if O.optimizer != "none":
        steps = off.host_step_legs(n_local_max, wl.optimizer, O.optimizer, O.params, w_B,
                                   optimizer_bytes_per_param(wl.optimizer, wl.precision), gpn, pr)
        chunks = max(1.0, n_local_max / eff(system.device, "zero_sub_group_params"))
        host = {"legs": steps, "chunks": chunks, "dpu": O.delayed_param_update, "overlap": O.overlap_optimizer_step}
    if wl.optimizer == "zo":
        n = sum(stage_params(model, L, 0, model.layers))
        perturb = Elementwise(bytes_read=n * w_B, bytes_written=n * w_B, flops=10 * n, name="zo_perturb")
        zo = {"perturb_s": 4 * price(perturb, system).time_s}
    return legs, host, zo


def price_step(wl, system, model) -> Step:
    P = wl.parallel
    L = layout_of(wl)
    m = wl.global_batch // (wl.micro_batch * L.dp)
    ly, ends, (lb, eb) = layer_terms(wl, system, model, L)
    bounds = compute_bounds(lb, eb, model.layers, L.pp)
    layers = stage_layers(model.layers, L.pp)
    t_p2p = p2p_time(wl, system, model, L)
    mb_over = eff(system.device, "train_microbatch_overhead_s")
    F, Bw = [], []
    for i in range(L.pp):
        per_chunk = layers[i] / L.v
        fi = [per_chunk * ly["f"] + t_p2p] * L.v
        bi = [per_chunk * ly["b"] + t_p2p] * L.v
        if i == 0:
            fi[0] += ends["emb_f"] + mb_over
            bi[0] += ends["emb_b"]
        if i == L.pp - 1:
            fi[-1] += ends["head_f"]
            bi[-1] += ends["head_b"]
        F.append(fi)
        Bw.append(bi)
    mean_layers = model.layers / L.pp
    parts = {"fwd_compute": mean_layers * ly["fwd_compute"], "bwd_compute": mean_layers * ly["bwd_compute"],
             "recompute": mean_layers * ly["recompute"], "tp_comm": 2 * mean_layers * ly["tp_comm"],
             "sp_comm": mean_layers * ly["sp_comm"], "ep_comm": 2 * mean_layers * ly["ep_comm"],
             "p2p": 2 * L.v * t_p2p if L.pp > 1 else 0.0, "host_bound_s": mean_layers * ly["host_bound_s"],
             **{k: v / L.pp for k, v in ends.items()}}

    st = stage_terms(wl, system, model, L)
    dp_k, dp_c, opt, pag, n_local = (list(x) for x in zip(*st))
    n_local_max = max(n_local)
    step = Step(L, m, wl.micro_batch, wl.seq_len, layers, "pipeline", F, Bw, parts, dp_k, dp_c,
                P.overlap_grad_reduce, L.zero >= 2, sync_time(wl, system, model, L), opt, pag, P.overlap_param_gather,
                eff(system.device, "train_iteration_overhead_s"), model_flops(wl, model), bounds)
    step.parts["layer_f"], step.parts["layer_b"] = ly["f"], ly["b"]

    if is_layerwise(wl):
        step.path = "layerwise"
        legs, step.host, step.zo = layerwise_terms(wl, system, model, L, ly["act_bytes"], n_local_max)
        step.lw = {"n": model.layers, "f": ly["f"], "b": ly["b"], **legs, **ends}
        if L.zero >= 2:                                  # reduce-scattered layer by layer instead
            step.dp_k, step.dp_c = [0] * L.pp, [0.0] * L.pp
        if L.zero == 3:
            step.param_ag = [0.0] * L.pp
    return step
