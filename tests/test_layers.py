"""The per-layer op decomposition against the closed forms of the model counts."""
import pytest
from hypothesis import given, settings, strategies as st

from sim.errors import InputError
from sim.models import ModelSpec, load_model
from sim.ops import DTYPE_BYTES, Attention, Elementwise, Gemm
from sim.techniques.layers import (backward_ops, embedding_ops, layer_backward_ops, layer_forward_ops,
                                   lm_head_ops)


def gemms(ops):
    return [o for o in ops if isinstance(o, Gemm)]


def gemm_flops(ops):
    return sum(2 * o.m * o.n * o.k * o.batch for o in gemms(ops))


def attn_flops(op: Attention):
    """FlashAttention convention: 4 B Sq Skv H d forward, halved when causal."""
    return 4 * op.batch * op.seq_q * op.seq_kv * op.heads * op.head_dim * (0.5 if op.causal else 1)


def by_name(ops):
    return {o.name: o for o in ops}


def test_names_and_order():
    ops = layer_forward_ops(load_model("llama-2-7b"), 2, 128, 128)
    assert [o.name for o in ops] == ["norm1", "qkv", "rope", "attn", "proj", "residual1", "norm2",
                                     "mlp_up", "act", "mlp_down", "residual2"]
    moe = layer_forward_ops(load_model("mixtral-8x7b"), 2, 128, 128)
    assert [o.name for o in moe][7:] == ["router", "moe_dispatch", "mlp_up", "act", "mlp_down",
                                         "moe_combine", "residual2"]
    gpt = [o.name for o in layer_forward_ops(load_model("gpt3-175b"), 1, 64, 64)]
    assert "rope" not in gpt


def test_gpt_layer_is_24_t_h2():
    """Non-gated 4h MLP with MHA: the layer's GEMMs are 24 * tokens * h^2 FLOPs (Narayanan et al.)."""
    m = load_model("gpt3-175b")
    B, s = 4, 2048
    for tp in (1, 2, 8):
        ops = layer_forward_ops(m, B, s, s, tp=tp)
        assert gemm_flops(ops) * tp == 24 * B * s * m.hidden ** 2


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(["llama-2-70b", "llama-3.1-8b", "qwen2-72b", "opt-30b", "mixtral-8x7b",
                             "gpt3-6.7b", "bloom-176b"]),
       tp_exp=st.integers(0, 3), batch=st.integers(1, 8), seq=st.integers(1, 4096))
def test_layer_flops_match_model_count(name, tp_exp, batch, seq):
    """Every rank's GEMMs x tp = 2 x tokens x the layer's matmul weights (active experts for MoE,
    the router replicated on each rank); attention x tp = the model's attention count."""
    m, tp = load_model(name), 2 ** tp_exp
    ops = layer_forward_ops(m, batch, seq, seq, tp=tp)
    tokens = batch * seq
    router = 2 * tokens * m.router_params()
    split = gemm_flops([o for o in ops if o.name != "router"])
    expect = 2 * tokens * (m.matmul_params_per_layer(active=True) - m.router_params())
    if m.is_moe:   # balanced routing rounds tokens per expert up
        assert split * tp == pytest.approx(expect, rel=m.experts / (tokens * m.top_k) + 1e-12)
    else:
        assert split * tp == expect
    assert gemm_flops([o for o in ops if o.name == "router"]) == router
    attn = by_name(ops)["attn"]
    assert attn_flops(attn) * tp == pytest.approx(tokens * m.attention_flops_per_token(seq) / m.layers)


@pytest.mark.parametrize("name", ["gpt3-13b", "llama-2-70b", "qwen2-7b", "mixtral-8x7b"])
@pytest.mark.parametrize("w_dtype", [None, "int4", "fp8"])
def test_weight_bytes_match_params(name, w_dtype):
    """The weights the GEMMs read, over all ranks, are the layer's parameters minus norms and biases."""
    m = load_model(name)
    tp = 4 if m.heads % 4 == 0 else 2
    ops = layer_forward_ops(m, 1, 16, 16, tp=tp, dtype="bf16", w_dtype=w_dtype)
    wb = DTYPE_BYTES[w_dtype or "bf16"]
    split = sum(o.n * o.k * o.batch * DTYPE_BYTES[o.w_dtype or o.dtype] for o in gemms(ops) if o.name != "router")
    router = sum(o.n * o.k * DTYPE_BYTES[o.dtype] for o in gemms(ops) if o.name == "router")
    non_matmul = m.norm_params_per_layer() + m.bias_params_per_layer()
    assert split * tp == (m.params_per_layer() - non_matmul - m.router_params()) * wb
    assert router == m.router_params() * 2
    assert all(o.w_dtype == w_dtype for o in gemms(ops) if o.name != "router")


def test_gqa_shrinks_qkv_and_tp_divides():
    m70 = load_model("llama-2-70b")
    mha = ModelSpec(**{**m70.model_dump(), "kv_heads": None})
    q70, qmha = by_name(layer_forward_ops(m70, 1, 8, 8))["qkv"], by_name(layer_forward_ops(mha, 1, 8, 8))["qkv"]
    assert q70.n == (64 + 2 * 8) * 128 and qmha.n == 3 * 8192 and q70.k == qmha.k == 8192
    one, eight = by_name(layer_forward_ops(m70, 1, 8, 8)), by_name(layer_forward_ops(m70, 1, 8, 8, tp=8))
    for name in ("qkv", "mlp_up"):
        assert eight[name].n * 8 == one[name].n and eight[name].k == one[name].k
    for name in ("proj", "mlp_down"):
        assert eight[name].k * 8 == one[name].k and eight[name].n == one[name].n
    assert (eight["attn"].heads, eight["attn"].kv_heads) == (8, 1)
    # tp beyond the KV heads replicates them: at least one per rank
    sixteen = by_name(layer_forward_ops(m70, 1, 8, 8, tp=16))
    assert (sixteen["attn"].heads, sixteen["attn"].kv_heads) == (4, 1)
    assert sixteen["qkv"].n == (4 + 2) * 128


