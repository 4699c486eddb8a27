"""Kernel-level choices of the inference step: where dequantisation runs and how much of it hides
(per-kernel ``dequant_overlap``, one-kernel ``unfused`` and FlexGen's PyTorch ``torch`` chain), decode
attention without GQA awareness (``kv_head_sharing: false``), FlexGen's micro-batches and per-channel
weight scales. Physics and counts from the sources' code, not values copied from the model."""
import math

import pytest

from sim.cost.efficiency import eff
from sim.hardware import load_device, load_host
from sim.hardware.system import Cluster, System
from sim.models import load_model
from sim.ops import Elementwise
from sim.scenario import predict
from sim.techniques.inference import InferenceIn, StepModel, dequant_passes, make_plan

A100 = "A100-SXM4-80GB"


def run(hw=A100, model="llama-2-7b", **wl):
    wl = {"kind": "inference", "batch": 1, "prompt_len": 128, "gen_len": 32, **wl}
    return predict({"hardware": hw, "model": model, "workload": wl})


def plan_of(hw=A100, model="llama-2-7b", **wl):
    dev = load_device(hw)
    system = System(dev, load_host(dev.default_host), Cluster(1, 1))
    w = InferenceIn.model_validate({"batch": 1, "prompt_len": 128, "gen_len": 32, **wl})
    return make_plan(w, system, load_model(model))


# ---- where dequantisation runs ------------------------------------------------------------------
def test_dequant_overlap_is_per_kernel_and_none_means_the_device_setting():
    """A fused low-bit GEMM pays (1 - overlap) of its CUDA-core dequantisation on top of the MMA/HBM
    time; None takes the device's simt_overlap (1.0 by default: Marlin-class kernels)."""
    kw = dict(weights="int4", batch=64, prompt_len=512, gen_len=16)
    t = {ov: run(**kw, dequant_overlap=ov).metrics["latency_s"] for ov in (0.0, 0.5, 1.0)}
    default = run(**kw).metrics["latency_s"]
    assert t[0.0] > t[0.5] > t[1.0]
    assert default == pytest.approx(t[eff(load_device(A100), "simt_overlap")], rel=1e-12)


def test_dequant_overlap_does_not_touch_16_bit_gemms():
    assert run(dequant_overlap=0.0).metrics["latency_s"] == run().metrics["latency_s"]


def test_unfused_dequant_is_one_kernel_reading_packed_bytes_and_writing_16_bit():
    n, packed = 1e6, 0.5e6 + 2e6 / 128
    (k,) = dequant_passes("unfused", packed, n, 2, load_device(A100), "x")
    assert (k.bytes_read, k.bytes_written) == (packed, 2 * n)


def test_flexgen_decompress_is_six_pytorch_kernels_moving_15_bytes_per_value():
    """FlexGen compression.py decompress: shift and mask (read the packed bytes, write one uint8 per
    pair), two strided scatters into the fp16 buffer (every sector of it written), div_ and add_ in
    place: 6 B read and 9 B written per value besides the packed bytes' own share."""
    n, packed = 1e6, 0.5e6
    ks = dequant_passes("torch", packed, n, 2, load_device(A100), "x")
    assert len(ks) == 6 and all(isinstance(k, Elementwise) for k in ks)
    assert sum(k.bytes_read for k in ks) == pytest.approx(2 * packed + 5 * n)
    assert sum(k.bytes_written for k in ks) == pytest.approx(9 * n)


def test_dequant_paths_order_fused_unfused_torch_on_a_bandwidth_bound_decode():
    kw = dict(weights="int4", kv_cache="int4", batch=8, prompt_len=512)
    fused, unfused, torch_ = (run(**kw, dequant=d).metrics["tpot_s"] for d in ("fused", "unfused", "torch"))
    assert fused < unfused < torch_


