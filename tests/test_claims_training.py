"""Claims of families 7 (parallel training) and 8 (offload tiering), each with the paper's setup and a
stated tolerance. Where the model does not reproduce a number, the test says why (xfail, strict).

Setups follow shared/TECHNIQUES.md section 2(b). GPT-style models of the papers are inline dims
(LayerNorm, biases, learned positions, 4h GELU MLP, vocabulary 51200); 2019-2021 Megatron and
DeepSpeed runs use the PyTorch reference attention with dropout 0.1 and full recomputation.
"""
import pytest

from sim.scenario import predict

GPT = {"norm": "layernorm", "bias": "all", "position_embedding": "learned", "vocab": 51200}
OLD = {"attn_impl": "naive", "dropout": 0.1, "recompute": "full", "precision": "fp16"}   # 2019-2021 stacks


def gpt(layers, hidden, heads, seq=1024):
    return {"layers": layers, "hidden": hidden, "heads": heads, "ffn": 4 * hidden, "seq_len": seq, **GPT}


def run(hardware, model, gpus, gpn=None, host=None, ib=None, **wl):
    w = {"kind": "training", "seq_len": 1024, **wl}
    cluster = {"gpus": gpus, "gpus_per_node": gpn or min(gpus, 8)}
    if ib:
        cluster["inter_node_gbps"] = ib
    sc = {"hardware": hardware, "cluster": cluster, "model": model, "workload": w}
    if host:
        sc["host"] = host
    return predict(sc)


# ---- Megatron-LM 2021 (G2): 1T at 502 PF on 3072 A100 = 163 TF/GPU, 52% of peak; interleaving +10% ----
MEG21 = dict(global_batch=3072, micro_batch=1, seq_len=2048, **OLD)


def test_megatron2021_1t_per_gpu_throughput():
    """Narayanan et al. 2021 Table 1: t=8, p=64, d=6, batch 3072, interleaved; the TFLOP/s count
    recomputation (HFU). Documented gap: the model is 10-40% optimistic (it predicts ~63-65% of peak
    against 52%): the 2021 stack's kernels ran below the cost model's GEMM roof (~84% of peak at
    these shapes), which calibration on measured GEMMs is meant to close."""
    p = run("A100-SXM4-80GB", "megatron-1t", 3072, ib=200, parallel={"tp": 8, "pp": 64, "dp": 6,
            "schedule": "interleaved", "virtual_stages": 2, "overlap_grad_reduce": False}, **MEG21)
    assert p.fits
    assert 1.0 <= p.metrics["hfu"] / 0.52 <= 1.4
    assert 0.03 < p.metrics["bubble_fraction"] < 0.08              # (p-1)/(v*m+p-1) = 63/1087 = 5.8%


def test_megatron2021_interleaving_gains_ten_percent_at_small_batch():
    """'interleaved pipeline ... can improve throughput by 10+%' (GPT-3 175B, 96 GPUs, t=8, p=12)."""
    gains = []
    for gb in (12, 24, 48):
        kw = dict(global_batch=gb, micro_batch=1, seq_len=2048, **OLD)
        one = run("A100-SXM4-80GB", "gpt3-175b", 96, ib=200, parallel={"tp": 8, "pp": 12, "overlap_grad_reduce": False},
                  **kw)
        inter = run("A100-SXM4-80GB", "gpt3-175b", 96, ib=200, parallel={"tp": 8, "pp": 12, "schedule": "interleaved",
                    "virtual_stages": 2, "overlap_grad_reduce": False}, **kw)
        gains.append(one.time_s / inter.time_s)
    assert gains[0] >= 1.10 and all(g > 1.0 for g in gains)
    assert gains == sorted(gains, reverse=True)          # the gain shrinks as the batch hides the bubble


# ---- Megatron-LM 2019 (G1): 8.3B on 512 V100, 15.1 PF, 76% scaling vs 39 TF on one GPU --------------
M19 = dict(seq_len=1024, **OLD)


def _meg19():
    one = run("V100-SXM2-32GB", gpt(40, 1536, 16), 1, global_batch=8, micro_batch=8, **M19)
    many = run("V100-SXM2-32GB", gpt(72, 3072, 32), 512, gpn=16, ib=800, global_batch=512, micro_batch=8,
               parallel={"tp": 8, "dp": 64, "overlap_grad_reduce": False}, **M19)
    return one, many


