"""The inference predictor: rooflines of prefill and decode, TP/PP communication, host overheads,
weight formats and memory tiers, batch limits, input errors (physics and closed forms)."""
import pytest
from hypothesis import given, settings, strategies as st

from sim.cost import cost
from sim.errors import InputError
from sim.hardware import load_device, load_host
from sim.hardware.system import Cluster, System
from sim.models import load_model
from sim.ops import Collective
from sim.scenario import predict
from sim.techniques.inference import InferenceIn, StepModel, make_plan, weight_bytes


def run(hw="A100-SXM4-80GB", model="llama-2-7b", gpus=1, whatif=None, **wl):
    wl = {"kind": "inference", "batch": 1, "prompt_len": 128, "gen_len": 32, **wl}
    s = {"hardware": hw, "model": model, "workload": wl, "parameters": "spec"}     # the declared defaults
    if gpus > 1:
        s["cluster"] = {"gpus": gpus}
    if whatif:
        s["whatif"] = whatif
    return predict(s)


def plan_of(hw="A100-SXM4-80GB", model="llama-2-7b", gpus=1, **wl):
    dev = load_device(hw)
    system = System(dev, load_host(dev.default_host), Cluster(gpus, gpus))
    w = InferenceIn.model_validate({"batch": 1, "prompt_len": 128, "gen_len": 32, **wl})
    return make_plan(w, system, load_model(model))


# ---- rooflines ---------------------------------------------------------------------------------
def test_batch1_decode_streams_the_weights_from_hbm():
    p = run()
    dev = load_device("A100-SXM4-80GB")
    w = p.breakdown["memory_use_bytes"]["weights"]
    assert p.breakdown["decode_bound"] == "hbm_bandwidth"
    assert p.metrics["tpot_s"] >= w / dev.hbm_Bps                  # never beats the spec roofline
    assert p.metrics["tpot_s"] <= 1.6 * w / dev.hbm_Bps             # and is dominated by it


def test_long_prefill_is_tensor_core_bound_and_above_the_flop_roofline():
    m = load_model("llama-2-7b")
    p = run(prompt_len=4096, gen_len=1)
    flops = m.flops_per_token(4096) * 4096
    assert p.breakdown["prefill_bound"] == "tensor_core_fp16"
    assert p.metrics["ttft_s"] >= flops / load_device("A100-SXM4-80GB").peak_flops("fp16")


def test_throughput_and_latency_definitions():
    p = run(batch=8, gen_len=64)
    m = p.metrics
    assert m["latency_s"] == pytest.approx(m["ttft_s"] + 63 * m["tpot_s"])     # TPOT excludes the first token
    assert m["tokens_per_s"] == pytest.approx(8 * 64 / m["latency_s"])
    assert p.time_s == m["latency_s"]


@settings(max_examples=8, deadline=None)
@given(f=st.sampled_from([1.5, 2.0, 4.0]), batch=st.sampled_from([1, 16, 128]))
def test_more_hbm_bandwidth_never_slows_decode(f, batch):
    base = run(batch=batch)
    fast = run(batch=batch, whatif={"hbm_bandwidth": f})
    assert fast.metrics["tpot_s"] <= base.metrics["tpot_s"] * (1 + 1e-9)
    assert fast.metrics["ttft_s"] <= base.metrics["ttft_s"] * (1 + 1e-9)


def test_decode_step_grows_with_the_kv_read():
    short, long_ = run(prompt_len=128, batch=32), run(prompt_len=8192, batch=32)
    assert long_.metrics["tpot_s"] > short.metrics["tpot_s"]


# ---- parallelism -------------------------------------------------------------------------------
def test_two_tp_all_reduces_per_layer_of_tokens_x_hidden():
    plan = plan_of(gpus=2, tp=2)
    sm = StepModel(plan)
    tokens = 16
    ar = cost(Collective("all_reduce", tokens * 4096 * 2, 2), plan.system).time_s
    assert sm.layer_dense(tokens).parts["all_reduce"] == pytest.approx(2 * ar)
    assert "all_reduce" not in StepModel(plan_of()).layer_dense(tokens).parts


def test_tp_halves_the_weights_per_gpu_and_speeds_up_decode():
    one, two = run(), run(gpus=2, tp=2)
    w1 = one.breakdown["memory_use_bytes"]["weights"]
    w2 = two.breakdown["memory_use_bytes"]["weights"]
    assert w2 == pytest.approx(w1 / 2, rel=0.01)
    assert two.metrics["tpot_s"] < one.metrics["tpot_s"]
    assert two.metrics["tokens_per_s_per_gpu"] < one.metrics["tokens_per_s_per_gpu"]  # communication is not free


def test_pipeline_stages_run_one_after_another_at_batch_one():
    one, two = run(), run(gpus=2, pp=2)
    assert two.metrics["tpot_s"] >= one.metrics["tpot_s"] * 0.99      # same bytes, sequential stages, plus sends
    assert two.breakdown["decode_parts_s"]["send_recv"] > 0


def test_tp_larger_than_the_cluster_is_an_error():
    with pytest.raises(InputError, match="tp"):
        run(tp=2)


# ---- host overheads ----------------------------------------------------------------------------
def test_eager_small_model_is_host_dispatch_bound_and_graphs_remove_it():
    eager = run(model="gpt3-125m", cuda_graphs=False)
    graph = run(model="gpt3-125m", cuda_graphs=True)
    assert eager.breakdown["decode_bound"] == "host_dispatch"
    assert graph.metrics["tpot_s"] < eager.metrics["tpot_s"]
    from sim.cost.efficiency import PARAMS
    plan = plan_of(model="gpt3-125m")
    kernels = StepModel(plan).step(n_decode=1, decode_ctx=200).kernels
    assert eager.metrics["tpot_s"] >= kernels * PARAMS["infer_eager_dispatch_s"].default