def test_attention_op_fields():
    m = load_model("llama-3.1-8b")
    a = by_name(layer_forward_ops(m, 16, 1, 4096, tp=2, kv_dtype="fp8", attn_impl="paged", causal=False))["attn"]
    assert (a.batch, a.heads, a.kv_heads, a.seq_q, a.seq_kv, a.head_dim) == (16, 16, 4, 1, 4096, 128)
    assert (a.causal, a.impl, a.kv_dtype, a.pass_) == (False, "paged", "fp8", "fwd")
    # decode: every GEMM is one row per sequence
    assert all(g.m == 16 for g in gemms(layer_forward_ops(m, 16, 1, 4096)))


def test_sequence_parallel_splits_norms_and_residuals():
    m = load_model("gpt3-175b")
    plain = by_name(layer_forward_ops(m, 2, 2048, 2048, tp=8))
    sp = by_name(layer_forward_ops(m, 2, 2048, 2048, tp=8, sp=True))
    for name in ("norm1", "norm2", "residual1", "residual2"):
        assert sp[name].bytes_written * 8 == plain[name].bytes_written
    assert sp["qkv"] == plain["qkv"]          # GEMMs see the gathered sequence


def test_moe_tokens_per_expert_and_ep():
    m = load_model("mixtral-8x7b")
    tokens = 4 * 1024
    up = by_name(layer_forward_ops(m, 4, 1024, 1024))["mlp_up"]
    assert (up.batch, up.m) == (8, tokens * 2 // 8) and up.n == 2 * m.ffn
    up4 = by_name(layer_forward_ops(m, 4, 1024, 1024, ep=4))["mlp_up"]
    assert (up4.batch, up4.m) == (2, tokens * 2 * 4 // 8)
    assert up4.batch * up4.m == up.batch * up.m       # each rank still computes tokens*top_k pairs


def test_whole_model_forward_equals_flops_per_token():
    """layers x layer + LM head, over all ranks, = tokens x flops_per_token (the cross-check between
    sim.models and this module)."""
    for name in ("llama-2-70b", "gpt3-175b", "qwen2-72b"):
        m, B, s, tp = load_model(name), 2, 4096, 8
        layer = layer_forward_ops(m, B, s, s, tp=tp)
        per_rank = m.layers * (gemm_flops(layer) + attn_flops(by_name(layer)["attn"])) + \
            gemm_flops(lm_head_ops(m, B * s, tp=tp))
        pad = -m.vocab % tp        # the vocabulary split rounds up (50257 over 8 ranks)
        assert per_rank * tp == pytest.approx(B * s * (m.flops_per_token(s) + 2 * m.hidden * pad), rel=1e-12)


def test_embedding_and_head():
    m = load_model("gpt3-175b")
    t = 4096
    e = by_name(embedding_ops(m, t, tp=1, dtype="fp16"))
    assert e["embed"].bytes_written == t * m.hidden * 2
    assert e["embed"].bytes_read == t * m.hidden * 2 + 4 * t
    assert "pos_embed" in e and "pos_embed" not in by_name(embedding_ops(load_model("llama-2-7b"), t))
    assert "embed_norm" in by_name(embedding_ops(load_model("bloom-176b"), t))
    head = by_name(lm_head_ops(m, t, tp=8))
    assert head["lm_head"].n * 8 >= m.vocab > (head["lm_head"].n - 1) * 8
    assert head["cross_entropy"].bytes_read == t * head["lm_head"].n * 2
    assert "sample" in by_name(lm_head_ops(m, 8, loss=False))


def test_backward_is_twice_forward_gemms():
    m = load_model("llama-2-13b")
    fwd = layer_forward_ops(m, 2, 1024, 1024, tp=2)
    bwd = layer_backward_ops(m, 2, 1024, 1024, tp=2)
    assert gemm_flops(bwd) == 2 * gemm_flops(fwd)
    assert gemm_flops(layer_backward_ops(m, 2, 1024, 1024, tp=2, weight_grads=False)) == gemm_flops(fwd)
    assert by_name(bwd)["attn_bwd"].pass_ == "bwd"
    assert all(isinstance(o, Elementwise) for o in bwd if o.name.endswith("_bwd") and o.name != "attn_bwd")
    assert [o.name for o in backward_ops(lm_head_ops(m, 8))] == \
        ["cross_entropy_bwd", "lm_head_dgrad", "lm_head_wgrad", "final_norm_bwd"]


@pytest.mark.parametrize("kw,field", [({"tp": 3}, "tp"), ({"tp": 0}, "tp"), ({"dtype": "bf17"}, "dtype"),
                                      ({"w_dtype": "int5"}, "w_dtype"), ({"kv_dtype": "q2"}, "kv_dtype")])
def test_errors(kw, field):
    with pytest.raises(InputError) as e:
        layer_forward_ops(load_model("llama-2-7b"), 1, 8, 8, **kw)
    assert e.value.field == field
    with pytest.raises(InputError) as e:
        layer_forward_ops(load_model("mixtral-8x7b"), 1, 8, 8, ep=3)
    assert e.value.field == "ep"
    with pytest.raises(InputError):     # 28 heads, 4 KV heads: tp=7 splits heads but not KV heads
        layer_forward_ops(load_model("qwen2-7b"), 1, 8, 8, tp=7)