def test_megatron2019_weak_scaling_efficiency():
    """8.3B with 8-way TP x 64-way DP on 32 DGX-2H against the 1.2B single-GPU baseline: 76%."""
    one, many = _meg19()
    eff = many.metrics["hfu_tflops_per_gpu"] / one.metrics["hfu_tflops_per_gpu"]
    assert eff == pytest.approx(0.76, abs=0.08)


@pytest.mark.xfail(strict=True, reason="predicts ~64 TF/s (HFU) for the 1.2B model on one V100 vs the "
                   "39 TF/s (30% of peak) measured in 2019: the cost model's GEMMs run at ~84% of the "
                   "V100 peak, while the 2019 PyTorch/apex stack lost far more to unfused and launch-bound "
                   "kernels; the same ~1.6x gap makes the 15.1 PF aggregate come out ~25 PF")
def test_megatron2019_single_gpu_39_tflops():
    one, many = _meg19()
    assert one.metrics["hfu_tflops_per_gpu"] == pytest.approx(39, rel=0.2)
    assert many.metrics["hfu_tflops_per_gpu"] * 512 / 1e3 == pytest.approx(15.1, rel=0.2)


# ---- ZeRO (G4): 13B without model parallelism; 100B at 15 PF on 400 V100 ----------------------------
def test_zero_13b_without_model_parallelism_needs_zero2():
    """ZeRO-2 on 400 V100-32GB holds a 13B model per GPU (2 + 14/400 bytes of states per parameter);
    plain data parallelism (16 B/param) and ZeRO-1 (4 + 12/400) do not."""
    res = {z: run("V100-SXM2-32GB", gpt(64, 4096, 32), 400, gpn=16, ib=50, global_batch=400, micro_batch=1,
                  parallel={"zero": z}, **M19) for z in (0, 1, 2)}
    assert [res[z].fits for z in (0, 1, 2)] == [False, False, True]


def test_zero_100b_15_petaflops_on_400_gpus():
    """ZeRO-100B (stage 2) with 16-way model parallelism on 400 V100: 15 PF = 38 TF/GPU. Tolerance 20%."""
    p = run("V100-SXM2-32GB", gpt(125, 8192, 64), 400, gpn=16, ib=50, global_batch=400, micro_batch=4,
            parallel={"tp": 16, "dp": 25, "zero": 2}, **M19)
    assert p.fits
    assert p.metrics["tflops_per_gpu"] * 400 / 1e3 == pytest.approx(15, rel=0.2)


# ---- ZeRO-Offload (H1): 13B on one V100-32GB; PyTorch alone 1.4B; 40 TF at 10B ------------------------
def test_zero_offload_capacity():
    off = dict(parallel={"zero": 2}, offload={"optimizer": "cpu"}, global_batch=4, micro_batch=1, **M19)
    assert run("V100-SXM2-32GB", gpt(64, 4096, 32), 1, **off).fits                       # 13B with offload
    assert not run("V100-SXM2-32GB", gpt(64, 4096, 32), 1, global_batch=4, micro_batch=1, **M19).fits
    assert run("V100-SXM2-32GB", gpt(28, 2048, 16), 1, global_batch=8, micro_batch=2, **M19).fits   # 1.4B
    assert not run("V100-SXM2-32GB", gpt(40, 2048, 16), 1, global_batch=8, micro_batch=1, **M19).fits  # 2B


def test_zero_offload_10b_40_tflops():
    """10B on one V100 with the Adam step on the DGX-2 CPUs; batch per GPU not in the abstract (1 assumed).
    TF/s counted with recomputation, as DeepSpeed's flops profiler does. Tolerance 25%."""
    p = run("V100-SXM2-32GB", gpt(50, 4096, 32), 1, parallel={"zero": 2}, offload={"optimizer": "cpu"},
            global_batch=4, micro_batch=1, **M19)
    assert p.fits and p.metrics["hfu_tflops_per_gpu"] == pytest.approx(40, rel=0.25)
    assert p.breakdown["phases_s"]["host_step_exposed"] > 0          # the CPU step shows at batch 1


