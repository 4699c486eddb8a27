"""The model zoo against published parameter counts and the closed forms of Megatron-LM and Kaplan."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from sim.errors import InputError
from sim.models import ModelSpec, load_model, names

# Published counts are rounded to 2-3 significant figures, so 3% is the default tolerance.
# Larger or notable gaps, explained:
TOLERANCE = {
    # Table 1 prints 1.7 for 12*24*2304^2(1 + ...) = 1.652e9: the table rounds to one decimal.
    "megatron-1.7b": 0.03,
}
# Counts published to every digit (model cards / released weights): these must match exactly.
EXACT = {
    "bloom-176b": 176_247_271_424,     # BLOOM model card
    "llama-2-7b": 6_738_415_616,       # the released Llama 2 7B weights
    "mixtral-8x7b": 46_702_792_704,    # the released Mixtral 8x7B weights ("46.7B")
}


@pytest.mark.parametrize("name", names())
def test_zoo_count_matches_published(name):
    m = load_model(name)
    assert m.source and m.published_params_b, f"{name} must cite its source and published count"
    rel = m.n_params() / (m.published_params_b * 1e9) - 1
    assert abs(rel) <= TOLERANCE.get(name, 0.03), f"{name}: {m.n_params():,} vs {m.published_params_b}B"


@pytest.mark.parametrize("name,count", sorted(EXACT.items()))
def test_exact_counts(name, count):
    assert load_model(name).n_params() == count


def test_brief_models_present():
    want = ["gpt3-125m", "gpt3-350m", "gpt3-760m", "gpt3-1.3b", "gpt3-2.7b", "gpt3-6.7b", "gpt3-13b",
            "gpt3-175b", "megatron-1.7b", "megatron-3.6b", "megatron-7.5b", "megatron-18b", "megatron-39b",
            "megatron-76b", "megatron-145b", "megatron-310b", "megatron-530b", "megatron-1t", "opt-1.3b",
            "opt-2.7b", "opt-6.7b", "opt-13b", "opt-30b", "opt-66b", "opt-175b", "llama-2-7b", "llama-2-13b",
            "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "qwen2-7b", "qwen2-72b",
            "bloom-176b", "mt-nlg-530b", "mixtral-8x7b"]
    assert set(want) <= set(names())


def test_megatron_reference_rows_dims():
    """end_to_end.csv E0006-E0010 state hidden and layers of the 2021 table's models."""
    for name, h, l in [("megatron-76b", 10240, 60), ("megatron-145b", 12288, 80), ("megatron-310b", 16384, 96),
                       ("megatron-530b", 20480, 105), ("megatron-1t", 25600, 128)]:
        m = load_model(name)
        assert (m.hidden, m.layers, m.vocab, m.seq_len) == (h, l, 51200, 2048)


def _megatron_closed_form(l, h, V, s):
    """Narayanan et al. 2021: P = 12 l h^2 (1 + 13/(12h) + (V+s)/(12lh)), in integers."""
    return 12 * l * h * h + 13 * l * h + (V + s) * h


@pytest.mark.parametrize("name", [n for n in names() if n.startswith("megatron-")])
def test_megatron_closed_form_zoo(name):
    m = load_model(name)
    # the closed form leaves out the final LayerNorm (2h), which is all that differs
    assert m.n_params() - m.final_norm_params() == _megatron_closed_form(m.layers, m.hidden, m.vocab, m.seq_len)


def _gpt(l, heads, d, V, s):
    h = heads * d
    return ModelSpec(layers=l, hidden=h, heads=heads, ffn=4 * h, vocab=V, seq_len=s, norm="layernorm",
                     bias="all", position_embedding="learned", tied_embeddings=True)


@settings(max_examples=40, deadline=None)
@given(l=st.integers(1, 128), heads=st.integers(1, 64), d=st.sampled_from([32, 64, 80, 128]),
       V=st.integers(1000, 260000), s=st.integers(128, 32768))
def test_megatron_closed_form_property(l, heads, d, V, s):
    m = _gpt(l, heads, d, V, s)
    assert m.n_params() - 2 * m.hidden == _megatron_closed_form(l, m.hidden, V, s)


