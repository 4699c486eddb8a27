"""Framework kernels of the training model: Megatron's core attention and vocab-parallel cross
entropy as the kernels those codes launch, the eager kernel count, the misaligned LM head, and the
settings the published training rows carry from their sources."""
import json

import pytest

from analysis.traces import load_published
from sim.cost import cost
from sim.hardware import load_device, load_host
from sim.hardware.system import Cluster, System
from sim.ops import DTYPE_BYTES, Attention, Elementwise
from sim.scenario import predict
from sim.techniques.eager import (MEGATRON_SOFTMAX_MAX_SEQ, eager_kernels, megatron_attention_kernels,
                                  megatron_cross_entropy_kernels)

GPT = {"layers": 8, "hidden": 1024, "heads": 16, "ffn": 4096, "vocab": 51200, "norm": "layernorm",
       "bias": "all", "position_embedding": "learned", "seq_len": 2048}


def scenario(gpus=8, **wl):
    w = {"kind": "training", "global_batch": 32, "micro_batch": 2, "seq_len": 2048, "precision": "bf16"}
    w.update(wl)
    return {"hardware": "A100-SXM4-80GB", "host": "DGX-A100",
            "cluster": {"gpus": gpus, "gpus_per_node": min(gpus, 8)}, "model": GPT, "workload": w}


def system(gpus=8):
    return System(load_device("A100-SXM4-80GB"), load_host("DGX-A100"), Cluster(gpus, min(gpus, 8)))


def _bytes(ops):
    return sum(o.bytes_read + o.bytes_written for o in ops if isinstance(o, Elementwise))


def _score_passes(ops, n, b):
    """Elementwise passes touching the s x s scores, in units of n elements of b bytes (read + write)."""
    return _bytes(ops) / (n * b)


def att(b=4, heads=16, s=1024, d=64, kv=None):
    return Attention(batch=b, heads=heads, kv_heads=kv or heads, seq_q=s, seq_kv=s, head_dim=d, causal=True,
                     dtype="fp16", impl="naive")


def test_megatron_attention_has_one_fused_softmax_pass_and_no_layout_copies():
    """Megatron (fused_softmax.py): baddbmm on strided views, ONE scale+mask+softmax kernel reading S and
    writing P, bmm, one context copy; the PyTorch reference adds Q/K/V copies and a mask pass."""
    a = att()
    n, b = a.batch * a.heads * a.seq_q * a.seq_kv, DTYPE_BYTES["fp16"]
    fwd, bwd = megatron_attention_kernels(a)
    assert [type(o).__name__ for o in fwd] == ["Gemm", "Elementwise", "Gemm", "Elementwise"]
    q_io = a.batch * a.heads * a.seq_q * a.head_dim * b
    assert _bytes(fwd) == pytest.approx(2 * n * b + 2 * q_io)                      # softmax r+w, context copy
    # backward: softmax reads P and dP, writes dS; the rest are O(s d): the context-gradient copy, the dQ and
    # dK alpha scalings, the concatenation of dQ, dK, dV (read and write each)
    assert _bytes(bwd) == pytest.approx(3 * n * b + 12 * q_io)
    sysm = system()
    meg = sum(cost(o, sysm).time_s for o in fwd)
    naive = cost(a, sysm).time_s
    assert meg < naive


def test_megatron_softmax_falls_back_to_fp32_torch_path_beyond_the_fused_kernel():
    """Beyond the fused kernel's 2048 keys: cast to fp32, scale, masked_fill, softmax, cast back."""
    short, long_ = att(s=MEGATRON_SOFTMAX_MAX_SEQ), att(s=2 * MEGATRON_SOFTMAX_MAX_SEQ, b=1)
    f_short, _ = megatron_attention_kernels(short)
    f_long, b_long = megatron_attention_kernels(long_)
    assert len(f_long) == len(f_short) + 4
    n = long_.batch * long_.heads * long_.seq_q * long_.seq_kv
    # fp16 -> fp32 (2 + 4), scale (8), mask (8), softmax (8), fp32 -> fp16 (4 + 2) bytes per score
    assert _score_passes(f_long, n, 1) == pytest.approx(36, rel=0.02)
    assert len(b_long) > len(megatron_attention_kernels(short)[1])


def test_megatron_gqa_expands_kv_and_reduces_their_gradients():
    f, b = megatron_attention_kernels(att(heads=16, kv=4))
    names = [o.name for o in f + b]
    assert {"attn_k_expand", "attn_v_expand", "attn_dk_reduce", "attn_dv_reduce"} <= set(names)


def test_megatron_cross_entropy_makes_six_fp32_passes_forward_two_backward():
    """vocab_parallel_cross_entropy(output.float()): upcast (2+4 B), max (4), sub_ (8), exp (8), sum (4),
    div_ (8) = 38 B per logit forward; backward mul_ (8) and downcast (4+2) = 14 B; plus token-sized
    bookkeeping kernels."""
    T, V, B = 2048, 25216, 2
    f, b = megatron_cross_entropy_kernels(T, V, B)
    big = lambda ops: sum(o.bytes_read + o.bytes_written for o in ops if o.bytes_read >= T * V)  # noqa: E731
    assert big(f) == pytest.approx(38 * T * V, rel=1e-3)       # (+ the row max and row sum outputs)
    assert big(b) == pytest.approx(14 * T * V)
    assert len(f) > 15 and len(b) >= 6


