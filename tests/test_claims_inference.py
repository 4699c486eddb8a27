"""Published claims of technique families 1-5 (shared/TECHNIQUES.md sections 1-3), each with its
tolerance. Where the model cannot reproduce a claim, the test pins down why (the assumption that
differs, or the accuracy-side input the claim depends on) instead of bending the model to it.

Inputs a claim leaves open (lengths, acceptance rates, sparsity) are stated beside each test and
chosen from the papers' own setups where they are known, never fitted to the claimed number.
Predictions use the spec efficiencies (``parameters: spec``), i.e. the model before any fitting, so
that a calibration run cannot move these checks.
"""
import pytest

from sim.hardware import load_device, load_host
from sim.hardware.system import Cluster, System
from sim.models import load_model
from sim.scenario import predict
from sim.techniques.inference import InferenceIn, make_plan
from sim.techniques.offload_inference import OffloadModel, min_tokens_compute_bound

A100 = "A100-SXM4-80GB"
TINY_DRAFT = {"layers": 2, "hidden": 768, "heads": 12, "ffn": 3072, "vocab": 32000, "gated_mlp": True}  # Llama-68M dims


def P(hw, model, gpus=1, intra=None, **wl):
    s = {"hardware": hw, "model": model, "workload": {"kind": "inference", **wl}, "parameters": "spec"}
    if gpus > 1 or intra:
        s["cluster"] = {"gpus": gpus, **({"intra_node": intra} if intra else {})}
    return predict(s)


def with_eff(name, **overrides):
    """A device spec with efficiency overrides (each override must carry a source)."""
    d = load_device(name).model_dump()
    d["efficiency"] = {**d["efficiency"], **overrides}
    d["sources"] = {**d["sources"], **{f"efficiency.{k}": "claim test: older-kernel setting" for k in overrides}}
    return d


# ---- A1 FP6-LLM ------------------------------------------------------------------------------------
def test_fp6_llm_llama70b_on_one_a100_vs_fp16_on_two():
    """'inference of LLaMA-70b using only a single GPU, achieving 1.69x-2.65x higher normalized
    inference throughput than the FP16 baseline' (A100-80GB; FP16 on 2 GPUs, per-GPU throughput).
    Reproduced: FP6 fits one GPU, FP16 needs two; the per-GPU ratio starts at the 16/6 byte-ratio
    bound at batch 1 (2.63 vs 2.65) and falls as the batch grows and the KV/compute share rises."""
    ratios = []
    for b in (1, 4, 16, 32, 64):
        f6 = P(A100, "llama-2-70b", batch=b, prompt_len=128, gen_len=128, weights="fp6")
        f16 = P(A100, "llama-2-70b", gpus=2, tp=2, batch=b, prompt_len=128, gen_len=128)
        assert f6.fits and f16.fits
        ratios.append(f6.metrics["tokens_per_s_per_gpu"] / f16.metrics["tokens_per_s_per_gpu"])
    assert not P(A100, "llama-2-70b", batch=1, prompt_len=128, gen_len=8).fits
    assert ratios[0] == pytest.approx(2.65, rel=0.05)
    assert all(a >= b for a, b in zip(ratios, ratios[1:]))              # declines with batch
    assert all(1.69 * 0.85 <= r <= 2.65 * 1.05 for r in ratios)
    assert min(ratios) == pytest.approx(1.69, rel=0.15)                 # the low end at batch 64


# ---- A6 GPTQ ---------------------------------------------------------------------------------------
def test_gptq_175b_3bit_fits_one_a100_and_4bit_does_not():
    """'execute an 175 billion-parameter model inside a single GPU': only at 3 bits (65.6 GB of
    values + group scales); 4 bits (87.5 GB) exceeds the 80 GiB of an A100-80GB."""
    kw = dict(batch=1, prompt_len=128, gen_len=128)
    assert P(A100, "opt-175b", weights="int3", **kw).fits
    assert not P(A100, "opt-175b", weights="int4", **kw).fits