# ---- ZeRO-Infinity (H2): 1T on one DGX-2 only with NVMe; 25 PF on 512 V100 ---------------------------
ONE_T = gpt(128, 25600, 160)


def test_zero_infinity_1t_on_one_dgx2_needs_nvme():
    kw = dict(parallel={"zero": 3}, global_batch=16, micro_batch=1, **M19)
    cpu = run("V100-SXM2-32GB", ONE_T, 16, gpn=16, offload={"optimizer": "cpu", "params": "cpu"}, **kw)
    nvme = run("V100-SXM2-32GB", ONE_T, 16, gpn=16, offload={"optimizer": "nvme", "params": "nvme"}, **kw)
    assert not cpu.fits and "host" in cpu.breakdown["memory"]["overflow"]       # 18 TB of states > 1.5 TB DRAM
    assert nvme.fits and nvme.memory_bytes["nvme"] > 1.5e12
    plain = run("V100-SXM2-32GB", ONE_T, 16, gpn=16, **{**kw, "parallel": {"zero": 3}})
    assert not plain.fits                                                        # 16 TB of states > 0.5 TB HBM


@pytest.mark.xfail(strict=True, reason="predicts ~36 PF (71 TF/GPU) for 1T with ZeRO-3 and CPU offload on "
                   "512 V100 vs 'over 25 petaflops': the V100 compute-efficiency gap of the Megatron-2019 claim "
                   "(~1.5x); the offload itself is mostly hidden in the model, as the paper reports")
def test_zero_infinity_25_petaflops_on_512_gpus():
    p = run("V100-SXM2-32GB", ONE_T, 512, gpn=16, ib=50, global_batch=512, micro_batch=1, parallel={"zero": 3},
            offload={"optimizer": "cpu", "params": "cpu", "activations": "cpu"}, **M19)
    assert p.metrics["tflops_per_gpu"] * 512 / 1e3 == pytest.approx(25, rel=0.25)


# ---- Fuyou (H3): 175B on one RTX 4090 with NVMe; 13B at 156 TF vs ZeRO-Infinity 45 ---------------------
FUYOU_HOST = {"name": "fuyou-server", "gpus": 1,
              "cpu": {"model": "2x Xeon (48 cores)", "sockets": 2, "cores": 48, "fp32_tflops": 6.0},
              "dram": {"capacity_gb": 768, "bandwidth_gbps": 300}, "pcie_generation": 4, "pcie_lanes_per_gpu": 16,
              "nvme": {"drives": 12, "capacity_tb_per_drive": 3.84, "read_gbps_per_drive": 3.5,
                       "write_gbps_per_drive": 3.0},
              "sources": {k: "Fuyou paper body as summarised in shared/TECHNIQUES.md (768 GB DRAM, several NVMe "
                             "SSDs; drive count and rates to confirm)"
                          for k in ("gpus", "cpu", "dram", "pcie_generation", "pcie_lanes_per_gpu", "nvme")}}
FUYOU = dict(offload={"optimizer": "nvme", "params": "nvme", "activations": "nvme", "overlap_optimizer_step": True},
             parallel={"zero": 3}, global_batch=32, micro_batch=8, recompute="full", precision="fp16")


def test_fuyou_175b_fits_one_rtx4090_only_with_ssds():
    p = run("RTX-4090", "gpt3-175b", 1, host=FUYOU_HOST, **FUYOU)
    assert p.fits and p.memory_bytes["hbm"] < 24e9
    cpu = run("RTX-4090", "gpt3-175b", 1, host=FUYOU_HOST,
              **{**FUYOU, "offload": {"optimizer": "cpu", "params": "cpu"}})
    assert not cpu.fits and "host" in cpu.breakdown["memory"]["overflow"]      # 3 TB of states > 768 GB


@pytest.mark.xfail(strict=True, reason="156 TF/s is 94% of the RTX 4090's dense FP16 (FP32-accumulate) peak "
                   "of 165 TF/s; only the FP16-accumulate peak (330) or another FLOP count makes it possible, "
                   "and the paper's convention is not in the abstract")
def test_fuyou_13b_156_tflops():
    p = run("RTX-4090", "gpt3-13b", 1, host=FUYOU_HOST, **FUYOU)
    assert p.metrics["tflops_per_gpu"] == pytest.approx(156, rel=0.2)