def test_megatron_cross_entropy_costs_more_than_a_fused_loss():
    fused = predict(scenario(cross_entropy="fused"))
    meg = predict(scenario(cross_entropy="megatron"))
    assert meg.time_s > fused.time_s


def test_eager_count_takes_the_attention_kernel_list():
    from sim.models import load_model
    from sim.techniques.layers import layer_forward_ops
    m = load_model(GPT)
    fwd = layer_forward_ops(m, 1, 1024, 1024, attn_impl="naive", dtype="fp16")
    kf, kb = megatron_attention_kernels(next(o for o in fwd if isinstance(o, Attention)))
    base = eager_kernels(fwd, 2, True, True, m)
    meg = eager_kernels(fwd, 2, True, True, m, (len(kf), len(kb)))
    assert meg[0] - base[0] == len(kf) - 4 and meg[1] - base[1] == len(kb) - 6


def test_megatron_attention_predicts_between_flash_and_pytorch_reference():
    """Same layer: FlashAttention never writes the scores, Megatron writes them in fewer passes than the
    PyTorch reference; the memory model keeps the scores for both non-flash kinds."""
    t = {k: predict(scenario(attn_impl=k, micro_batch=4)) for k in ("flash2", "megatron", "naive")}
    assert t["flash2"].time_s < t["megatron"].time_s < t["naive"].time_s
    assert t["megatron"].memory_bytes["hbm"] == t["naive"].memory_bytes["hbm"] > t["flash2"].memory_bytes["hbm"]


def test_unpadded_vocabulary_slows_the_head():
    """GPT-2's 50257 words (odd) vs the 50304 Megatron pads to: the misaligned LM head is slower even
    though it has fewer columns."""
    odd, pad = ({**GPT, "vocab": v} for v in (50257, 50304))
    t_odd = predict({**scenario(), "model": odd}).time_s
    t_pad = predict({**scenario(), "model": pad}).time_s
    assert t_odd > t_pad


# ---- what the published training rows carry from their sources ------------------------------------
def _rows():
    df = load_published()
    return {i: json.loads(s) for i, s in zip(df["id"], df["scenario"])
            if i.startswith("E") or i.startswith("V")}, df


def test_megatron_rows_use_the_framework_defaults_of_their_time():
    sc, df = _rows()
    meg = [i for i in ("E0006", "E0007", "E0008", "E0009", "E0010")] + [i for i in sc if i.startswith("V")]
    assert len(meg) == 1445
    for i in meg:
        w = sc[i]["workload"]
        assert (w["attn_impl"], w["dropout"], w["cross_entropy"]) == ("megatron", 0.1, "megatron"), i


def test_vtrain_vocabulary_is_split_as_vtrains_model_does():
    """vocab_size // tp rows per rank (ShardedGptLogit), unpadded."""
    sc, _ = _rows()
    for i, s in sc.items():
        if i.startswith("V"):
            tp = s["workload"]["parallel"]["tp"]
            assert s["model"]["vocab"] // tp == 50257 // tp and s["model"]["vocab"] % tp == 0


def test_megatron_core_rows_carry_the_readme_overlaps():
    sc, _ = _rows()
    for i in ("E0011", "E0012", "E0014", "E0016", "E0019"):
        p = sc[i]["workload"]["parallel"]
        assert p["zero"] == 1 and p["overlap_grad_reduce"] and p["overlap_param_gather"] and p["tp_comm_overlap"]
        assert p["sequence_parallel"] == (p["tp"] > 1)


def test_flashattention_gpt_rows_pad_the_vocabulary_to_8():
    sc, _ = _rows()
    for i in ("E0024", "E0030", "E0033"):
        assert sc[i]["model"]["vocab"] == 50264 and sc[i]["workload"]["dropout"] == 0.1


def test_embedding_backward_switches_to_the_sort_path_beyond_3072_indices():
    """PyTorch's embedding_dense_backward_cuda: zero fill + one atomic kernel up to 3072 indices, the
    radix-sort-and-segment path beyond; Megatron's vocab-parallel masking adds forward kernels at tp > 1."""
    from sim.models import load_model
    from sim.techniques.eager import EMBEDDING_BWD_FAST_INDICES, embedding_kernels
    m = load_model(GPT)
    f1, b_small = embedding_kernels(m, 1, EMBEDDING_BWD_FAST_INDICES, 0.1)
    _, b_big = embedding_kernels(m, 1, EMBEDDING_BWD_FAST_INDICES + 1, 0.1)
    f2, _ = embedding_kernels(m, 2, 1024, 0.1)
    assert b_big > b_small and f2 > f1
