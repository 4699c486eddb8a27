"""Published claims of families 6-8 (collectives and overlap, parallel training, offload tiering),
each with the paper's setup and a stated tolerance.

The setups and predictions live in the claim registry (``analysis.claims``: G1, G2, G4, G5, G14, H1,
H2, H3, H7), which the report shows too; these tests assert the published numbers and the physics
around them through it: closed forms (pipeline bubbles, ring all-reduce volumes), capacity
predicates, and for each claim the model does not reproduce, the direction and cause of the gap
(the registry entry's ``why``). Predictions use the spec efficiencies (``parameters: spec``).
"""
import pytest

from analysis import claims as C
from sim.hardware import load_device
from sim.models import load_model


def status(key):
    return C.CLAIMS[key].status()


# ---- Megatron-LM 2021 (G2): 1T at 502 PF on 3072 A100 = 163 TF/GPU, 52% of peak; interleaving +10% ----
def test_megatron2021_1t_per_gpu_throughput():
    """Narayanan et al. 2021 Table 1: t=8, p=64, d=6, batch 3072, interleaved; the TFLOP/s count
    recomputation (HFU). The model is optimistic (registry G2.1t): the 2021 stack's kernels ran below
    the cost model's GEMM roof, which calibration on measured GEMMs is meant to close. The bubble
    follows the interleaved closed form (p-1)/(v*m+p-1) with m = 3072/6 = 512 micro-batches per
    pipeline: 63/1087 = 5.8%."""
    p = C.megatron_1t()
    assert p.fits
    assert 1.0 <= p.metrics["hfu"] / 0.52 <= 1.4
    assert p.metrics["bubble_fraction"] == pytest.approx(63 / (2 * 512 + 63), rel=0.2)
    assert C.CLAIMS["G2.1t"].value() == p.metrics["hfu"]


def test_megatron2021_interleaving_gains_ten_percent_at_small_batch():
    """'interleaved pipeline ... can improve throughput by 10+%' (GPT-3 175B, 96 GPUs, t=8, p=12). The
    gain is at least 10% at the smallest batch and shrinks as more micro-batches hide the bubble; it
    never beats the closed form for the bubble alone, (m+p-1)/(m+(p-1)/v), since interleaving also
    sends v times more pipeline messages. The batch the abstract means is open: 'partly'."""
    gains = C.interleave_gains()
    g = [gains[b] for b in C.INTERLEAVE_BATCHES]
    assert g[0] >= 1.10 and all(x > 1.0 for x in g)
    assert g == sorted(g, reverse=True)
    for m, x in gains.items():                      # micro-batch 1, no data parallelism: m = global batch
        assert x <= (m + 11) / (m + 11 / 2) * 1.01
    assert status("G2.interleave") == "partly"


# ---- Megatron-LM 2019 (G1): 8.3B on 512 V100, 15.1 PF, 76% scaling vs 39 TF on one GPU --------------
def test_megatron2019_weak_scaling_and_the_v100_compute_gap():
    """8.3B with 8-way TP x 64-way DP on 32 DGX-2H against the 1.2B single-GPU baseline. The gradient
    all-reduce (after backward in 2019 Megatron) moves 2*(N-1)/N * S/g bytes per GPU through its NIC
    share: S the fp16 gradients of one TP rank, g = 2 DP ranks per node, N = 32 nodes, 50 Gb/s per
    GPU (100 GB/s of IB per 16-GPU server). The single GPU comes out well above the 2019 stack's 39
    TF/s (G1.39tf, and with it the 15.1 PF aggregate): against that faster compute the exposed
    all-reduce weighs more, so slowing the Tensor Cores toward the 2019 rate raises the ratio."""
    one, many = C.megatron_2019()
    eff = many.metrics["hfu_tflops_per_gpu"] / one.metrics["hfu_tflops_per_gpu"]
    assert 0.5 < eff < 1.0
    S = 2 * load_model(C.gpt(72, 3072, 32)).n_params() / 8
    ring = 2 * 31 / 32 * S / 2 / (C.DGX2_IB * 1e9 / 8)
    assert ring <= many.breakdown["phases_s"]["dp_comm_exposed"] <= 1.15 * ring
    slow_one, slow_many = C.megatron_2019(0.55)
    assert slow_one.metrics["hfu_tflops_per_gpu"] < one.metrics["hfu_tflops_per_gpu"]
    assert slow_many.metrics["hfu_tflops_per_gpu"] / slow_one.metrics["hfu_tflops_per_gpu"] > eff
    assert one.metrics["hfu_tflops_per_gpu"] > 39 * 1.2
    assert status("G1.39tf") == status("G1.15pf") == "not reproduced"
    assert C.CLAIMS["G1.scaling"].value() == pytest.approx(eff)


# ---- ZeRO (G4): 13B without model parallelism; 100B at 15 PF on 400 V100 ----------------------------
def test_zero_13b_without_model_parallelism_needs_zero2():
    """ZeRO-2 on 400 V100-32GB holds a 13B model per GPU (2 + 14/400 bytes of states per parameter);
    plain data parallelism (16 B/param) and ZeRO-1 (4 + 12/400) do not."""
    f = C.zero_13b_fits()
    assert [f[z] for z in (0, 1, 2)] == [False, False, True]
    assert status("G4.13b-zero2") == status("G4.13b-zero1") == status("G4.13b-dp") == "reproduced"


def test_zero_100b_15_petaflops_on_400_gpus():
    """ZeRO-100B (stage 2) with 16-way model parallelism on 400 V100: 15 PF = 38 TF/GPU. Tolerance 20%."""
    assert C.zero_100b().fits
    assert status("G4.15pf") == "reproduced"