@pytest.mark.parametrize("hw,n16,nq,claim,intra", [(A100, 5, 1, 3.25, None), ("RTX-A6000", 8, 2, 4.5, "pcie")])
def test_gptq_speedup_over_fp16(hw, n16, nq, claim, intra):
    """'3.25x (A100) and 4.5x (A6000)' per-token speedup of 3-bit OPT-175B over FP16 (FP16 on 5 A100
    or 8 A6000, 3-bit on 1 or 2, layers split across GPUs as HF accelerate does: PP at batch 1).
    The FP16 baselines come out within 10% of GPTQ's Table (230 ms, 589 ms per token). With modern
    fused dequantisation (the defaults: Marlin-class 1.5 ALU ops per weight, hidden under the loads)
    3-bit decode sits at the 5.3x byte-ratio bound: A6000 4.85x matches 4.5x within 10%, A100 4.8x
    does not match 3.25x. GPTQ's 2022 3-bit kernel decoded weights with plain shifts/masks (~4 ALU
    ops per weight) only partly overlapped with loads; with that setting the A100, whose ALU/HBM
    ratio is the lowest, turns ALU-bound (2.5x) while the A6000 stays memory-bound (4.1x): the two
    settings bracket both claims. Not reproduced exactly: the overlap of the 2022 kernel is unknown.
    The overlap is the kernel's own (workload ``dequant_overlap``, passed to ``Gemm.dequant_overlap``);
    the op count has no per-kernel field on ``Gemm``, so it stays a device override here."""
    kw = dict(batch=1, prompt_len=128, gen_len=128)
    f16 = P(hw, "opt-175b", gpus=n16, intra=intra, weights="fp16", pp=n16, **kw).metrics["tpot_s"]
    assert f16 == pytest.approx({A100: 0.230, "RTX-A6000": 0.589}[hw], rel=0.10)
    modern = f16 / P(hw, "opt-175b", gpus=nq, intra=intra if nq > 1 else None, weights="int3", pp=nq, **kw).metrics["tpot_s"]
    old_hw = with_eff(hw, dequant_ops_per_weight=4.0)
    old = f16 / P(old_hw, "opt-175b", gpus=nq, intra=intra if nq > 1 else None, weights="int3", pp=nq,
                  dequant_overlap=0.5, **kw).metrics["tpot_s"]
    assert modern <= 16 / 3 * 1.01                                       # never beats the byte ratio
    assert old <= claim <= modern
    if hw == "RTX-A6000":
        assert modern == pytest.approx(claim, rel=0.10)


# ---- A7 GLM-130B -----------------------------------------------------------------------------------
GLM130B = {"layers": 70, "hidden": 12288, "heads": 96, "ffn": 32768, "vocab": 150528, "gated_mlp": True,
           "norm": "layernorm", "bias": "all"}     # GLM-130B paper: 70 layers, d 12288, 96 heads, GeGLU 32768


def test_glm130b_int4_fits_four_rtx3090_and_int8_does_not():
    """'INT4 ... effective inference on 4xRTX 3090 (24G)': 65 GB of INT4 weights over 4 GPUs (TP over
    PCIe) fit; INT8 (130 GB) does not. The 8x RTX 2080 Ti half of the claim has no device file."""
    kw = dict(gpus=4, intra="pcie", tp=4, batch=1, prompt_len=1024, gen_len=128)
    i4, i8 = P("RTX-3090", GLM130B, weights="int4", **kw), P("RTX-3090", GLM130B, weights="int8", act_dtype="fp16", **kw)
    assert i4.fits and not i8.fits
    assert i4.breakdown["decode_parts_s"]["all_reduce"] > 0             # PCIe all-reduces are part of decode


# ---- A10 GPTQ slower on T4 ---------------------------------------------------------------------------
def test_gptq_on_t4_is_slower_when_dequantisation_is_a_separate_kernel():
    """'4-bit GPTQ ... slowed inference by 82% on an older GPU architecture (NVIDIA T4) due to
    dequantization overhead' (Llama-3.2-1B). The slowdown comes out of the dequantisation model:
    with a fused kernel int4 is ~2x faster; the older GPTQ path on Turing dequantises into a 16-bit
    copy first (``dequant: unfused``: read 0.5 B, write 2 B, then a 2 B GEMM read per weight), which
    predicts 1.8-1.9x the FP16 time, i.e. 80-90% slower. Prompt/output lengths are not in the
    abstract: 256/64 assumed."""
    llama32_1b = {"layers": 16, "hidden": 2048, "heads": 32, "kv_heads": 8, "ffn": 8192, "vocab": 128256,
                  "gated_mlp": True, "tied_embeddings": True}
    kw = dict(batch=1, prompt_len=256, gen_len=64)
    f16 = P("T4", llama32_1b, **kw).metrics["latency_s"]
    fused = P("T4", llama32_1b, weights="int4", **kw).metrics["latency_s"]
    unfused = P("T4", llama32_1b, weights="int4", dequant="unfused", **kw).metrics["latency_s"]
    assert fused < f16
    assert unfused / f16 == pytest.approx(1.82, rel=0.10)


