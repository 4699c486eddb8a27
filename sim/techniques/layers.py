"""One transformer layer as ops, on one tensor-parallel rank: shared by training and inference.

The techniques never re-derive a layer's shapes: training multiplies these ops by micro-batches
and layers (and takes ``backward_ops``), inference calls them with ``seq_q = prompt`` (prefill)
or ``seq_q = 1`` over ``seq_kv`` cached tokens (decode). Communication is not here: the caller
adds the TP all-reduces (or SP all-gather/reduce-scatter) and MoE all-to-alls it needs, because
how they overlap is the technique's business.

Tensor parallelism follows Megatron-LM: QKV and MLP-up are column-parallel (output features / tp),
the output projection and MLP-down row-parallel (input features / tp); attention runs heads/tp
query heads and max(1, kv_heads/tp) KV heads (KV heads are replicated when tp > kv_heads);
norms and residual adds are replicated on every rank, or split over the sequence with ``sp``.
The vocabulary is split over ranks for the embedding and the LM head.

Elementwise FLOP counts are rough per-element operation counts (these kernels are bound by
bytes, the FLOPs only matter on a device with very little vector throughput):
RMSNorm 4 (square, sum, rescale, scale), LayerNorm 7 (+ mean, subtract, shift), residual add 1,
GELU 8 (tanh form), SwiGLU 5 (sigmoid, two multiplies), RoPE 3 per rotated element,
softmax / cross-entropy 5 per logit.
"""
from __future__ import annotations

from dataclasses import replace
from math import ceil

from sim.errors import InputError
from sim.models import ModelSpec
from sim.ops import DTYPE_BYTES, Attention, Elementwise, Gemm

NORM_FLOPS = {"rmsnorm": 4, "layernorm": 7}
ACT_FLOPS = {True: 5, False: 8}          # gated (SwiGLU) vs GELU
RESIDUAL_FLOPS, ROPE_FLOPS, SOFTMAX_FLOPS = 1, 3, 5
ID_BYTES = 4                             # token ids read by the embedding gather (int32)