@settings(max_examples=40, deadline=None)
@given(l=st.integers(1, 128), heads=st.integers(1, 64), d=st.sampled_from([64, 128]),
       V=st.integers(1000, 260000), s=st.integers(128, 32768), B=st.integers(1, 4096))
def test_narayanan_flops(l, heads, d, V, s, B):
    """Narayanan et al. 2021 Sec. 5.1: per iteration, F = 96 B s l h^2 (1 + s/6h + V/16lh) with full
    recomputation (forward, recompute, backward = 4 passes of the layers, 3 of the LM head), and
    72 B s l h^2 (1 + s/6h + V/12lh) without. Their attention count is not halved for causality."""
    m = _gpt(l, heads, d, V, s)
    h = m.hidden
    no_rc = 72 * B * s * l * h * h * (1 + s / (6 * h) + V / (12 * l * h))
    full = 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h))
    assert B * s * 3 * m.flops_per_token(s, causal=False) == pytest.approx(no_rc, rel=1e-12)
    assert B * s * m.training_flops_per_token(s, causal=False, recompute="none") == pytest.approx(no_rc, rel=1e-12)
    assert B * s * m.training_flops_per_token(s, causal=False, recompute="full") == pytest.approx(full, rel=1e-12)


def test_kaplan_forward_flops():
    """Kaplan et al. 2020 Table 1: C_forward = 2N + 2 n_layer n_ctx d_attn, N the non-embedding
    weights (plus the de-embedding 2 d_model n_vocab). Their context term is our causal count."""
    m = load_model("gpt3-175b")
    s = 2048
    n_matmul = m.layers * m.matmul_params_per_layer()
    kaplan = 2 * n_matmul + 2 * m.layers * s * m.d_attn + 2 * m.hidden * m.vocab
    assert m.flops_per_token(s, causal=True) == pytest.approx(kaplan, rel=1e-12)
    # and ~2N per token overall: the familiar rule of thumb, off by the attention share (< 3% here)
    assert m.flops_per_token(s) / (2 * m.n_params()) == pytest.approx(1.0, abs=0.03)


@settings(max_examples=30, deadline=None)
@given(s=st.integers(1, 1 << 17))
def test_causal_halves_attention(s):
    m = load_model("llama-2-7b")
    full, causal = m.flops_per_token(s, causal=False), m.flops_per_token(s, causal=True)
    assert full - causal == pytest.approx(2 * m.layers * s * m.d_attn)
    assert m.training_flops_per_token(s, recompute="selective") - m.training_flops_per_token(s) == \
        pytest.approx(m.attention_flops_per_token(s))


def test_gqa_kv_bytes_and_params():
    # KV cache per token in fp16: LLaMA-2-7B 2*32*32*128*2 B = 0.5 MiB; 70B with 8 KV heads 320 KiB
    assert load_model("llama-2-7b").kv_bytes_per_token(2) == 512 * 1024
    m70 = load_model("llama-2-70b")
    assert m70.kv_bytes_per_token(2) == 320 * 1024
    h = m70.hidden
    assert m70.attn_matmul_params() == 2 * h * h + 2 * h * 8 * 128
    mha = ModelSpec(**{**m70.model_dump(), "kv_heads": None})
    assert mha.n_params() - m70.n_params() == m70.layers * 2 * h * (h - 8 * 128)
    assert mha.kv_bytes_per_token(1) == 8 * m70.kv_bytes_per_token(1)


def test_moe_counts():
    m = load_model("mixtral-8x7b")
    # Jiang et al. 2024: 47B total, 13B active ("12.9B" on the release page)
    assert m.n_active_params() / 1e9 == pytest.approx(12.9, rel=0.01)
    per_expert = 3 * m.hidden * m.ffn
    assert m.params_per_layer() - m.active_params_per_layer() == (m.experts - m.top_k) * per_expert
    assert m.router_params() == m.hidden * m.experts
    dense = load_model("mistral-7b")    # same attention and MLP dims, one expert
    assert m.flops_per_token(4096) - dense.flops_per_token(4096) == \
        2 * m.layers * (per_expert + m.router_params())