# ---- ZeRO-Offload (H1): 13B on one V100-32GB; PyTorch alone 1.4B; 40 TF at 10B ------------------------
def test_zero_offload_capacity():
    f = C.zero_offload_fits()
    assert f["13b"] and not f["13b_nooffload"]           # 13B only with the optimizer on the CPU
    assert f["1.4b"] and not f["2b"]                     # PyTorch alone: 16 B/param
    assert all(status(f"H1.{k}") == "reproduced" for k in ("13b", "13b-nooffload", "1.4b", "2b"))


def test_zero_offload_10b_40_tflops():
    """10B on one V100 with the Adam step on the DGX-2 CPUs; batch per GPU not in the abstract (1 assumed).
    TF/s counted with recomputation, as DeepSpeed's flops profiler does. Tolerance 25%."""
    p = C.zero_offload_10b()
    assert p.fits
    assert p.breakdown["phases_s"]["host_step_exposed"] > 0          # the CPU step shows at batch 1
    assert status("H1.40tf") == "reproduced"


# ---- ZeRO-Infinity (H2): 1T on one DGX-2 only with NVMe; 25 PF on 512 V100 ---------------------------
def test_zero_infinity_1t_on_one_dgx2_needs_nvme():
    r = C.zero_infinity_1t()
    assert not r["cpu"].fits and "host" in r["cpu"].breakdown["memory"]["overflow"]   # 16 TB of states > 1.5 TB DRAM
    assert r["nvme"].fits and r["nvme"].memory_bytes["nvme"] > 1.5e12
    assert not r["hbm"].fits                                                         # 16 TB > 0.5 TB HBM
    assert all(status(f"H2.1t-{k}") == "reproduced" for k in ("nvme", "cpu", "hbm"))


def test_zero_infinity_25_petaflops_gap_is_compute_not_offload():
    """'over 25 petaflops on 512 NVIDIA V100 GPUs': the model is optimistic beyond the 25% tolerance
    by the V100 compute gap of G1; the offload and the CPU step are mostly hidden, as the paper reports."""
    p = C.zero_infinity_512()
    pf = p.metrics["tflops_per_gpu"] * 512 / 1e3
    assert pf > 25 * 1.25
    ph = p.breakdown["phases_s"]
    assert (ph["offload_and_zero3_exposed"] + ph["host_step_exposed"]) / p.time_s < 0.15
    assert status("H2.25pf") == "not reproduced"


# ---- Fuyou (H3): 175B on one RTX 4090 with NVMe; 13B at 156 TF vs ZeRO-Infinity 45 ---------------------
def test_fuyou_175b_fits_one_rtx4090_only_with_ssds():
    r = C.fuyou_175b()
    assert r["nvme"].fits and r["nvme"].memory_bytes["hbm"] < 24e9
    assert not r["cpu"].fits and "host" in r["cpu"].breakdown["memory"]["overflow"]   # 3 TB of states > 768 GB
    assert status("H3.175b") == status("H3.175b-cpu") == "reproduced"


def test_fuyou_156_tflops_is_beyond_the_fp32_accumulate_peak():
    """156 TF/s is 94% of the RTX 4090's dense FP16 (FP32-accumulate) Tensor-Core peak: no end-to-end
    fine-tuning step with offload gets there; the model stays well below it."""
    peak = load_device("RTX-4090").peak_tflops["fp16"]
    assert 156 / peak > 0.9
    assert C.fuyou_13b().metrics["tflops_per_gpu"] < 0.9 * peak
    assert status("H3.156tf") == "not reproduced"


# ---- MeZO (H7): 30B with ZO vs 2.7B with backprop on one A100-80GB; up to 12x less memory -------------
@pytest.mark.parametrize("key, model, optimizer, fits, _", C.MEZO_CASES)
def test_mezo_capacity(key, model, optimizer, fits, _):
    assert C.mezo(model, optimizer).fits is fits
    assert status(f"H7.{key}") == "reproduced"


def test_mezo_memory_reduction():
    """'up to 12x memory reduction': ZO keeps weights and one layer's activations; backprop with Adam
    adds 14 B/param of gradients and states and every layer's activations. Between 6x and 16x here."""
    assert 6 < C.mezo_memory_ratio() < 16
    assert status("H7.12x") == "reproduced"


# ---- DeepSpeed-Ulysses (G5): constant communication volume as sequence and GPUs grow together ---------
def test_ulysses_comm_time_constant_with_sequence_and_gpus():
    """Predicted all-to-all time per GPU, sequence 8192*P on P GPUs of one node: it follows the volume
    4*b*s*h/P * (P-1)/P, flat apart from the (P-1)/P factor (1/2 at P=2, 7/8 at P=8)."""
    times = C.ulysses_times()
    assert max(times.values()) / min(times.values()) < 1.3
    assert status("G5.constant") == "reproduced"


# ---- MegaScale (G14): 55.2% MFU for 175B on 12,288 GPUs, 1.34x over Megatron-LM -----------------------
def test_megascale_mfu():
    """A100 GPUs (paper body), t=8, p=8, d=192, batch 6144. The model may be optimistic by the GEMM-
    efficiency gap of the Megatron-2021 claim: within 0-35% above 55.2%."""
    mega, _ = C.megascale()
    assert mega.fits and 1.0 <= mega.metrics["mfu"] / 0.552 <= 1.35


def test_megascale_overlaps_give_part_of_the_134x():
    """The overlaps the model knows (TP, DP, parameter gather) raise MFU over the Megatron-LM baseline,
    but short of 1.34x: the rest (stragglers, congestion, data loading, the parallel block) is not modelled."""
    mega, base = C.megascale()
    assert 1.0 < mega.metrics["mfu"] / base.metrics["mfu"] < 1.34
    assert status("G14.1.34x") == "not reproduced"
