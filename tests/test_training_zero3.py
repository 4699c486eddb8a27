"""ZeRO-3 (fully sharded data parallelism) on a large cluster: the communication each layer adds, how
much of it the model hides behind compute, the gathered parameters' memory, and the published
PTD-P vs ZeRO-3 comparison (Narayanan et al. 2021, section 5.2, Table 2 / Figure 10).

Setup: GPT-3 175B (96 layers, hidden 12288) on DGX A100 nodes, 8 GPUs per node on NVSwitch, one
200 Gb/s HDR InfiniBand adapter per GPU (Selene, as in the paper)."""
import pytest

from sim.cost import cost
from sim.errors import InputError
from sim.ops import Collective
from sim.scenario import predict, resolve
from sim.techniques.parallel import group
from sim.techniques.step import price_step
from sim.techniques.training import validate

GPN, HDR = 8, 200


def scenario(gpus, parallel, micro_batch, **wl):
    w = {"kind": "training", "global_batch": 1536, "micro_batch": micro_batch, "seq_len": 2048, "precision": "bf16",
         "parallel": parallel, **wl}
    return {"hardware": "A100-SXM4-80GB", "host": "DGX-A100", "model": "gpt3-175b", "parameters": "spec",
            "cluster": {"gpus": gpus, "gpus_per_node": GPN, "inter_node_gbps": HDR}, "workload": w}


def step_of(sc):
    wl, system, model, _ = resolve(sc)
    wl = validate(wl, system, model)
    return price_step(wl, system, model), system, model


TP4 = {"tp": 4, "dp": 256, "zero": 3, "sequence_parallel": True}      # the search's best layout


def test_per_layer_gather_moves_the_layers_16_bit_parameters():
    """ZeRO-3 gathers a layer's 16-bit parameters (of this TP rank) before use: a buffer of
    S = 2 * params_layer / tp bytes, of which a GPU receives (dp-1)/dp. With tp = 4 the data-parallel
    group has 2 members per node (ranks 4 apart) over 128 nodes: each GPU's NIC carries
    (N-1)/N * S/2 bytes each way (the node's other member takes the other half), the rest crosses
    NVLink. The gradient reduce-scatter moves the same bytes."""
    st, system, model = step_of(scenario(1024, TP4, 3))
    S = 2 * model.params_per_layer() / 4
    g, N = 2, 128
    c = cost(Collective("all_gather", S, 256), group(system, st.L, "dp")[1])
    assert c.bytes["network"] == pytest.approx((N - 1) / N * S / g, rel=1e-12)
    assert c.detail["gpus_per_node"] == g and c.detail["nodes"] == N
    # the network leg is at least those bytes at the adapter's line rate
    assert st.lw["ag"] >= (N - 1) / N * S / g / (HDR / 8 * 1e9)
    assert st.lw["rs"] == pytest.approx(st.lw["ag"], rel=0.05)


@pytest.mark.parametrize("mb", [1, 3])
def test_exposed_zero3_traffic_is_the_per_layer_excess_plus_the_first_fetch(mb):
    """One layer ahead is prefetched on its own stream, so per micro-batch the forward exposes the first
    layer's all-gather plus (L-1) x max(0, gather - compute), and the backward the first
    (gather + reduce-scatter, one link) plus (L-1) x max(0, gather + reduce-scatter - compute).
    At micro-batch 3 compute covers the traffic; at micro-batch 1 (a third of the compute, the same
    bytes) it does not, and the exposure is the excess, not hidden."""
    sc = scenario(1024, TP4, mb)
    st, _, _ = step_of(sc)
    lw, n, m = st.lw, st.lw["n"], st.m
    ag, rs, f, b = lw["ag"], lw["rs"], lw["f"], lw["b"]
    expected = m * (ag + (n - 1) * max(0.0, ag - f) + (ag + rs) + (n - 1) * max(0.0, ag + rs - b))
    p = predict(sc)
    assert p.breakdown["phases_s"]["offload_and_zero3_exposed"] == pytest.approx(expected, rel=1e-9)
    if mb == 1:
        assert ag > f and ag + rs > b                   # the traffic outlasts the compute it hides behind
        assert p.time_s >= m * n * (ag + (ag + rs))       # the NIC carries every gather and reduce-scatter
    else:
        assert ag < f and ag + rs < b
        assert expected == pytest.approx(m * (2 * ag + rs), rel=1e-12)


