"""What an eager PyTorch framework launches, op by op: the kernel lists of Megatron's core attention,
its vocab-parallel cross entropy and the input embedding, and the per-layer kernel counts the host
dispatch floor is priced from (``sim.techniques.step``). Sources are Megatron-LM / Megatron-DeepSpeed
(``fused_softmax.py``, ``transformer.py``, ``mpu/cross_entropy.py``, ``mpu/layers.py``) and PyTorch's
ATen CUDA kernels; docs/training.md compares the counts with what Megatron-DeepSpeed launches.
"""
from __future__ import annotations

from sim.ops import DTYPE_BYTES, Attention, Elementwise, Gemm

# Megatron's fused scale + causal-mask + softmax kernel (scaled_upper_triang_masked_softmax) serves key
# lengths 16 < s_k <= 2048 with s_q and batch*heads multiples of 4 (megatron/model/fused_softmax.py,
# FusedScaleMaskSoftmax.is_kernel_available, Megatron-LM 2021 and Megatron-DeepSpeed); otherwise the torch path.
MEGATRON_SOFTMAX_MAX_SEQ = 2048


def is_flash(attn_impl: str) -> bool:
    """FlashAttention-style kernels never write the s x s scores to memory."""
    return attn_impl not in ("naive", "megatron")


def megatron_attention_kernels(att: Attention) -> tuple[list, list]:
    """(forward, backward) kernels of Megatron-LM's core attention before FlashAttention
    (ParallelAttention / CoreAttention, 2020-2023; vTrain's profiled model is the same code).

    Forward: ``baddbmm`` of Q and K^T taken as strided views of the QKV projection output (no layout
    copies; the 1/sqrt(d) scale is its alpha), the fused scale+mask+softmax kernel reading the fp16
    scores and writing the probabilities (when its size conditions hold; otherwise the torch path
    with ``apply_query_key_layer_scaling``'s fp32 softmax: cast up, scale, masked_fill, softmax, cast
    down), ``bmm`` with V, and one copy of the context back to [s, b, h] (``permute().contiguous()``).
    Attention-probability dropout is added by the caller. Backward: the context-gradient copy, the
    two ``bmm`` gradients, the softmax backward (reads P and dP, writes dS), the two ``baddbmm``
    gradients each followed by its alpha multiply (PyTorch's baddbmm derivative), and the
    concatenation of dQ, dK, dV into the QKV gradient (backward of the split). K and V with fewer
    heads than Q (GQA) are expanded by a copy and their gradients summed back."""
    BH, sq, skv, d = att.batch * att.heads, att.seq_q, att.seq_kv, att.head_dim
    b = DTYPE_BYTES[att.dtype]
    N = BH * sq * skv
    q_io = BH * sq * d * b
    kv_full, kv_own = BH * skv * d * b, att.batch * att.kv_heads * skv * d * b
    fused = 16 < skv <= MEGATRON_SOFTMAX_MAX_SEQ and sq % 4 == 0 and BH % 4 == 0 and (not att.causal or sq == skv)
    g = dict(batch=BH, dtype=att.dtype)
    fwd = []
    if att.kv_heads < att.heads:
        fwd += [Elementwise(kv_own, kv_full, name="attn_k_expand"), Elementwise(kv_own, kv_full, name="attn_v_expand")]
    fwd.append(Gemm(m=sq, n=skv, k=d, name="attn_qk", **g))
    if fused:
        fwd.append(Elementwise(N * b, N * b, flops=5.0 * N, name="attn_softmax_fused"))
    else:
        fwd += [Elementwise(N * b, 4 * N, name="attn_scores_fp32"), Elementwise(4 * N, 4 * N, flops=N, name="attn_scale")]
        if att.causal:
            fwd.append(Elementwise(4 * N, 4 * N, name="attn_mask"))
        fwd += [Elementwise(4 * N, 4 * N, flops=5.0 * N, name="attn_softmax"), Elementwise(4 * N, N * b, name="attn_probs_16")]
    fwd += [Gemm(m=sq, n=d, k=skv, name="attn_pv", **g), Elementwise(q_io, q_io, name="attn_ctx_copy")]
    bwd = [Elementwise(q_io, q_io, name="attn_dctx_copy"), Gemm(m=skv, n=d, k=sq, name="attn_dv", **g),
           Gemm(m=sq, n=skv, k=d, name="attn_dp", **g)]
    if fused:
        bwd.append(Elementwise(2 * N * b, N * b, flops=3.0 * N, name="attn_softmax_fused_bwd"))
    else:
        bwd += [Elementwise(N * b, 4 * N, name="attn_dprobs_fp32"),
                Elementwise(8 * N, 4 * N, flops=3.0 * N, name="attn_softmax_bwd")]
        if att.causal:
            bwd.append(Elementwise(4 * N, 4 * N, name="attn_mask_bwd"))
        bwd += [Elementwise(4 * N, 4 * N, flops=N, name="attn_scale_bwd"), Elementwise(4 * N, N * b, name="attn_ds_16")]
    bwd += [Gemm(m=sq, n=d, k=skv, name="attn_dq", **g), Elementwise(q_io, q_io, flops=q_io / b, name="attn_dq_alpha"),
            Gemm(m=skv, n=d, k=sq, name="attn_dk", **g),
            Elementwise(kv_full, kv_full, flops=kv_full / b, name="attn_dk_alpha")]
    if att.kv_heads < att.heads:
        bwd += [Elementwise(kv_full, kv_own, name="attn_dk_reduce"), Elementwise(kv_full, kv_own, name="attn_dv_reduce")]
    bwd.append(Elementwise(q_io + 2 * kv_own, q_io + 2 * kv_own, name="attn_dqkv_cat"))
    return fwd, bwd


