"""Speculative decoding (Leviathan et al. expected tokens, draft/verify costs, hierarchy) and
offloaded inference (prefetch pipeline closed form, placement, compute-bound batch)."""
import pytest
from hypothesis import given, settings, strategies as st

from sim.hardware import load_device, load_host
from sim.hardware.system import Cluster, System
from sim.models import load_model
from sim.scenario import predict
from sim.techniques.inference import Agg, InferenceIn, OffloadIn, make_plan
from sim.techniques.offload_inference import OffloadModel, min_tokens_compute_bound
from sim.techniques.speculative import expected_tokens

DRAFT = {"layers": 2, "hidden": 768, "heads": 12, "ffn": 3072, "vocab": 32000, "gated_mlp": True}


def run(hw="A100-SXM4-80GB", model="llama-2-7b", **wl):
    wl = {"kind": "inference", "batch": 1, "prompt_len": 256, "gen_len": 128, **wl}
    return predict({"hardware": hw, "model": model, "workload": wl})


# ---- speculative -------------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(a=st.floats(0.0, 0.99), k=st.integers(1, 12))
def test_expected_tokens_is_the_geometric_sum(a, k):
    spec = InferenceIn.model_validate({"batch": 1, "prompt_len": 1, "gen_len": 2,
                                       "speculative": {"draft_model": "self", "k": k, "acceptance": a}}).speculative
    E = expected_tokens(spec)
    assert E == pytest.approx(sum(a ** i for i in range(k + 1)))      # (1 - a^(k+1)) / (1 - a)
    assert 1.0 <= E <= k + 1


def test_mean_accepted_is_used_as_given():
    p = run(speculative={"draft_model": DRAFT, "k": 5, "mean_accepted": 3.0})
    assert p.metrics["spec_tokens_per_step"] == 3.0


def test_speedup_rises_with_acceptance_and_a_useless_draft_loses():
    ar = run().metrics["tpot_s"]
    t = [run(speculative={"draft_model": DRAFT, "k": 4, "acceptance": a}).metrics["tpot_s"] for a in (0.0, 0.5, 0.8, 0.95)]
    assert t[0] > ar                               # nothing accepted: the draft is pure overhead
    assert t[1] > t[2] > t[3]
    assert ar / t[3] < 5                           # never more than k+1 tokens per target step


def test_step_is_k_draft_steps_plus_one_verification():
    p = run(speculative={"draft_model": DRAFT, "k": 4, "mean_accepted": 2.0})
    m = p.metrics
    assert m["tpot_s"] == pytest.approx(m["spec_step_s"] / 2.0, rel=0.02)
    assert 0 < m["spec_draft_share"] < 0.5         # a 2-layer draft is cheap next to a 7B verification


def test_self_draft_with_a_kv_budget_pays_off_at_long_context_only():
    spec = {"draft_model": "self", "draft_kv_budget": 2048, "k": 4, "acceptance": 0.8}
    short = run(prompt_len=512, speculative=spec).metrics["tpot_s"] / run(prompt_len=512).metrics["tpot_s"]
    long_ = run(prompt_len=60000, speculative=spec).metrics["tpot_s"] / run(prompt_len=60000).metrics["tpot_s"]
    assert short > 1.0 > long_


def test_hierarchical_draft_is_cheaper_than_its_middle_level_alone():
    mid = {"draft_model": "self", "draft_kv_budget": 2048, "k": 6, "acceptance": 0.8}
    flat = run(prompt_len=60000, speculative=mid).metrics["tpot_s"]
    tri = run(prompt_len=60000, speculative={**mid, "draft_speculative": {"draft_model": DRAFT, "k": 1, "acceptance": 0.7}})
    assert tri.metrics["tpot_s"] < flat


def test_offloaded_target_gains_nearly_the_accepted_tokens():
    # PCIe dominates both the plain step and the verification, so speedup -> E
    off = {"weights": "cpu"}
    ar = run(offload=off).metrics["tpot_s"]
    sp = run(offload=off, speculative={"draft_model": DRAFT, "k": 4, "mean_accepted": 3.0}).metrics["tpot_s"]
    assert 2.7 < ar / sp <= 3.0