def _bytes(dtype: str | None, field: str) -> float:
    if dtype not in DTYPE_BYTES:
        raise InputError("scenario", field, f"unknown dtype {dtype!r}; expected one of {sorted(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


def check_parallel(model: ModelSpec, tp: int = 1, ep: int = 1) -> None:
    """Megatron's divisibility rules: tp divides heads and the MLP width; KV heads split or replicate."""
    if tp < 1 or ep < 1:
        raise InputError("scenario", "tp" if tp < 1 else "ep", "must be >= 1")
    kv = model.n_kv_heads
    if model.heads % tp:
        raise InputError("scenario", "tp", f"{tp} must divide the model's heads={model.heads}")
    if kv % tp and tp % kv:
        raise InputError("scenario", "tp", f"{tp} must divide kv_heads={kv} or be a multiple of it")
    if model.ffn % tp:
        raise InputError("scenario", "tp", f"{tp} must divide the MLP width ffn={model.ffn}")
    if model.experts % ep:
        raise InputError("scenario", "ep", f"{ep} must divide experts={model.experts}")


def _norm(model: ModelSpec, tokens: float, b: float, name: str) -> Elementwise:
    x = tokens * model.hidden * b
    return Elementwise(bytes_read=x + model.hidden * b, bytes_written=x,
                       flops=NORM_FLOPS[model.norm] * tokens * model.hidden, name=name)


def _residual(model: ModelSpec, tokens: float, b: float, name: str) -> Elementwise:
    x = tokens * model.hidden * b
    return Elementwise(bytes_read=2 * x, bytes_written=x, flops=RESIDUAL_FLOPS * tokens * model.hidden, name=name)


def layer_forward_ops(model: ModelSpec, batch: int, seq_q: int, seq_kv: int, tp: int = 1, dtype: str = "bf16",
                      w_dtype: str | None = None, kv_dtype: str | None = None, attn_impl: str = "flash2",
                      causal: bool = True, sp: bool = False, ep: int = 1) -> list:
    """Forward ops of ONE layer on one TP rank, in execution order, each with a ``name``.

    ``batch`` sequences of ``seq_q`` new tokens attend to ``seq_kv`` keys (seq_kv = seq_q in
    training and prefill; seq_q = 1 in decode). ``w_dtype`` is the storage dtype of the weight
    GEMMs (weight-only quantisation), ``kv_dtype`` that of the KV cache. With ``sp`` (Megatron
    sequence parallelism) norms and residual adds run on seq/tp tokens. For MoE, ``ep`` ranks
    share the experts: each holds experts/ep of them and, with balanced routing, gets
    tokens*top_k*ep/experts tokens per local expert (one batched GEMM over its local experts).
    """
    check_parallel(model, tp, ep)
    b = _bytes(dtype, "dtype")
    if w_dtype is not None:
        _bytes(w_dtype, "w_dtype")
    if kv_dtype is not None:
        _bytes(kv_dtype, "kv_dtype")
    tokens = batch * seq_q
    t_rep = ceil(tokens / tp) if sp else tokens          # tokens each rank normalises / adds
    hd, h = model.d_head, model.hidden
    q_local, kv_local = model.heads // tp, max(1, model.n_kv_heads // tp)
    w = dict(dtype=dtype, w_dtype=w_dtype)

    ops = [_norm(model, t_rep, b, "norm1"),
           Gemm(m=tokens, n=(q_local + 2 * kv_local) * hd, k=h, name="qkv", **w)]
    if model.position_embedding == "rope":
        rot = tokens * (q_local + kv_local) * hd
        ops.append(Elementwise(bytes_read=rot * b, bytes_written=rot * b, flops=ROPE_FLOPS * rot, name="rope"))
    ops += [Attention(batch=batch, heads=q_local, kv_heads=kv_local, seq_q=seq_q, seq_kv=seq_kv, head_dim=hd,
                      causal=causal, dtype=dtype, pass_="fwd", impl=attn_impl, kv_dtype=kv_dtype, name="attn"),
            Gemm(m=tokens, n=h, k=q_local * hd, name="proj", **w),
            _residual(model, t_rep, b, "residual1"),
            _norm(model, t_rep, b, "norm2")]

    up_n = (2 if model.gated_mlp else 1) * model.ffn // tp
    if model.is_moe:
        routed = tokens * model.top_k                      # token-expert pairs this rank computes
        m_exp, local = ceil(routed * ep / model.experts), model.experts // ep
        ops += [Gemm(m=tokens, n=model.experts, k=h, dtype=dtype, name="router"),
                Elementwise(bytes_read=tokens * h * b, bytes_written=routed * h * b, name="moe_dispatch"),
                Gemm(m=m_exp, n=up_n, k=h, batch=local, name="mlp_up", **w)]
        act_tokens = routed
    else:
        ops.append(Gemm(m=tokens, n=up_n, k=h, name="mlp_up", **w))
        act_tokens = tokens
    f_local = model.ffn // tp
    act_in = act_tokens * up_n * b
    ops.append(Elementwise(bytes_read=act_in, bytes_written=act_tokens * f_local * b,
                           flops=ACT_FLOPS[model.gated_mlp] * act_tokens * f_local, name="act"))
    if model.is_moe:
        ops += [Gemm(m=m_exp, n=h, k=f_local, batch=local, name="mlp_down", **w),
                Elementwise(bytes_read=routed * h * b, bytes_written=tokens * h * b,
                            flops=2 * routed * h, name="moe_combine")]
    else:
        ops.append(Gemm(m=tokens, n=h, k=f_local, name="mlp_down", **w))
    ops.append(_residual(model, t_rep, b, "residual2"))
    return ops


def embedding_ops(model: ModelSpec, tokens: int, tp: int = 1, dtype: str = "bf16") -> list:
    """The token gather (vocabulary split over tp ranks: each reads its share of the rows and
    writes a full, partly zero, activation that the caller all-reduces), learned positions, and
    BLOOM's embedding norm."""
    b = _bytes(dtype, "dtype")
    x = tokens * model.hidden * b
    ops = [Elementwise(bytes_read=x / tp + tokens * ID_BYTES, bytes_written=x, name="embed")]
    if model.position_embedding == "learned":
        ops.append(Elementwise(bytes_read=2 * x, bytes_written=x, flops=tokens * model.hidden, name="pos_embed"))
    if model.embedding_norm:
        ops.append(_norm(model, tokens, b, "embed_norm"))
    return ops


def lm_head_ops(model: ModelSpec, tokens: int, tp: int = 1, dtype: str = "bf16", loss: bool = True) -> list:
    """Final norm, the vocabulary-parallel output GEMM, then the loss (training: a softmax cross-
    entropy that keeps fp32 probabilities for backward, as Megatron does) or, with ``loss=False``,
    the sampling pass over the logits (inference; ``tokens`` = sequences that need a next token)."""
    b = _bytes(dtype, "dtype")
    v_local = ceil(model.vocab / tp)
    logits = tokens * v_local
    ops = [_norm(model, tokens, b, "final_norm"),
           Gemm(m=tokens, n=v_local, k=model.hidden, dtype=dtype, name="lm_head")]
    if loss:
        ops.append(Elementwise(bytes_read=logits * b, bytes_written=logits * DTYPE_BYTES["fp32"],
                               flops=SOFTMAX_FLOPS * logits, name="cross_entropy"))
    else:
        ops.append(Elementwise(bytes_read=logits * b, bytes_written=tokens * ID_BYTES,
                               flops=SOFTMAX_FLOPS * logits, name="sample"))
    return ops


def backward_ops(forward: list, weight_grads: bool = True) -> list:
    """The backward pass of a list of forward ops, in reverse order.

    A GEMM C = A B gives dA = dC B^T (``_dgrad``: m x k from k = n) and dB = A^T dC (``_wgrad``:
    k x n from k = m; skipped when ``weight_grads`` is False, e.g. frozen weights); attention runs
    its ``bwd`` pass; an elementwise op reads its inputs and the output gradient and writes the
    input gradient (twice the FLOPs). 2x the forward GEMM FLOPs with weight grads, as usual.
    """
    out = []
    for op in reversed(forward):
        if isinstance(op, Gemm):
            out.append(replace(op, m=op.m, n=op.k, k=op.n, name=f"{op.name}_dgrad"))
            if weight_grads:
                out.append(replace(op, m=op.k, n=op.n, k=op.m, w_dtype=None, name=f"{op.name}_wgrad"))
        elif isinstance(op, Attention):
            out.append(replace(op, pass_="bwd", name=f"{op.name}_bwd"))
        elif isinstance(op, Elementwise):
            out.append(replace(op, bytes_read=op.bytes_read + op.bytes_written, bytes_written=op.bytes_read,
                               flops=2 * op.flops, name=f"{op.name}_bwd"))
        else:
            raise TypeError(f"no backward for {type(op).__name__}")
    return out


def layer_backward_ops(model: ModelSpec, batch: int, seq_q: int, seq_kv: int, tp: int = 1, dtype: str = "bf16",
                       causal: bool = True, attn_impl: str = "flash2", sp: bool = False, ep: int = 1,
                       weight_grads: bool = True) -> list:
    """Backward ops of one layer on one TP rank (training weights are in ``dtype``)."""
    fwd = layer_forward_ops(model, batch, seq_q, seq_kv, tp=tp, dtype=dtype, attn_impl=attn_impl,
                            causal=causal, sp=sp, ep=ep)
    return backward_ops(fwd, weight_grads=weight_grads)