# ---- MeZO (H7): 30B with ZO vs 2.7B with backprop on one A100-80GB; up to 12x less memory -------------
@pytest.mark.parametrize("model, optimizer, fits", [
    ("opt-30b", "zo", True), ("opt-66b", "zo", False), ("opt-2.7b", "adam", True), ("opt-6.7b", "adam", False)])
def test_mezo_capacity(model, optimizer, fits):
    p = run("A100-SXM4-80GB", model, 1, global_batch=16, micro_batch=16, seq_len=256, precision="fp16",
            optimizer=optimizer)
    assert p.fits is fits


def test_mezo_memory_reduction():
    """'up to 12x memory reduction': ZO keeps weights and one layer's activations; backprop with Adam
    adds 14 B/param of gradients and states and every layer's activations. Between 6x and 16x here."""
    kw = dict(global_batch=16, micro_batch=16, seq_len=256, precision="fp16")
    zo = run("A100-SXM4-80GB", "opt-13b", 1, optimizer="zo", **kw)
    bp = run("A100-SXM4-80GB", "opt-13b", 1, optimizer="adam", **kw)
    assert 6 < bp.memory_bytes["hbm"] / zo.memory_bytes["hbm"] < 16


# ---- DeepSpeed-Ulysses (G5): constant communication volume as sequence and GPUs grow together ---------
def test_ulysses_comm_time_constant_with_sequence_and_gpus():
    """Predicted all-to-all time per GPU, sequence 8192*P on P GPUs of one node: it follows the volume
    4*b*s*h/P * (P-1)/P, flat apart from the (P-1)/P factor (1/2 at P=2, 7/8 at P=8)."""
    times = []
    for P in (2, 4, 8):
        p = run("A100-SXM4-80GB", {**gpt(4, 4096, 32, seq=8192 * P), "vocab": 1024}, P, global_batch=1,
                micro_batch=1, seq_len=8192 * P, precision="bf16", parallel={"sp": P, "dp": 1})
        times.append(p.breakdown["phases_s"]["comm_in_layers"] / ((P - 1) / P))
    assert max(times) / min(times) < 1.3


@pytest.mark.xfail(strict=True, reason="'2.5x faster with 4x longer sequence' needs the baseline's exact "
                   "configuration (Megatron-LM sequence parallelism degree, batch, model), not in the abstract")
def test_ulysses_2_5x_faster_than_megatron_sp():
    raise AssertionError("setup not specified in the abstract")


# ---- MegaScale (G14): 55.2% MFU for 175B on 12,288 GPUs, 1.34x over Megatron-LM -----------------------
MS = dict(global_batch=6144, micro_batch=1, seq_len=2048, precision="bf16", attn_impl="flash2", recompute="selective")
MS_PAR = {"tp": 8, "pp": 8, "dp": 192, "schedule": "interleaved", "virtual_stages": 6, "sequence_parallel": True}


def _megascale():
    mega = run("A100-SXM4-80GB", "gpt3-175b", 12288, ib=200, parallel={**MS_PAR, "zero": 1, "tp_comm_overlap": True,
               "overlap_grad_reduce": True, "overlap_param_gather": True}, **MS)
    base = run("A100-SXM4-80GB", "gpt3-175b", 12288, ib=200, parallel={**MS_PAR, "overlap_grad_reduce": False}, **MS)
    return mega, base


def test_megascale_mfu():
    """A100 GPUs (paper body), t=8, p=8, d=192, batch 6144. Documented gap: the model is 0-35% optimistic
    (the GEMM-efficiency gap of the Megatron-2021 claim)."""
    mega, _ = _megascale()
    assert mega.fits and 1.0 <= mega.metrics["mfu"] / 0.552 <= 1.35


@pytest.mark.xfail(strict=True, reason="the overlaps the model knows (TP, DP, parameter gather) give ~1.1x; "
                   "the rest of MegaScale's 1.34x over Megatron-LM at 12,288 GPUs (41.2% MFU) comes from effects "
                   "not modelled: stragglers, network congestion, data-loader stalls and the parallel block")
def test_megascale_134x_over_megatron():
    mega, base = _megascale()
    assert mega.metrics["mfu"] / base.metrics["mfu"] == pytest.approx(1.34, rel=0.1)