# ---- B1 Flash-LLM ----------------------------------------------------------------------------------
def test_flash_llm_tokens_per_gpu_second():
    """'tokens per GPU-second ... up to 3.8x and 3.6x improvement over DeepSpeed and FasterTransformer'
    (OPT-66B/175B, A100). The README figure's bars give 520 vs 336 (OPT-66B, 2 vs 4 GPUs, batch 64)
    = 1.55x and 194 vs 126 (OPT-175B, 4 vs 8 GPUs) = 1.54x. Sparsity 80% (paper: 60-90%) and
    lengths are assumptions (not in the README; batch 64 on 2 GPUs only fits the KV of contexts
    under ~800 tokens): over prompts 64-256 and outputs 128-512 the model gives 1.5-1.8x at batch 64,
    bracketing both measured ratios, and 2.1-2.35x at batch 8 (more memory-bound). The 'up to
    3.8x' maxima are not reproduced at these GPU counts: they need baselines spread over more GPUs
    than the sparse model, a setup the abstract does not give."""
    ratios = {}
    for pl, gl in ((64, 512), (128, 512), (256, 256), (128, 128)):
        for model, ns, nd in (("opt-66b", 2, 4), ("opt-175b", 4, 8)):
            for b in (8, 64):
                s = P(A100, model, gpus=ns, tp=ns, batch=b, prompt_len=pl, gen_len=gl, sparsity=0.8)
                d = P(A100, model, gpus=nd, tp=nd, batch=b, prompt_len=pl, gen_len=gl)
                assert s.fits and d.fits
                ratios[(pl, gl, model, b)] = s.metrics["tokens_per_s_per_gpu"] / d.metrics["tokens_per_s_per_gpu"]
    for model, measured in (("opt-66b", 520 / 336), ("opt-175b", 194 / 126)):
        band = [r for (pl, gl, m, b), r in ratios.items() if m == model and b == 64]
        assert min(band) * 0.95 <= measured <= max(band) * 1.05
    assert all(r > 1.3 for r in ratios.values())
    assert max(ratios.values()) < 3.6                                   # the claimed maxima are out of reach here


# ---- C2 KVQuant ------------------------------------------------------------------------------------
def test_kvquant_llama7b_1m_context_on_one_a100():
    """'serving the LLaMA-7B model with a context length of up to 1 million on a single A100-80GB'.
    Reproduced at 2 bits with scales amortised (KVQuant's per-channel key scales): 1M x 64 KiB =
    65.5 GB of KV next to 13.5 GB of weights fits the 85.9e9 bytes (80 GiB). 3-bit (98 GB) does not,
    nor does 2-bit with fp16 scale+zero per 128 elements (+12.5%). The '10 million on an 8-GPU
    system' half fits too, at 83.6 of the 85.9 GB per GPU (10M x 64 KiB / 8 = 81.9 GB of KV): the
    check in TECHNIQUES sec. 3 read '80 GB' as 80e9 bytes (640 GB < 655 GB); an '80GB' A100 holds
    80 GiB, which leaves room. Both halves are reproduced, with a 3% margin on the 10M one."""
    kw = dict(batch=1, prompt_len=1_000_000 - 64, gen_len=64, prefill_chunk=2048)
    assert P(A100, "llama-7b", kv_cache="int2", kv_group_size=None, **kw).fits
    assert not P(A100, "llama-7b", kv_cache="int3", kv_group_size=None, **kw).fits
    assert not P(A100, "llama-7b", kv_cache="int2", kv_group_size=128, **kw).fits
    ten = P(A100, "llama-7b", gpus=8, tp=8, batch=1, prompt_len=10_000_000 - 64, gen_len=64, prefill_chunk=2048,
            kv_cache="int2", kv_group_size=None)
    assert ten.fits
    assert ten.memory_bytes["hbm"] / load_device(A100).hbm_bytes > 0.95