def megatron_cross_entropy_kernels(tokens: float, v_local: int, B: float) -> tuple[list, list]:
    """(forward, backward) kernels of Megatron's vocab-parallel cross entropy on [tokens, v_local]
    16-bit logits (megatron/mpu/cross_entropy.py ``_VocabParallelCrossEntropy``, called on
    ``output.float()``; Megatron-LM, Megatron-DeepSpeed and Megatron-Core without loss fusion), plus
    the masked mean of the GPT loss function. Six passes over the logits forward, all in fp32: the
    upcast, the row max, the in-place subtraction, the in-place exp, the row sum, the in-place
    division into the softmax kept for backward; ten token-sized kernels pick the target logit
    (vocab-range mask, clone, zeroing, arange gather) and form the loss. Backward: token-sized
    index updates of the target column, the scale by the incoming gradient in place, and the cast of
    the gradient back to 16 bits (backward of the upcast)."""
    T, N = tokens, tokens * v_local
    small = lambda name: Elementwise(8 * T, 8 * T, flops=T, name=name)      # noqa: E731 (int64/fp32 vectors)
    fwd = [Elementwise(N * B, 4 * N, name="ce_logits_fp32"),
           Elementwise(4 * N, 4 * T, flops=N, name="ce_row_max"),
           Elementwise(4 * N, 4 * N, flops=N, name="ce_sub_max"),
           *(small(f"ce_target_{k}") for k in ("lt", "ge", "or", "clone_sub", "zero", "arange", "gather", "mask")),
           Elementwise(4 * N, 4 * N, flops=N, name="ce_exp"),
           Elementwise(4 * N, 4 * T, flops=N, name="ce_row_sum"),
           small("ce_log_sub"),
           Elementwise(4 * N, 4 * N, flops=N, name="ce_softmax_div"),
           *(small(f"loss_{k}") for k in ("mask_float", "mask_mul", "sum", "mask_sum", "div"))]
    bwd = [*(small(f"loss_{k}_bwd") for k in ("div", "mul")),
           *(small(f"ce_{k}") for k in ("arange", "update_float", "update_sub", "index_put")),
           Elementwise(4 * N, 4 * N, flops=N, name="ce_grad_scale"),
           Elementwise(4 * N, N * B, name="ce_grad_16")]
    return fwd, bwd


EMBEDDING_BWD_FAST_INDICES = 3072   # PyTorch embedding_dense_backward_cuda: atomic fast path up to 3072 indices
EMBEDDING_BWD_SORT_KERNELS = 12     # else arange, cub radix sort of the indices (several passes), unique-by-key
                                    # segments, partials per segment, scans, per-segment sums, scatter, zero fill


def embedding_kernels(model, tp: int, tokens: float, dropout: float) -> tuple[int, int]:
    """(forward, backward) kernels an eager PyTorch/Megatron input embedding launches per micro-batch.
    Forward: each table's gather (vocabulary-parallel at tp > 1 adds Megatron's VocabParallelEmbedding
    masking: the out-of-range mask (3), shifted ids (2), id zeroing, output-row zeroing), the position
    add, dropout, the norm of BLOOM-style models, and Megatron's transpose to [s, b, h]. Backward: the
    transpose and dropout gradients and, per table, ``embedding_dense_backward_cuda``: a zero fill and
    one atomic kernel up to 3072 indices, the sort-and-segment path beyond (aten/src/ATen/native/cuda/
    Embedding.cu), plus its gradient accumulation."""
    tables = 1 + (model.position_embedding == "learned")
    f = tables + (tables - 1) + (7 if tp > 1 else 0) + (dropout > 0) + 1 + bool(model.embedding_norm)
    per_table = 2 if tokens <= EMBEDDING_BWD_FAST_INDICES else EMBEDDING_BWD_SORT_KERNELS
    b = 1 + (dropout > 0) + tables * (per_table + 1) + (tp > 1) + 2 * bool(model.embedding_norm)
    return int(f), int(b)


def weight_tensors(model) -> int:
    """Parameter tensors of one layer: each gets its own gradient-accumulation kernel in backward."""
    norms = 2 * (2 if model.norm == "layernorm" else 1)
    mats = 4 + (1 if model.gated_mlp else 0) + (1 if model.is_moe else 0)
    bias = {"none": 0, "qkv": 1, "all": mats}[model.bias]
    return norms + mats + bias


def eager_kernels(fwd_ops, extra_fwd: int, naive: bool, causal: bool, model,
                  attention: tuple[int, int] | None = None) -> tuple[int, int]:
    """(forward, backward) GPU kernels an eager framework launches for one layer: one per modelled op,
    naive attention's QK^T / mask / softmax / PV (backward: dV, dP, softmax, mask, dQ, dK), two per
    op in backward (data and weight gradient, or input and bias gradient), plus one gradient
    accumulation per parameter tensor. ``attention`` gives the attention's own (forward, backward)
    kernel count where its kernel list is known (Megatron's core attention; FlashAttention-2's
    backward is three launches: the dO.O row sums, the main kernel and the dQ conversion)."""
    if attention is not None:
        n_att_f, n_att_b = attention
    else:
        n_att_f = (4 if causal else 3) if naive else 1
        n_att_b = (6 if causal else 5) if naive else 1
    n_f = len(fwd_ops) - 1 + n_att_f + extra_fwd
    n_b = 2 * (len(fwd_ops) - 1 + extra_fwd) + n_att_b + weight_tensors(model)
    return n_f, n_b