@settings(max_examples=30, deadline=None)
@given(experts=st.integers(1, 64), data=st.data())
def test_active_le_total(experts, data):
    top_k = data.draw(st.integers(1, experts))
    m = ModelSpec(layers=2, hidden=256, heads=4, ffn=512, vocab=1000, gated_mlp=True, experts=experts, top_k=top_k)
    assert m.n_active_params() <= m.n_params()
    assert (m.n_active_params() == m.n_params()) == (top_k == experts)


def test_conventions_of_families():
    gpt, llama, qwen = load_model("gpt3-175b"), load_model("llama-2-7b"), load_model("qwen2-7b")
    h = gpt.hidden
    assert gpt.norm_params_per_layer() == 4 * h and llama.norm_params_per_layer() == 2 * llama.hidden
    assert gpt.bias_params_per_layer() == 3 * h + h + 4 * h + h
    assert llama.bias_params_per_layer() == 0
    assert qwen.bias_params_per_layer() == qwen.d_attn + 2 * qwen.d_kv
    assert gpt.output_params() == 0 and llama.output_params() == llama.vocab * llama.hidden
    assert gpt.embedding_params() == (gpt.vocab + 2048) * h        # learned positions
    assert llama.embedding_params() == llama.vocab * llama.hidden  # rope: none
    bloom = load_model("bloom-176b")
    assert bloom.embedding_params() == bloom.vocab * bloom.hidden + 2 * bloom.hidden   # alibi + embedding LN


# ---- loading and errors ------------------------------------------------------------------------
def test_inline_path_and_base(tmp_path):
    dims = {"layers": 2, "hidden": 64, "heads": 4, "ffn": 256, "vocab": 100}
    a = load_model(dims)
    p = tmp_path / "m.json"
    p.write_text(json.dumps(dims))
    assert load_model(str(p)) == a
    y = tmp_path / "m.yaml"
    y.write_text("layers: 2\nhidden: 64\nheads: 4\nffn: 256\nvocab: 100\n")
    assert load_model(y) == a
    draft = load_model({"base": "llama-2-7b", "layers": 1})
    base = load_model("llama-2-7b")
    assert draft.layers == 1 and draft.hidden == base.hidden and draft.published_params_b is None
    assert draft.n_params() == base.n_params() - 31 * base.params_per_layer()
    assert load_model(a) is a


@pytest.mark.parametrize("dims,field", [
    ({"layers": 0}, "model.layers"),
    ({"hidden": 0}, "model.hidden"),
    ({"kv_heads": 3}, "model.kv_heads"),
    ({"hiden": 5}, "model.hiden"),
    ({"hiden": 5, "hidden": None}, "model.hiden"),
    ({"top_k": 4, "experts": 2}, "model.top_k"),
    ({"heads": 5}, "model.heads"),
    ({"position_embedding": "learned"}, "model.max_positions"),
    ({"norm": "batchnorm"}, "model.norm"),
])
def test_inline_errors_name_the_field(dims, field):
    base = {"layers": 2, "hidden": 64, "heads": 4, "ffn": 256, "vocab": 100}
    with pytest.raises(InputError) as e:
        load_model({**base, **dims})
    assert e.value.field == field, str(e.value)


def test_missing_field_and_unknown_name():
    with pytest.raises(InputError) as e:
        load_model({"layers": 2, "hidden": 64, "heads": 4, "vocab": 100})
    assert e.value.field == "model.ffn"
    with pytest.raises(InputError) as e:
        load_model("llama-9-1t")
    assert "llama-2-70b" in str(e.value) and "gpt3-175b" in str(e.value)
    with pytest.raises(InputError):
        load_model({"base": "nope", "layers": 1})
    with pytest.raises(InputError):
        load_model(42)


def test_docs_table_lists_every_zoo_model():
    from pathlib import Path
    doc = (Path(__file__).parents[1] / "docs" / "models.md").read_text()
    missing = [n for n in names() if f"| {n} |" not in doc]
    assert not missing, f"docs/models.md table lacks {missing}"