def test_every_step_pays_the_framework_overhead():
    from sim.cost.efficiency import PARAMS
    p = run(gen_len=11)
    assert p.breakdown["decode_parts_s"]["step_overhead"] == pytest.approx(10 * PARAMS["infer_step_overhead_s"].default)


# ---- weight formats ----------------------------------------------------------------------------
@pytest.mark.parametrize("weights,expected", [
    ("fp16", 2.0), ("int8", 1.0), ("int4", 0.5 + 2 / 128), ("int3", 0.375 + 2 / 128), ("nf4", 0.5 + 4 / 64),
])
def test_bytes_per_weight_include_scales(weights, expected):
    bpw = run(weights=weights).breakdown["weight_format"]["bytes_per_weight"]
    assert bpw == pytest.approx(expected, rel=0.01)


def test_fp6_is_three_quarters_of_a_byte_plus_per_channel_scales():
    bpw = run(weights="fp6").breakdown["weight_format"]["bytes_per_weight"]
    assert 0.75 < bpw < 0.76


def test_unstructured_sparsity_stores_values_and_indices_of_the_nonzeros():
    # Flash-LLM Tiled-CSL: 2 B value + 2 B location per nonzero
    bpw = run(sparsity=0.8).breakdown["weight_format"]["bytes_per_weight"]
    assert bpw == pytest.approx(0.2 * (2 + 2), rel=0.01)


def test_w8a8_runs_on_fp8_tensor_cores_where_they_exist():
    h = plan_of("H100-SXM5-80GB", weights="fp8")
    a = plan_of("A100-SXM4-80GB", weights="fp8")
    assert (h.gemm_dtype, h.w_dtype) == ("fp8", None)
    assert (a.gemm_dtype, a.w_dtype) == ("fp16", "fp8")                # Ampere: weight-only FP8
    assert (plan_of(weights="int8").gemm_dtype, plan_of(weights="int8", act_dtype="bf16").w_dtype) == ("int8", "int8")


def test_w4a4_uses_int4_tensor_cores_or_falls_back_to_int8():
    assert plan_of("A100-SXM4-80GB", weights="w4a4").gemm_dtype == "int4"
    assert plan_of("H100-SXM5-80GB", weights="w4a4").gemm_dtype == "int8"


def test_low_bit_weights_speed_up_memory_bound_decode_by_at_most_the_byte_ratio():
    f16, i4 = run(), run(weights="int4")
    ratio = f16.metrics["tpot_s"] / i4.metrics["tpot_s"]
    assert 1.5 < ratio < 2 / (0.5 + 2 / 128)


def test_unfused_dequantisation_costs_an_extra_pass_over_the_weights():
    fused, unfused = run(weights="int4"), run(weights="int4", dequant="unfused")
    assert unfused.metrics["tpot_s"] > run().metrics["tpot_s"] > fused.metrics["tpot_s"]


# ---- memory ------------------------------------------------------------------------------------
def test_70b_fp16_does_not_fit_one_80gb_gpu_but_fits_two():
    one = run(model="llama-2-70b")
    two = run(model="llama-2-70b", gpus=2, tp=2)
    assert not one.fits and one.warnings
    assert two.fits
    assert one.memory_bytes["hbm"] > 80e9


def test_weight_bytes_match_the_parameter_count_in_fp16():
    plan = plan_of()
    assert weight_bytes(plan)["total"] == pytest.approx(2 * load_model("llama-2-7b").n_params(), rel=1e-6)


def test_max_batch_is_the_largest_that_fits():
    p = run(batch="max", prompt_len=1024, gen_len=1024)
    b = p.metrics["batch"]
    assert b > 1 and p.fits
    assert run(batch=b, prompt_len=1024, gen_len=1024).fits
    assert not run(batch=b + 1, prompt_len=1024, gen_len=1024).fits


def test_quantised_kv_raises_the_max_batch():
    # chunked prefill keeps the activation workspace small, so the KV bytes set the limit
    kw = dict(batch="max", prompt_len=2048, gen_len=512, prefill_chunk=128)
    f16 = run(**kw).metrics["batch"]
    i4 = run(kv_cache="int4", **kw).metrics["batch"]
    assert 3.0 < i4 / f16 <= 2 / (0.5 + 4 / 128) + 0.05


def test_whole_prompt_prefill_workspace_limits_the_batch():
    whole = run(batch="max", prompt_len=2048, gen_len=512).metrics["batch"]
    chunked = run(batch="max", prompt_len=2048, gen_len=512, prefill_chunk=128).metrics["batch"]
    assert whole < chunked


# ---- input errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("wl,field", [
    ({"weights": "int5"}, "workload.weights"),
    ({"kv_cache": "fp4x"}, "workload.kv_cache"),
    ({"batch": 0}, "workload.batch"),
    ({"speculative": {"draft_model": "gpt3-125m", "k": 4, "acceptance": 0.5, "mean_accepted": 2}}, "workload.speculative"),
    ({"speculative": {"draft_model": "gpt3-125m", "k": 2, "mean_accepted": 4}}, "workload.speculative"),
    ({"offload": {"weights": "cpu", "resident_weights": 1.5}}, "workload.offload"),
    ({"offload": {"weights": "disk"}}, "workload.offload.weights"),
    ({"prompt_len": 10, "tokens": 3}, "workload.tokens"),
])
def test_bad_workloads_name_the_field(wl, field):
    with pytest.raises(InputError) as e:
        run(**wl)
    assert e.value.field.startswith(field)