# ---- C3 KIVI ---------------------------------------------------------------------------------------
def test_kivi_larger_batch_and_throughput_at_the_same_memory():
    """'up to 4x larger batch size, bringing 2.35x ~ 3.47x throughput'. KIVI-2: 2-bit keys/values in
    groups of 32 with fp16 scale and zero, the 128 most recent tokens kept in fp16 (KIVI's example
    configuration); batch = the most that fit an A100-80GB (the claim's 'same memory'); Llama-2-7B,
    384 output tokens, prompts 512-4096, prefill chunked. The batch ratio grows with the context
    toward the 5.3x byte ratio (the fp16 residual and the weights hold it back at short contexts):
    3.0x at 512, 4.1x at 2048 (the claim's 4x), 4.6x at 4096; throughput 2.15-2.4x, i.e. the low
    end of the claimed range from 2K context on. 3.47x is not reached: in the model decode stays
    partly weight-bound (the 13.5 GB of weights are read every step whatever the batch)."""
    res = {}
    for pl in (512, 2048, 4096):
        kw = dict(batch="max", prompt_len=pl, gen_len=384, prefill_chunk=256)
        f = P(A100, "llama-2-7b", **kw).metrics
        k = P(A100, "llama-2-7b", kv_cache="int2", kv_group_size=32, kv_residual=128, **kw).metrics
        res[pl] = (k["batch"] / f["batch"], k["tokens_per_s"] / f["tokens_per_s"])
    batch_ratios = [res[pl][0] for pl in sorted(res)]
    assert batch_ratios == sorted(batch_ratios)
    assert res[2048][0] == pytest.approx(4.0, rel=0.10)
    assert all(b < 2 / (0.25 + 4 / 32) for b in batch_ratios)          # never beyond the byte ratio
    assert 2.35 * 0.9 <= res[2048][1] <= 3.47 and 2.35 * 0.9 <= res[4096][1] <= 3.47


# ---- C1 long-context analysis ------------------------------------------------------------------------
def test_long_context_34b_50k_on_a100():
    """Yi-34B, 50K vs 4K context, one A100-80GB (Fu 2024, 'Challenges in Deploying Long-Context
    Transformers'; figures via its summary: prefill 14.1 s vs 0.89 s, 250-token decode 9.8 s vs 8.5 s,
    1 concurrent user at 50K vs ~20 at 4K). (1) prefill grows superlinearly: the ratio follows the
    closed-form FLOP ratio under the FlashAttention convention (4·s²·d per layer, halved when causal)
    within 15%; the paper's 15.8x counts half as many attention FLOPs. (2) one 50K user fits; at 4K
    the model fits 12-16 (it reads 80 GiB with 0.5 GB reserved; the paper's ~20 implies smaller KV or
    more free memory). (3) decode slows by the KV read: 1.15x, as the paper. (4) swapping one user's
    KV to host costs its bytes over PCIe: seconds of stall, ~10 decode steps."""
    m = load_model("yi-34b")
    kw = dict(batch=1, gen_len=250, prefill_chunk=4096)
    s4, s50 = P(A100, "yi-34b", prompt_len=4096, **kw), P(A100, "yi-34b", prompt_len=50_000, **kw)

    def flops(s):
        return 2 * s * m.n_active_params() + m.layers * 4 * s * s * m.d_attn * 0.5
    assert s50.metrics["ttft_s"] / s4.metrics["ttft_s"] == pytest.approx(flops(50_000) / flops(4096), rel=0.15)
    assert s50.metrics["ttft_s"] / s4.metrics["ttft_s"] > 50_000 / 4096
    users = lambda ctx: P(A100, "yi-34b", batch="max", prompt_len=ctx, gen_len=250, prefill_chunk=256).metrics["batch"]  # noqa: E731
    assert users(50_000) == 1
    assert 12 <= users(4096) <= 20
    assert s50.metrics["tpot_s"] / s4.metrics["tpot_s"] == pytest.approx(9.8 / 8.5, rel=0.05)
    kv_bytes = m.kv_bytes_per_token(2) * 50_250
    swap = P(A100, "yi-34b", prompt_len=50_000, gen_len=2, batch=1, prefill_chunk=4096,
             offload={"kv_cache": "cpu"}).metrics["tpot_s"]
    from sim.hardware.system import pcie_Bps
    assert swap >= kv_bytes / pcie_Bps(4, 16)
    assert 5 < swap / s50.metrics["tpot_s"] < 40


