"""Data-parallel gradient reduction: bytes on the wire (fp32 reduction of 16-bit runs), Megatron-Core's
bucket size rule, the exposed tail of an overlapped reduction, and the FLOP convention of the
FlashAttention README's GPT runs (the published rows' mapping)."""
from math import ceil

import pytest

from analysis import build_published as bp
from sim.cost import cost
from sim.hardware import load_device, load_host
from sim.hardware.system import Cluster, System
from sim.models import load_model
from sim.ops import Collective
from sim.scenario import predict, resolve
from sim.techniques.memory import stage_params
from sim.techniques.parallel import group
from sim.techniques.step import layout_of, price_step
from sim.techniques.training import validate

GPT = {"layers": 8, "hidden": 2048, "heads": 16, "ffn": 8192, "vocab": 51200, "norm": "layernorm",
       "bias": "all", "position_embedding": "learned", "seq_len": 2048}


def scenario(gpus=32, **par):
    """Pure data parallelism over 4 DGX H100 nodes (8 ranks per node), ZeRO-1, two micro-batches."""
    p = {"zero": 1, "overlap_grad_reduce": False}
    p.update(par)
    return {"hardware": "H100-SXM5-80GB", "host": "DGX-H100", "parameters": "spec",
            "cluster": {"gpus": gpus, "gpus_per_node": 8}, "model": GPT,
            "workload": {"kind": "training", "global_batch": 2 * gpus, "micro_batch": 1, "seq_len": 2048,
                         "precision": "bf16", "parallel": p}}


def step_of(sc):
    wl, system, model, _ = resolve(sc)
    wl = validate(wl, system, model)
    return price_step(wl, system, model), wl, system, model


@pytest.mark.parametrize("fp32", [False, True])
def test_unoverlapped_reduction_moves_the_gradient_bytes(fp32):
    """Without overlap one reduce-scatter of every gradient follows the backward and is fully exposed;
    its buffer is 2 bytes per parameter, or 4 when gradients are reduced in fp32 (Megatron-LM for bf16)."""
    sc = scenario(grad_reduce_in_fp32=fp32)
    step, wl, system, model = step_of(sc)
    L = layout_of(wl)
    n = sum(stage_params(model, L, 0, model.layers))
    rs = cost(Collective("reduce_scatter", n * (4.0 if fp32 else 2.0), L.dp), group(system, L, "dp")[1]).time_s
    p = predict(sc)
    assert p.breakdown["phases_s"]["dp_comm_exposed"] == pytest.approx(rs, rel=1e-9)


def test_fp32_reduction_costs_more_but_never_twice_the_iteration():
    base = predict(scenario()).time_s
    fp32 = predict(scenario(grad_reduce_in_fp32=True))
    exposed = fp32.breakdown["phases_s"]["dp_comm_exposed"]
    # the only change is the reduction's bytes: the iteration grows by (at most) its extra exposed time
    assert base < fp32.time_s <= base + exposed * (1 + 1e-9)


@pytest.mark.parametrize("dp", [16, 32, 64, 128])
def test_bucket_size_is_megatron_cores_default(dp):
    """Megatron-Core DDP: bucket_size = max(40M, 1M x dp) parameters when overlapping."""
    sc = scenario(gpus=dp, overlap_grad_reduce=True)
    step, wl, system, model = step_of(sc)
    n = sum(stage_params(model, layout_of(wl), 0, model.layers))
    assert step.dp_k[0] == ceil(n / max(40e6, 1e6 * dp))


def test_overlapped_tail_is_what_the_last_backward_cannot_hide():
    """k buckets of c seconds, one ready every B/k during the last backward B, on one stream: the
    exposed tail is max(c, k c - (k-1) B/k): at least one bucket, at least what outlasts B, at most k c."""
    sc = scenario(overlap_grad_reduce=True, grad_reduce_in_fp32=True)
    step, *_ = step_of(sc)
    k, c, B = step.dp_k[0], step.dp_c[0], step.B[0][0]
    exposed = predict(sc).breakdown["phases_s"]["dp_comm_exposed"]
    assert k > 1
    assert exposed == pytest.approx(max(c, k * c - (k - 1) * B / k), rel=1e-9)
    assert max(c, k * c - B) <= exposed * (1 + 1e-9) and exposed <= k * c * (1 + 1e-9)


def test_batch_path_takes_the_reduction_width():
    from sim.techniques.training import evaluate_many
    scs = [scenario(grad_reduce_in_fp32=f) for f in (False, True)]
    df = evaluate_many(scs, memory=True)
    for sc, t, hbm in zip(scs, df["iteration_time_s"], df["memory_hbm_gb"]):
        p = predict(sc)
        assert t == pytest.approx(p.time_s, rel=1e-9)
        assert hbm == pytest.approx(p.metrics["memory_hbm_gb"], rel=1e-9)


def test_fp32_gradient_buffer_holds_four_bytes_per_parameter():
    """ZeRO-1 keeps every gradient of the stage: 2 more bytes per parameter in fp32, times the
    allocator's fragmentation reserve."""
    from sim.cost.efficiency import eff
    step, wl, system, model = step_of(scenario())
    n = sum(stage_params(model, layout_of(wl), 0, model.layers))
    a = predict(scenario()).memory_bytes["hbm"]
    b = predict(scenario(grad_reduce_in_fp32=True)).memory_bytes["hbm"]
    assert b - a == pytest.approx(2.0 * n * (1 + eff(system.device, "mem_fragmentation")), rel=1e-9)


# ---- the FlashAttention README's FLOP convention (published facts) --------------------------------
@pytest.mark.parametrize("layers, hidden, tokens_per_s, tflops", [
    (12, 768, 1310e3, 149), (24, 1536, 245e3, 163), (24, 2048, 169e3, 189)])
def test_fa_readme_tflops_follow_from_its_tokens_per_second(layers, hidden, tokens_per_s, tflops):
    """training/README.md: 'Megatron-LM paper formula x 3/4'; its throughput table (8 x A100) and its
    figure's bars (the reference rows) agree under that formula to 1%."""
    assert tokens_per_s * bp.fa_flops_per_token(layers, hidden) / 8 / 1e12 == pytest.approx(tflops, rel=0.01)


def test_fa_convention_undercounts_the_lm_head_by_a_quarter():
    """x 3/4 of the recompute formula scales the (never recomputed) LM head too: 72 l h^2 V/(16 l h) =
    4.5 h V per token against the model's 6 h V."""
    m = load_model({"layers": 24, "hidden": 2048, "heads": 16, "ffn": 8192, "vocab": 50257, "norm": "layernorm",
                    "bias": "all", "position_embedding": "learned", "seq_len": 2048, "tied_embeddings": True})
    ours = m.training_flops_per_token(2048, causal=False, recompute="none")
    assert ours - bp.fa_flops_per_token(24, 2048, 2048, 50257) == pytest.approx(1.5 * 2048 * 50257, rel=1e-6)
