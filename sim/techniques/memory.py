"""Training memory per GPU and per tier (HBM, host DRAM, NVMe): does a configuration fit?

Model states (Rajbhandari et al. 2020, ZeRO section 3): with mixed precision and Adam each
parameter costs 2 B of fp16/bf16 weights, 2 B of gradients and 12 B of optimizer state (fp32
master copy, momentum, variance): 16 B. ZeRO-1 divides the optimizer state over the data-
parallel ranks, ZeRO-2 the gradients too, ZeRO-3 the weights too. Offload moves the optimizer
state (and its fp32 gradient copy) or the weights to host DRAM or NVMe.

Activations (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models", section 4): per layer and micro-batch, with s tokens, b sequences, h hidden, a heads,
2-byte activations and 1-byte dropout masks, sbh(34 + 5as/h) bytes; the 10sbh of layer-norm
inputs, masks and the inputs of the first GEMMs stay whole on every TP rank unless sequence
parallelism splits them (sbh(10 + 24/t + 5as/(ht)) vs sbh(34 + 5as/h)/t). Selective recompute
(and FlashAttention, which never stores the s x s scores) drops the 5as^2b term; full recompute
keeps only each layer's input (2sbh, /t with SP) plus one layer's activations while it is
recomputed. The widths generalise the paper's GPT counts to GQA, gated MLPs and MoE (top_k
copies of the MLP activations). Pipeline stage i holds the activations of the micro-batches in
flight: min(p-i, m) for 1F1B, m for GPipe, Megatron's warm-up count for interleaved (stage 0:
p micro-batches x (1 + (p-1)/(pv)) of its layers, Narayanan et al. 2021 section 2.2.2).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from sim.cost.efficiency import eff, param
from sim.models import ModelSpec
from sim.techniques.parallel import Layout

param("mem_framework_reserved_bytes", 1.5e9,
      "HBM a training process holds outside tensors: CUDA context and loaded kernel modules, cuBLAS "
      "workspaces, NCCL communicator buffers",
      "physical reasoning: a PyTorch CUDA context takes ~0.3-0.6 GB; NCCL allocates NCCL_BUFFSIZE (4 MiB) "
      "per channel and peer for each communicator (TP, DP, PP groups), ~0.2-1 GB; cuBLAS workspaces "
      "tens of MB (NCCL env docs, PyTorch CUDA semantics notes)", lo=0.0, hi=8e9)
param("mem_fragmentation", 0.10,
      "share of allocated tensor bytes the caching allocator additionally reserves (fragmentation)",
      "PyTorch CUDA caching-allocator reserved vs allocated gap is typically 5-15% in large-model "
      "training; ZeRO (Rajbhandari et al. 2020, section 3.2 'memory fragmentation') reports OOM with "
      "over 30% free in extreme cases", lo=0.0, hi=0.5)
param("offload_grad_bucket_params", 5e8,
      "gradient elements per bucket streamed to the host under optimizer offload (two buckets live)",
      "DeepSpeed ZeRO config default reduce_bucket_size = 5e8", lo=1e6, hi=1e10)
param("zero_sub_group_params", 1e9,
      "parameters whose fp32 optimizer state is staged in host memory at once when it lives on NVMe",
      "DeepSpeed ZeRO-Infinity config default sub_group_size = 1e9", lo=1e6, hi=1e11)
param("zero3_max_live_params", 1e9,
      "parameters ZeRO-3 keeps gathered on a GPU at once (the layer in use plus prefetched ones); ZeRO-Infinity's "
      "memory-centric tiling splits a larger layer so this bound holds",
      "DeepSpeed ZeRO config default stage3_max_live_parameters = 1e9; Rajbhandari et al. 2021 (ZeRO-Infinity) "
      "section 5.1.3 memory-centric tiling", lo=1e6, hi=1e11)
param("nvme_param_buffer_bytes", 5 * 1e8 * 2,
      "pinned host buffer per GPU for parameters swapped from NVMe",
      "DeepSpeed offload_param defaults: buffer_count 5 x buffer_size 1e8 elements of fp16", lo=0.0, hi=1e11)

MASK_BYTES = 1          # a dropout mask element (Korthikanti et al. 2022)


def dtype_bytes(precision: str) -> float:
    return {"fp32": 4.0, "tf32": 4.0}.get(precision, 2.0)   # fp16/bf16/fp8 runs keep 16-bit activations


def layer_activation_bytes(model: ModelSpec, b: int, s: int, L: Layout, recompute: str,
                           flash: bool, B: float = 2.0) -> tuple[float, float]:
    """(bytes stored per layer per micro-batch, bytes of one layer's full working set) on one GPU."""
    t = L.tp
    tokens = b * s / L.sp
    h, a = model.hidden, model.heads
    q_w, kv_w = model.d_attn, model.d_kv
    moe = model.top_k if model.is_moe else 1
    f_in = model.ffn * (2 if model.gated_mlp else 1)
    rep = tokens * h * (4 * B + 2 * MASK_BYTES)                      # 2 norm inputs, QKV & MLP-up inputs, 2 masks
    shard = tokens * B * (2 * q_w + 2 * kv_w + moe * (f_in + model.ffn))
    core = b * a * s * s / L.sp * (2 * B + MASK_BYTES)              # softmax out, dropout mask, dropout out
    if flash:
        core = b * a * s / L.sp * 4.0                               # fp32 log-sum-exp per query row
    rep_split = t if L.sequence_parallel else 1
    full = rep / rep_split + (shard + core) / t
    if recompute == "none":
        return full, full
    if recompute == "selective":
        return rep / rep_split + shard / t + (core / t if flash else 0.0), full
    if recompute == "full":
        return tokens * h * B / rep_split, full
    raise ValueError(f"unknown recompute {recompute!r}")


def in_flight(L: Layout, m: int, stage: int) -> float:
    """Micro-batches whose activations stage ``stage`` holds at its peak, in units of its layers."""
    p, v = L.pp, L.v
    if p == 1:
        return 1.0
    if L.schedule == "gpipe":
        return float(m)
    if v == 1:
        return float(min(p - stage, m))
    chunks = m * v if m == p else min((p - stage - 1) * 2 + (v - 1) * p + 1, m * v)
    return chunks / v


def stage_layers(layers: int, pp: int) -> list[int]:
    """Layers per stage: equal shares, the remainder on the middle stages (first/last also hold the
    embedding and the LM head)."""
    base, extra = divmod(layers, pp)
    out = [base] * pp
    order = list(range(1, pp - 1)) + [0, pp - 1] if pp > 2 else list(range(pp))
    for k in range(extra):
        out[order[k % len(order)]] += 1
    return out


def stage_params(model: ModelSpec, L: Layout, stage: int, n_layers: int) -> tuple[float, float]:
    """(dense, expert) parameters one GPU of ``stage`` holds (TP- and EP-sharded)."""
    expert = model.experts * model.expert_matmul_params() if model.is_moe else 0
    dense_layer = model.params_per_layer() - expert
    dense = n_layers * dense_layer / L.tp
    if stage == 0:
        dense += model.embedding_params() / L.tp
    if stage == L.pp - 1:
        dense += (model.output_params() + model.final_norm_params()) / L.tp
        if model.tied_embeddings and L.pp > 1:
            dense += model.vocab * model.hidden / L.tp      # Megatron keeps a copy for the tied head
    return dense, n_layers * expert / (L.tp * L.ep)


@lru_cache(maxsize=65536)
def stage_params_cached(model: ModelSpec, tp: int, ep: int, pp: int, stage: int, n_layers: int) -> tuple[float, float]:
    return stage_params(model, Layout(tp=tp, pp=pp, ep=ep), stage, n_layers)


@dataclass
class Memory:
    hbm: float                    # bytes per GPU at the worst stage's peak
    host: float                   # bytes per node
    nvme: float                   # bytes per node
    fits: bool
    breakdown: dict = field(default_factory=dict)

    def as_tiers(self) -> dict:
        return {"hbm": self.hbm, "host": self.host, "nvme": self.nvme}


def optimizer_bytes_per_param(optimizer: str, precision: str) -> float:
    mixed = precision not in ("fp32", "tf32")
    return {"adam": 12.0 if mixed else 8.0, "sgd": 8.0 if mixed else 4.0, "zo": 0.0}[optimizer]


def in_flight_arr(pp, m, v, gpipe, stage):
    """``in_flight`` over arrays (every argument broadcast against the others)."""
    pp, m, v, stage = (np.asarray(x, dtype=float) for x in (pp, m, v, stage))
    chunks = np.where(m == pp, m * v, np.minimum((pp - stage - 1) * 2 + (v - 1) * pp + 1, m * v))
    return np.where(pp == 1, 1.0, np.where(gpipe, m, np.where(v == 1, np.minimum(pp - stage, m), chunks / v)))


@lru_cache(maxsize=4096)
def stage_runs(layers: int, pp: int) -> tuple[tuple[int, int, int, bool, bool], ...]:
    """Consecutive stages with the same layer count and role, as (first stage, stages, layers each,
    holds the embedding, holds the head): at most four (first, middle with an extra layer, middle, last)."""
    runs: list = []
    for i, n in enumerate(stage_layers(layers, pp)):
        kind = (n, i == 0, i == pp - 1)
        if runs and tuple(runs[-1][2:]) == kind:
            runs[-1][1] += 1
        else:
            runs.append([i, 1, *kind])
    return tuple(tuple(r) for r in runs)


@lru_cache(maxsize=4096)
def candidate_stages(layers: int, pp: int) -> list[int]:
    """Stages that can hold the peak: within one layer count, in-flight micro-batches only fall with the
    stage index, so the first stage of each count, plus the first and last (embedding, head)."""
    first_of: dict = {}
    for i, n in enumerate(stage_layers(layers, pp)):
        first_of.setdefault(n, i)
    return sorted({0, pp - 1, *first_of.values()})     # callers copy before changing it


def memory_arrays(model: ModelSpec, system, r: dict) -> dict:
    """``training_memory`` for many configurations at once (the batch path; tests hold the two equal):
    numpy arrays, one entry per configuration in each of ``r``: tp, pp, ep, shard (dp*sp), sp, zero, m,
    v, gpipe, b, s, B (activation bytes), w_B, g_B, o_B, zo, full (recompute), off_opt, off_par,
    off_act (tier names), per_layer and working (``layer_activation_bytes``), gpus. Returns hbm (worst
    stage), host and nvme (per node) and fits. The candidate stages of each pipeline depth are padded
    to the batch's largest count with stage 0 again, which never wins a tie against the first copy."""
    dev, host = system.device, system.host
    tp, ep, pp = (np.asarray(r[k]).astype(np.int64) for k in ("tp", "ep", "pp"))
    R = len(tp)
    big = 1 << 20
    combos, inv = np.unique((pp * big + tp) * big + ep, return_inverse=True)
    K = max(len(candidate_stages(model.layers, p)) for p in np.unique(pp).tolist()) if R else 1
    table = np.empty((len(combos), 4, K))                            # stage, layers, dense, expert params
    for q, cmb in enumerate(combos.tolist()):
        p, t, e = cmb // (big * big), (cmb // big) % big, cmb % big
        layers = stage_layers(model.layers, p)
        cand = candidate_stages(model.layers, p)
        cand = cand + [0] * (K - len(cand))
        table[q, 0], table[q, 1] = cand, [layers[i] for i in cand]
        table[q, 2:] = np.array([stage_params_cached(model, t, e, p, i, layers[i]) for i in cand]).T
    # candidates x configurations: reductions over a short first axis are what numpy does fast
    ci, n_layers, nd, ne = np.ascontiguousarray(np.transpose(table[inv.reshape(-1)], (1, 2, 0)))
    row = (lambda x: np.asarray(x))                                  # noqa: E731
    shard = row(r["shard"])
    shard_d, shard_e = shard, np.maximum(1, shard // row(ep))
    zero, w_B, g_B, o_B = row(r["zero"]), row(r["w_B"]), row(r["g_B"]), row(r["o_B"])
    zo, full = row(r["zo"]).astype(bool), row(r["full"]).astype(bool)
    off_opt, off_par, off_act = row(r["off_opt"]) != "none", row(r["off_par"]) != "none", row(r["off_act"]) != "none"
    per_layer = np.where(zo, 0.0, row(r["per_layer"]))              # MeZO: nothing kept for backward
    working = row(r["working"])
    frag = eff(dev, "mem_fragmentation")
    reserved = eff(dev, "mem_framework_reserved_bytes")
    layer_params = model.params_per_layer() / row(tp)
    n_local = nd / shard_d + ne / shard_e                            # this GPU's ZeRO partition
    n_all = nd + ne
    w = np.where(zero < 3, n_all * w_B, n_local * w_B)
    w = np.where(off_par, 0.0, w)
    live = np.where((zero == 3) | off_par, np.minimum(2 * layer_params, eff(dev, "zero3_max_live_params")) * w_B, 0.0)
    g = np.where(off_opt, 2 * np.minimum(eff(dev, "offload_grad_bucket_params"), n_all) * g_B,
                 np.where(zero < 2, n_all * g_B, n_local * g_B))
    opt = np.where(off_opt, 0.0, np.where(zero < 1, n_all, n_local) * o_B)
    act = per_layer * n_layers * in_flight_arr(row(pp), row(r["m"]), row(r["v"]), row(r["gpipe"]), ci)
    act = np.where(full | zo, act + working, act)
    act = np.where(off_act, np.minimum(act, 2 * per_layer) + np.where(full, working, 0.0), act)
    B = row(r["B"])
    logit_B = B + np.where(zo, 0.0, 4.0)                              # vocab-parallel logits + fp32 softmax
    logits = np.where(ci == row(pp) - 1, row(r["b"]) * row(r["s"]) / row(r["sp"]) * model.vocab / row(tp) * logit_B,
                      0.0)
    total = (w + live + g + opt + act + logits) * (1 + frag) + reserved
    j = np.argmax(total, axis=0)                                     # first of equal peaks, as the scalar loop
    rows = np.arange(R)
    hbm, nl = total[j, rows], n_local[j, rows]
    # other tiers: this GPU's partition; a node adds its GPUs' partitions
    o_B1 = np.asarray(r["o_B"])
    fp32_grad = np.where(np.asarray(r["zo"], dtype=bool), 0.0, 4.0)  # fp32 gradient copy next to offloaded states
    states = nl * (o_B1 + fp32_grad)
    oo, op_, oa = (np.asarray(r[k]) for k in ("off_opt", "off_par", "off_act"))
    wB = np.asarray(r["w_B"])
    pl = per_layer
    stored = pl * model.layers / pp * in_flight_arr(pp, r["m"], r["v"], r["gpipe"], 0)
    staging = np.where(oo == "nvme", np.minimum(nl, eff(dev, "zero_sub_group_params")) * (o_B1 + fp32_grad), 0.0)
    staging = np.where(op_ == "nvme", staging + eff(dev, "nvme_param_buffer_bytes"), staging)
    staging = np.where(oa == "nvme", staging + 2 * pl, staging)
    gpn = np.minimum(system.cluster.gpus_per_node, np.asarray(r["gpus"]))
    host_total = (np.where(oo == "cpu", states, 0.0) + np.where(op_ == "cpu", nl * wB, 0.0)
                  + np.where(oa == "cpu", stored, 0.0) + staging) * gpn
    nvme_total = (np.where(oo == "nvme", states, 0.0) + np.where(op_ == "nvme", nl * wB, 0.0)
                  + np.where(oa == "nvme", stored, 0.0)) * gpn
    fits = (hbm <= dev.hbm_bytes) & (host_total <= host.dram_bytes) & (nvme_total <= host.nvme_bytes)
    return {"hbm": hbm, "host": host_total, "nvme": nvme_total, "fits": fits}


def training_memory(model: ModelSpec, system, L: Layout, b: int, s: int, m: int, precision: str = "bf16",
                    recompute: str = "none", flash: bool = True, optimizer: str = "adam",
                    offload_optimizer: str = "none", offload_params: str = "none",
                    offload_activations: str = "none", grad_reduce_in_fp32: bool = False) -> Memory:
    """``grad_reduce_in_fp32``: the gradient buffer is fp32 (4 B per parameter; Megatron-LM's main_grad
    buffers for bf16 runs) instead of the weights' width."""
    dev, host = system.device, system.host
    B = dtype_bytes(precision)
    w_B = 4.0 if precision in ("fp32", "tf32") else 2.0
    g_B = 0.0 if optimizer == "zo" else (4.0 if grad_reduce_in_fp32 else w_B)
    o_B = optimizer_bytes_per_param(optimizer, precision)
    fp32_grad = 4.0 if optimizer != "zo" else 0.0              # fp32 gradient copy next to offloaded states
    shard_d, shard_e = L.shard, max(1, L.shard // L.ep)
    per_layer, working = layer_activation_bytes(model, b, s, L, recompute, flash, B)
    if optimizer == "zo":                                      # MeZO: forward only, nothing kept for backward
        per_layer = 0.0
    frag = eff(dev, "mem_fragmentation")
    reserved = eff(dev, "mem_framework_reserved_bytes")
    layers = stage_layers(model.layers, L.pp)
    layer_params = (model.params_per_layer()) / L.tp
    worst = None
    # within one layer count, in-flight micro-batches only fall with the stage index: the first stage of
    # each count (plus the first and last, which hold the embedding and the head) holds the peak
    first_of = {}
    for i, n in enumerate(layers):
        first_of.setdefault(n, i)
    for i in sorted({0, L.pp - 1, *first_of.values()}):
        nd, ne = stage_params_cached(model, L.tp, L.ep, L.pp, i, layers[i])
        n_local = nd / shard_d + ne / shard_e                  # this GPU's ZeRO partition
        n_all = nd + ne
        w = n_all * w_B if L.zero < 3 else n_local * w_B
        if offload_params != "none":
            w = 0.0
        live = min(2 * layer_params, eff(dev, "zero3_max_live_params")) * w_B \
            if (L.zero == 3 or offload_params != "none") else 0.0
        if offload_optimizer != "none":
            g = 2 * min(eff(dev, "offload_grad_bucket_params"), n_all) * g_B
            opt = 0.0
        else:
            g = n_all * g_B if L.zero < 2 else n_local * g_B
            opt = (n_all if L.zero < 1 else n_local) * o_B
        act = per_layer * layers[i] * in_flight(L, m, i)
        if recompute == "full" or optimizer == "zo":
            act += working
        if offload_activations != "none":
            act = min(act, 2 * per_layer) + (working if recompute == "full" else 0.0)
        logits = 0.0
        if i == L.pp - 1:                                       # vocab-parallel logits + fp32 softmax of one micro-batch
            logits = b * s / L.sp * model.vocab / L.tp * (B + (0.0 if optimizer == "zo" else 4.0))
        tensors = w + live + g + opt + act + logits
        total = tensors * (1 + frag) + reserved
        parts = {"weights": w, "live_gathered_weights": live, "gradients": g, "optimizer_states": opt,
                 "activations": act, "logits": logits, "fragmentation": tensors * frag,
                 "framework_reserved": reserved, "stage": i, "params_on_gpu": n_all}
        if worst is None or total > worst[0]:
            worst = (total, parts, n_local)
    hbm, parts, n_local = worst
    # per-GPU bytes in the other tiers (this GPU's partition; a node adds its GPUs' partitions)
    host_b = {"optimizer_states": 0.0, "weights": 0.0, "activations": 0.0, "staging": 0.0}
    nvme_b = {"optimizer_states": 0.0, "weights": 0.0, "activations": 0.0}
    states = n_local * (o_B + fp32_grad)
    if offload_optimizer == "cpu":
        host_b["optimizer_states"] = states
    elif offload_optimizer == "nvme":
        nvme_b["optimizer_states"] = states
        host_b["staging"] += min(n_local, eff(dev, "zero_sub_group_params")) * (o_B + fp32_grad)
    if offload_params == "cpu":
        host_b["weights"] = n_local * w_B
    elif offload_params == "nvme":
        nvme_b["weights"] = n_local * w_B
        host_b["staging"] += eff(dev, "nvme_param_buffer_bytes")
    if offload_activations != "none":
        stored = per_layer * sum(layers) / L.pp * in_flight(L, m, 0)
        (host_b if offload_activations == "cpu" else nvme_b)["activations"] = stored
        if offload_activations == "nvme":
            host_b["staging"] += 2 * per_layer
    gpn = min(system.cluster.gpus_per_node, L.gpus)
    host_total = sum(host_b.values()) * gpn
    nvme_total = sum(nvme_b.values()) * gpn
    cap = {"hbm": dev.hbm_bytes, "host": host.dram_bytes, "nvme": host.nvme_bytes}
    use = {"hbm": hbm, "host": host_total, "nvme": nvme_total}
    overflow = [k for k in use if use[k] > cap[k]]
    breakdown = {"hbm_per_gpu": parts, "host_per_gpu": host_b, "nvme_per_gpu": nvme_b, "gpus_per_node": gpn,
                 "capacity": cap, "overflow": overflow,
                 "activation_bytes_per_layer": per_layer}
    return Memory(hbm, host_total, nvme_total, not overflow, breakdown)