def test_unfused_kv_dequant_reads_only_the_cached_tokens():
    """The quantised cache is expanded before attention; a prefill's own K/V are fresh (nothing to
    expand), so prefill attention is unchanged while decode attention pays the extra passes."""
    p = plan_of(kv_cache="int4", dequant="torch")
    q = plan_of(kv_cache="int4")
    assert StepModel(p).layer_attn(1, 128, 128).kernels == 1
    dec, fused = StepModel(p).layer_attn(8, 1, 1024), StepModel(q).layer_attn(8, 1, 1024)
    assert dec.kernels == 7 and dec.time > fused.time


# ---- decode attention without GQA awareness --------------------------------------------------------
def test_per_query_head_kv_reads_multiply_gqa_decode_attention_by_the_group():
    """TensorRT-LLM's masked MHA before XQA streams a KV head once per query head: for Llama-2-70B
    (64 query, 8 KV heads) a KV-bound decode attention reads 8x the bytes."""
    shared = StepModel(plan_of(model="llama-2-70b")).layer_attn(64, 1, 4096)
    per_head = StepModel(plan_of(model="llama-2-70b", kv_head_sharing=False)).layer_attn(64, 1, 4096)
    assert per_head.time / shared.time == pytest.approx(8, rel=0.1)


def test_per_query_head_reads_change_nothing_for_mha_or_prefill():
    mha = [StepModel(plan_of(kv_head_sharing=s)).layer_attn(64, 1, 4096).time for s in (True, False)]
    assert mha[0] == mha[1]
    pre = [StepModel(plan_of(model="llama-2-70b", kv_head_sharing=s)).layer_attn(1, 512, 512).time
           for s in (True, False)]
    assert pre[0] == pre[1]


# ---- FlexGen micro-batches --------------------------------------------------------------------------
def test_micro_batches_run_each_layer_once_per_micro_batch():
    """FlexGen's num_gpu_batches: a batch of 6 as 3 micro-batches costs three layer passes of 2
    sequences (weights re-read and, if compressed, re-expanded each time)."""
    p3, p1 = plan_of(micro_batches=3, weights="int4", dequant="torch"), plan_of(weights="int4", dequant="torch")
    s3, s1 = StepModel(p3), StepModel(p1)
    ovh = eff(p1.system.device, "infer_step_overhead_s")
    t3 = s3.step(n_decode=6, decode_ctx=300).time - s3.head(6, 6).time - ovh
    t1 = s1.step(n_decode=2, decode_ctx=300).time - s1.head(2, 2).time - ovh
    assert t3 == pytest.approx(3 * t1, rel=1e-9)


# ---- per-channel scales -----------------------------------------------------------------------------
def test_per_channel_scales_cost_one_fp16_scale_per_output_channel():
    """QServe's per-channel W4A8: 0.5 B per weight plus 2 B per output channel, i.e. 2/k per weight
    with k the GEMM's input width (4096 or 14336 for Llama-3-8B)."""
    bpp = plan_of(model="llama-3-8b", weights="w4a8", group_size="channel").weight_bytes_per_param()
    assert 0.5 + 2 / 14336 <= bpp <= 0.5 + 2 / 4096
    assert bpp < plan_of(model="llama-3-8b", weights="w4a8").weight_bytes_per_param()
    assert math.isclose(plan_of(model="llama-3-8b", weights="w4a8", group_size=128).weight_bytes_per_param(),
                        0.5 + 2 / 128, rel_tol=1e-12)


@pytest.mark.parametrize("wl,field", [({"dequant_overlap": 1.5}, "dequant_overlap"),
                                      ({"group_size": "row"}, "group_size"),
                                      ({"micro_batches": 0}, "micro_batches"),
                                      ({"dequant": "lazy"}, "dequant")])
def test_bad_kernel_fields_name_the_field(wl, field):
    from sim.errors import InputError
    with pytest.raises(InputError) as e:
        run(**wl)
    assert field in str(e.value)
