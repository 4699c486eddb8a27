"""Per-GPU memory of an inference replica: weights in the plan's format, the paged KV cache, the
largest step's activation workspace and the runtime's reserve; and the largest batch that fits.

The weight bytes come from the plan's GEMM formats (``Plan.gemm_weight_bytes_per_layer``), the same
the step model streams, so a batch that "fits" is priced with the bytes it was sized by.
"""
from __future__ import annotations

import math

from sim.cost.efficiency import eff, param
from sim.ops import DTYPE_BYTES
from sim.techniques import kv_cache
from sim.techniques.inference_plan import Plan

param("infer_reserved_hbm_bytes", 0.5e9,
      "device memory held by the runtime (CUDA context, library workspaces), unavailable to weights/KV",
      "CUDA context + cuBLAS/NCCL workspaces occupy ~0.3-1 GB per GPU as nvidia-smi shows on an idle "
      "PyTorch process; vLLM profiles and subtracts it before sizing its KV pool",
      lo=0.0, hi=4e9)


# ---- memory -----------------------------------------------------------------------------------
def weight_bytes(plan: Plan) -> dict:
    """Weight bytes on the most loaded GPU: layer GEMM weights in the chosen format, sharded over
    TP and PP; norms/biases, embedding and LM head in 16-bit (vocab-parallel over TP)."""
    m = plan.model
    b16 = DTYPE_BYTES[plan.act]
    gemm, _ = plan.gemm_weight_bytes_per_layer()
    other = (m.router_params() + m.bias_params_per_layer() / plan.tp + m.norm_params_per_layer()) * b16
    layers = plan.layers_local * (gemm + other)
    emb, out = m.embedding_params() * b16 / plan.tp, m.output_params() * b16 / plan.tp
    ends = emb + out if plan.pp == 1 else max(emb, out) + (emb if m.tied_embeddings else 0)
    return {"layers": layers, "embedding_and_head": ends, "total": layers + ends,
            "per_layer": gemm + other}


def workspace_bytes(plan: Plan, tokens: int, out_tokens: int) -> float:
    """Transient activations of the largest forward step on one GPU: the residual stream, the QKV
    and MLP-up outputs of one layer live at once, plus fp32 logits of the sequences sampled."""
    m = plan.model
    b = DTYPE_BYTES[plan.act]
    qkv = (m.heads + 2 * m.n_kv_heads) * m.d_head / plan.tp
    up = (2 if m.gated_mlp else 1) * m.ffn / plan.tp
    per_tok = (3 * m.hidden + max(qkv, up) + m.ffn / plan.tp) * b
    return tokens * per_tok + out_tokens * math.ceil(m.vocab / plan.tp) * DTYPE_BYTES["fp32"]


def reserved_bytes(plan: Plan) -> float:
    """HBM the runtime holds (CUDA context, library workspaces): never available to weights or KV."""
    return eff(plan.system.device, "infer_reserved_hbm_bytes")


def memory_check(plan: Plan, batch: int, context: int, prefill_tokens: int, offload=None) -> tuple[dict, dict, bool]:
    """Per-GPU memory by tier and use: weights, KV (paged), activation workspace, runtime reserve."""
    w = weight_bytes(plan)
    kv = batch * plan.kv.seq_bytes(context)
    ws = workspace_bytes(plan, prefill_tokens, batch)
    res = reserved_bytes(plan)
    if offload is not None:
        return offload.memory(w, kv, ws, res)
    dev = plan.system.device
    hbm = w["total"] + kv + ws + res
    use = {"weights": w["total"], "kv_cache": kv, "activations": ws, "reserved": res,
           "kv_fragmentation": plan.kv.fragmentation(context)}
    return {"hbm": hbm, "host": 0.0, "nvme": 0.0}, use, hbm <= dev.hbm_bytes


def max_batch_for(plan: Plan, context: int, prefill_tokens_per_seq: int, cap: int | None = None) -> int:
    """The most sequences of ``context`` tokens whose paged KV and prefill workspace fit next to
    the weights and the runtime reserve (0 when not even one does)."""
    free = plan.system.device.hbm_bytes - weight_bytes(plan)["total"] - reserved_bytes(plan)

    def fits(b: int) -> bool:
        return b * plan.kv.seq_bytes(context) + workspace_bytes(plan, b * prefill_tokens_per_seq, b) <= free

    hi = max(1, kv_cache.max_batch(free, plan.kv, context))
    if cap:
        hi = min(hi, cap)
    if fits(hi):
        return hi
    lo = 0                                   # fits(lo) holds (trivially for 0); fits(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