def test_gathered_parameters_take_two_layers_of_memory():
    """The layer in use and the one prefetched: 2 x 2 bytes x params_layer / tp (under DeepSpeed's
    stage3_max_live_parameters = 1e9); weights, gradients and optimizer states are 1/dp each."""
    p = predict(scenario(1024, TP4, 3))
    _, _, model = step_of(scenario(1024, TP4, 3))
    hbm = p.breakdown["memory"]["hbm_per_gpu"]
    assert hbm["live_gathered_weights"] == pytest.approx(2 * 2 * model.params_per_layer() / 4, rel=1e-12)
    n = hbm["params_on_gpu"]
    assert hbm["weights"] == pytest.approx(2 * n / 256) and hbm["optimizer_states"] == pytest.approx(12 * n / 256)


def test_micro_batch_one_is_communication_bound_where_micro_batch_three_is_not():
    slow, fast = predict(scenario(1024, TP4, 1)), predict(scenario(1024, TP4, 3))
    assert slow.metrics["mfu"] < 0.6 * fast.metrics["mfu"]
    assert slow.bound == "offload_transfers" or slow.breakdown["phases_s"]["offload_and_zero3_exposed"] > \
        0.3 * slow.time_s


# ---- Narayanan et al. 2021, Table 2: PTD-P vs ZeRO-3 without model parallelism ------------------------
# 174.6B GPT, batch 1536, seq 2048, Selene: ZeRO-3 (DeepSpeed) at 384 / 768 / 1536 GPUs with micro-batches
# 4 / 2 / 1: 144 / 88 / 44 TFLOP/s per GPU; PTD-P (t = 8, p = 12, micro-batch 1): 153 / 149 / 141. Both
# count recomputation (the paper's FLOP formula). "PTD-P outperforms ZeRO-3 by 70% ... when doubling
# the number of GPUs" (section 5.2).
OLD = dict(precision="fp16", recompute="full", attn_impl="megatron", cross_entropy="megatron", dropout=0.1)
TABLE2 = [(384, 4, 144, 153), (768, 2, 88, 149), (1536, 1, 44, 141)]


def table2(gpus, mb):
    z3 = predict(scenario(gpus, {"tp": 1, "dp": gpus, "zero": 3}, mb, **OLD))
    ptd = predict(scenario(gpus, {"tp": 8, "pp": 12, "dp": gpus // 96, "overlap_grad_reduce": False}, 1, **OLD))
    return z3, ptd


def test_table2_setups_fit_and_ptdp_is_within_the_model_s_documented_band():
    """Both layouts fit; PTD-P within 0.9-1.25x of the published TFLOP/s (the 2021 rows' band, see
    docs/training.md Validation)."""
    for gpus, mb, _, ptd_pub in TABLE2:
        z3, ptd = table2(gpus, mb)
        assert z3.fits and ptd.fits
        assert 0.9 <= ptd.metrics["hfu_tflops_per_gpu"] / ptd_pub <= 1.25


@pytest.mark.xfail(strict=True, reason=(
    "not reproduced: the model predicts DeepSpeed ZeRO-3 at 220-237 TFLOP/s on all three GPU counts "
    "(its per-layer all-gather of 3.6 GB over dp = 384-1536 takes ~19-22 ms against 32-128 ms of forward "
    "compute, so prefetching hides it) and PTD-P at ~150-165, i.e. ZeRO-3 1.45x faster. The paper's "
    "ZeRO-3 iteration time is the same at 768 and 1536 GPUs (66.7 s: communication-bound, constant "
    "bytes per GPU) and implies ~16 GB/s per GPU for its 3 x 2 x 175e9 bytes per step, as if each "
    "GPU drove its gathers through its own HDR adapter, ~10x below the bandwidth NCCL's channelled "
    "rings reach over a node's 8 adapters; even compute-bound (384 GPUs) it ran 40% below the model. "
    "That points at the 2021 DeepSpeed implementation (per-module gathers with limited prefetch, "
    "hooks), which the model does not describe, not at a missing hardware limit; see "
    "docs/training.md, ZeRO-3 at scale."))
def test_table2_ptdp_beats_zero3_by_the_published_margin():
    ratios = []
    for gpus, mb, z3_pub, ptd_pub in TABLE2:
        z3, ptd = table2(gpus, mb)
        ratios.append(ptd.metrics["hfu_tflops_per_gpu"] / z3.metrics["hfu_tflops_per_gpu"])
    published = [ptd_pub / z3_pub for _, _, z3_pub, ptd_pub in TABLE2]      # 1.06, 1.69, 3.20
    for got, want in zip(ratios, published):
        assert got == pytest.approx(want, rel=0.25)


def test_zero3_with_pipeline_parallelism_is_rejected():
    with pytest.raises(InputError):
        predict(scenario(1024, {"tp": 4, "pp": 2, "dp": 128, "zero": 3}, 1))