# ---- offload -----------------------------------------------------------------------------------
def _plan(hw="A100-SXM4-80GB", model="llama-2-7b", **wl):
    dev = load_device(hw)
    system = System(dev, load_host(dev.default_host), Cluster(1, 1))
    w = InferenceIn.model_validate({"batch": 1, "prompt_len": 128, "gen_len": 32, **wl})
    return make_plan(w, system, load_model(model))


@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 96), k=st.floats(0.1, 10))
def test_prefetch_pipeline_closed_form(L, k):
    plan = _plan(offload={"weights": "cpu"})
    om = OffloadModel(plan, OffloadIn(weights="cpu"))
    om.place(1, 160, 128)
    X = om.layer_fetch(1, 160, ()).time
    layer = Agg(time=X * k, flops=1.0, kernels=1)        # per-layer compute: k times the fetch
    got = om.stage(layer, L, 1, 160, ()).time
    assert got == pytest.approx(X + (L - 1) * max(layer.time, X) + layer.time)
    om_np = OffloadModel(plan, OffloadIn(weights="cpu", prefetch=False))
    om_np.place(1, 160, 128)
    assert om_np.stage(layer, L, 1, 160, ()).time == pytest.approx(L * (layer.time + X))
    assert got <= om_np.stage(layer, L, 1, 160, ()).time


def test_full_weight_offload_streams_every_layer_over_pcie_each_step():
    p = run(offload={"weights": "cpu"}, batch=1)
    assert p.breakdown["decode_bound"] == "pcie"
    assert p.memory_bytes["host"] == pytest.approx(p.breakdown["memory_use_bytes"]["weights_offloaded"])
    from sim.cost import cost
    from sim.ops import Transfer
    dev = load_device("A100-SXM4-80GB")
    sysm = System(dev, load_host(dev.default_host), Cluster(1, 1))
    per_step = cost(Transfer("host", "hbm", p.memory_bytes["host"]), sysm).time_s
    assert p.metrics["tpot_s"] >= per_step * 0.99


def test_resident_fraction_shortens_the_stream():
    full = run(offload={"weights": "cpu"}).metrics["tpot_s"]
    half = run(offload={"weights": "cpu", "resident_weights": 0.5}).metrics["tpot_s"]
    assert half == pytest.approx(full / 2, rel=0.1)


def test_nvme_is_not_faster_than_host_memory():
    cpu = run(offload={"weights": "cpu"}).metrics["tpot_s"]
    nvme = run(offload={"weights": "nvme"}).metrics["tpot_s"]
    assert nvme >= cpu


def test_throughput_grows_with_batch_until_compute_bound():
    plan = _plan(offload={"weights": "cpu"})
    om = OffloadModel(plan, OffloadIn(weights="cpu"))
    om.place(1, 160, 128)
    t = min_tokens_compute_bound(plan, om)
    from sim.techniques.inference import StepModel
    sm = StepModel(plan)
    X = om.layer_fetch(0, 0, ()).time
    C = lambda n: sm.layer_dense(n).time + sm.layer_attn(n, 1, 1).time   # noqa: E731
    assert C(t) >= X > C(t - 1)
    dev = load_device("A100-SXM4-80GB")
    # closed form of the crossover: 2 FLOP per weight per token at the TC rate = weight bytes over PCIe
    assert 0.3 < t / (dev.peak_flops("fp16") * X / (2 * plan.gemm_weight_bytes_per_layer()[1])) < 3


def test_kv_offload_auto_keeps_what_fits_and_streams_the_rest():
    p = run(prompt_len=60000, batch=4, prefill_chunk=4096, offload={"kv_cache": "cpu", "resident_kv": "auto"})
    use = p.breakdown["memory_use_bytes"]
    assert 0 < use["resident_kv_fraction"] < 1
    assert p.memory_bytes["hbm"] <= load_device("A100-SXM4-80GB").hbm_bytes
    assert p.breakdown["decode_bound"] == "pcie"