# ---- D1 TriForce -----------------------------------------------------------------------------------
def test_triforce_hierarchical_speedup_on_a100():
    """'achieving up to 2.31x on an A100 GPU' (Llama2-7B-128K, 124,928-token prompt, 256 outputs;
    TriForce README: retrieval-cache budget 4096, gamma 6, Llama-68M draft with a 256-token
    StreamingLLM cache). Acceptance rates are accuracy-side inputs the abstract does not give; the
    test checks consistency: with retrieval-draft acceptance 0.8-0.85 and tiny-draft acceptance
    0.5-0.8 the predicted speedup spans 2.07-2.58, which contains 2.31, and a flat speculation with
    the retrieval draft alone is slower than the hierarchy."""
    kw = dict(batch=1, prompt_len=124_928, gen_len=256, prefill_chunk=8192)
    ar = P(A100, "llama-2-7b", **kw)
    assert ar.fits and ar.breakdown["decode_bound"] == "hbm_bandwidth"

    def tri(a2, a1, hier=True):
        spec = {"draft_model": "self", "draft_kv_budget": 4096, "k": 6, "acceptance": a2}
        if hier:
            spec["draft_speculative"] = {"draft_model": TINY_DRAFT, "draft_kv_budget": 256, "k": 1, "acceptance": a1}
        return ar.metrics["tpot_s"] / P(A100, "llama-2-7b", speculative=spec, **kw).metrics["tpot_s"]
    lo, hi = tri(0.8, 0.5), tri(0.85, 0.8)
    assert lo < 2.31 < hi
    assert tri(0.85, 0.7, hier=False) < tri(0.85, 0.7)


# ---- E1 DeepSpeed Inference / ZeRO-Inference -----------------------------------------------------------
def test_deepspeed_inference_84_tflops_on_one_a6000_with_offload():
    """'inference 25x larger models than with GPU-only solutions, while delivering a high throughput of
    84 TFLOPS (over 50% of A6000 peak)'. With OPT-30B (60 GB, larger than the 48 GB card) streamed
    from host DRAM over PCIe 4.0 with prefetch, a layer's compute hides its fetch once a forward
    carries ~4K tokens (the minimum batch the claim needs); there the model gives 84 TF/s +-15%,
    above it up to ~80% of the 154.8 TF peak; at a quarter of it the stream bounds and TF/s collapses."""
    dev = load_device("RTX-A6000")
    system = System(dev, load_host(dev.default_host), Cluster(1, 1))
    wl = InferenceIn.model_validate({"batch": 1, "prompt_len": 512, "gen_len": 1, "offload": {"weights": "cpu"}})
    plan = make_plan(wl, system, load_model("opt-30b"))
    om = OffloadModel(plan, wl.offload)
    om.place(1, 513, 512)
    t_min = min_tokens_compute_bound(plan, om)
    fetch = om.layer_fetch(0, 0, ()).time
    # closed form: 2 FLOP per weight per token at the sustained TC rate = the layer's bytes over PCIe
    params_layer = plan.gemm_weight_bytes_per_layer()[1]
    assert t_min == pytest.approx(fetch * dev.peak_flops("fp16") * 0.85 / (2 * params_layer), rel=0.35)

    def tf(tokens):
        p = P("RTX-A6000", "opt-30b", batch=max(1, tokens // 512), prompt_len=512, gen_len=1, offload={"weights": "cpu"})
        assert p.fits
        return p.metrics["tflops_per_gpu"], p.bound
    at, bound = tf(t_min)
    assert at == pytest.approx(84, rel=0.15) and bound == "tensor_core_fp16"
    above, _ = tf(4 * t_min)
    assert 84 < above < 154.8
    below, bound = tf(t_min // 4)
    assert below < 84 / 2 and bound == "pcie"
