"""Published claims of technique families 1-5 (shared/TECHNIQUES.md sections 1-3), each with its
tolerance. Where the model cannot reproduce a claim, the test pins down why (the assumption that
differs, or the accuracy-side input the claim depends on) instead of bending the model to it.

The setups and predictions live in the claim registry (``analysis.claims``), which the report
shows too; these tests assert the published numbers and the physics around them through it.
Inputs a claim leaves open (lengths, acceptance rates, sparsity) are stated in each registry
entry and chosen from the papers' own setups where they are known, never fitted to the claimed
number. Predictions use the spec efficiencies (``parameters: spec``), so a calibration run cannot
move these checks.
"""
import pytest

from analysis import claims as C


def status(key):
    return C.CLAIMS[key].status()


# ---- A1 FP6-LLM ------------------------------------------------------------------------------------
def test_fp6_llm_llama70b_on_one_a100_vs_fp16_on_two():
    """'inference of LLaMA-70b using only a single GPU, achieving 1.69x-2.65x higher normalized
    inference throughput than the FP16 baseline' (A100-80GB; FP16 on 2 GPUs, per-GPU throughput).
    Reproduced: FP6 fits one GPU, FP16 needs two; the per-GPU ratio starts at the 16/6 byte-ratio
    bound at batch 1 (2.63 vs 2.65) and falls as the batch grows and the KV/compute share rises."""
    r = C.fp6_llm_ratios()
    ratios = [r["ratios"][b] for b in C.FP6_BATCHES]
    assert r["all_fit"] and not r["fp16_fits_one_gpu"]
    assert ratios[0] == pytest.approx(2.65, rel=0.05)
    assert all(a >= b for a, b in zip(ratios, ratios[1:]))              # declines with batch
    assert all(1.69 * 0.85 <= x <= 2.65 * 1.05 for x in ratios)
    assert min(ratios) == pytest.approx(1.69, rel=0.15)                 # the low end at batch 64
    assert status("A1.ratio") == "reproduced"


# ---- A6 GPTQ ---------------------------------------------------------------------------------------
def test_gptq_175b_3bit_fits_one_a100_and_4bit_does_not():
    """'execute an 175 billion-parameter model inside a single GPU': only at 3 bits (65.6 GB of
    values + group scales); 4 bits (87.5 GB) exceeds the 80 GiB of an A100-80GB."""
    f = C.gptq_fits()
    assert f["int3"] and not f["int4"]
    assert status("A6.fit") == "reproduced"


@pytest.mark.parametrize("hw,claim,key", [(C.A100, 3.25, "A6.a100"), ("RTX-A6000", 4.5, "A6.a6000")])
def test_gptq_speedup_over_fp16(hw, claim, key):
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
    the op count has no per-kernel field on ``Gemm``, so it stays a device override."""
    s = C.gptq_speedups(hw)
    assert s["fp16_tpot_s"] == pytest.approx({C.A100: 0.230, "RTX-A6000": 0.589}[hw], rel=0.10)
    assert s["modern"] <= 16 / 3 * 1.01                                  # never beats the byte ratio
    assert s["old"] <= claim <= s["modern"]
    if hw == "RTX-A6000":
        assert s["modern"] == pytest.approx(claim, rel=0.10)
        assert status(key) == "reproduced"
    else:
        assert status(key) == "partly"


# ---- A7 GLM-130B -----------------------------------------------------------------------------------
def test_glm130b_int4_fits_four_rtx3090_and_int8_does_not():
    """'INT4 ... effective inference on 4xRTX 3090 (24G)': 65 GB of INT4 weights over 4 GPUs (TP over
    PCIe) fit; INT8 (130 GB) does not. The 8x RTX 2080 Ti half of the claim has no device file."""
    g = C.glm130b()
    assert g["int4_fits"] and not g["int8_fits"]
    assert g["all_reduce_s"] > 0                                         # PCIe all-reduces are part of decode
    assert status("A7.fit") == "reproduced"


# ---- A10 GPTQ slower on T4 ---------------------------------------------------------------------------
def test_gptq_on_t4_is_slower_when_dequantisation_is_a_separate_kernel():
    """'4-bit GPTQ ... slowed inference by 82% on an older GPU architecture (NVIDIA T4) due to
    dequantization overhead' (Llama-3.2-1B). The slowdown comes out of the dequantisation model:
    with a fused kernel int4 is ~2x faster; the older GPTQ path on Turing dequantises into a 16-bit
    copy first (``dequant: unfused``: read 0.5 B, write 2 B, then a 2 B GEMM read per weight), which
    predicts 1.8-1.9x the FP16 time, i.e. 80-90% slower. Prompt/output lengths are not in the
    abstract: 256/64 assumed."""
    t = C.gptq_t4_latencies()
    assert t["fused"] < t["fp16"]
    assert t["unfused"] / t["fp16"] == pytest.approx(1.82, rel=0.10)
    assert status("A10.t4") == "reproduced"


# ---- B1 Flash-LLM ----------------------------------------------------------------------------------
def test_flash_llm_tokens_per_gpu_second():
    """'tokens per GPU-second ... up to 3.8x and 3.6x improvement over DeepSpeed and FasterTransformer'
    (OPT-66B/175B, A100). The README figure's bars give 520 vs 336 (OPT-66B, 2 vs 4 GPUs, batch 64)
    = 1.55x and 194 vs 126 (OPT-175B, 4 vs 8 GPUs) = 1.54x. Sparsity 80% (paper: 60-90%) and
    lengths are assumptions (not in the README; batch 64 on 2 GPUs only fits the KV of contexts
    under ~800 tokens): over prompts 64-256 and outputs 128-512 the model gives 1.37-1.48x (OPT-66B)
    and 1.43-1.55x (OPT-175B) at batch 64, the measured ratios at or within 5% above the bands' tops,
    and 1.65-1.72x at batch 8 (more memory-bound). The 'up to
    3.8x' maxima are not reproduced at these GPU counts: they need baselines spread over more GPUs
    than the sparse model, a setup the abstract does not give."""
    r = C.flash_llm_ratios()
    assert r["all_fit"]
    for model, measured in C.FLASH_LLM_README.items():
        lo, hi = C.flash_llm_band(model, batch=64)
        assert lo * 0.95 <= measured <= hi * 1.05
        assert status(f"B1.{model}") in ("partly", "reproduced")
    assert all(x > 1.3 for x in r["ratios"].values())
    assert max(r["ratios"].values()) < 3.6                               # the claimed maxima are out of reach here
    assert status("B1.e2e") == "not reproduced"


# ---- C2 KVQuant ------------------------------------------------------------------------------------
def test_kvquant_llama7b_1m_context_on_one_a100():
    """'serving the LLaMA-7B model with a context length of up to 1 million on a single A100-80GB'.
    Reproduced at 2 bits with scales amortised (KVQuant's per-channel key scales): 1M x 64 KiB =
    65.5 GB of KV next to 13.5 GB of weights fits the 85.9e9 bytes (80 GiB). 3-bit (98 GB) does not,
    nor does 2-bit with fp16 scale+zero per 128 elements (+12.5%). The '10 million on an 8-GPU
    system' half fits too, at 83.6 of the 85.9 GB per GPU (10M x 64 KiB / 8 = 81.9 GB of KV): the
    check in TECHNIQUES sec. 3 read '80 GB' as 80e9 bytes (640 GB < 655 GB); an '80GB' A100 holds
    80 GiB, which leaves room. Both halves are reproduced, with a 3% margin on the 10M one."""
    f = C.kvquant_fits()
    assert f["1m_int2"] and not f["1m_int3"] and not f["1m_int2_g128"]
    assert f["10m_int2"] and f["10m_hbm_share"] > 0.95
    assert status("C2.1m") == status("C2.10m") == "reproduced"


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
    res = C.kivi_ratios()
    batch_ratios = [res[pl][0] for pl in sorted(res)]
    assert batch_ratios == sorted(batch_ratios)
    assert res[2048][0] == pytest.approx(4.0, rel=0.10)
    assert all(b < 2 / (0.25 + 4 / 32) for b in batch_ratios)          # never beyond the byte ratio
    assert 2.35 * 0.9 <= res[2048][1] <= 3.47 and 2.35 * 0.9 <= res[4096][1] <= 3.47
    assert status("C3.batch") == "reproduced" and status("C3.throughput") == "partly"


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
    r = C.long_context_34b()
    assert r["prefill_ratio"] == pytest.approx(r["flop_ratio"], rel=0.15)
    assert r["prefill_ratio"] > 50_000 / 4096
    assert r["users_50k"] == 1
    assert 12 <= r["users_4k"] <= 20
    assert r["decode_ratio"] == pytest.approx(9.8 / 8.5, rel=0.05)
    assert r["swap_tpot_s"] >= r["swap_floor_s"]
    assert 5 < r["swap_tpot_s"] / r["tpot_50k_s"] < 40
    assert status("C1.users50k") == status("C1.decode") == "reproduced"


# ---- D1 TriForce -----------------------------------------------------------------------------------
def test_triforce_hierarchical_speedup_on_a100():
    """'achieving up to 2.31x on an A100 GPU' (Llama2-7B-128K, 124,928-token prompt, 256 outputs;
    TriForce README: retrieval-cache budget 4096, gamma 6, Llama-68M draft with a 256-token
    StreamingLLM cache). Acceptance rates are accuracy-side inputs the abstract does not give; the
    test checks consistency: with retrieval-draft acceptance 0.8-0.85 and tiny-draft acceptance
    0.5-0.8 the predicted speedup spans 2.07-2.58, which contains 2.31, and a flat speculation with
    the retrieval draft alone is slower than the hierarchy."""
    ar = C.triforce_ar()
    assert ar.fits and ar.breakdown["decode_bound"] == "hbm_bandwidth"
    lo, hi = (C.triforce_speedup(*a) for a in C.TRIFORCE_ACCEPTANCE)
    assert lo < 2.31 < hi
    assert C.triforce_speedup(0.85, 0.7, hier=False) < C.triforce_speedup(0.85, 0.7)
    assert status("D1.a100") == "partly"


# ---- E1 DeepSpeed Inference / ZeRO-Inference -----------------------------------------------------------
def test_deepspeed_inference_84_tflops_on_one_a6000_with_offload():
    """'inference 25x larger models than with GPU-only solutions, while delivering a high throughput of
    84 TFLOPS (over 50% of A6000 peak)'. With OPT-30B (60 GB, larger than the 48 GB card) streamed
    from host DRAM over PCIe 4.0 with prefetch, a layer's compute hides its fetch once a forward
    carries ~4K tokens (the minimum batch the claim needs); there the model gives 84 TF/s +-15%,
    above it up to ~80% of the 154.8 TF peak; at a quarter of it the stream bounds and TF/s collapses."""
    z = C.zero_inference()
    # closed form: 2 FLOP per weight per token at the sustained TC rate = the layer's bytes over PCIe
    assert z["t_min"] == pytest.approx(z["t_min_closed_form"], rel=0.35)
    fits, at, bound = z["at"]
    assert fits and at == pytest.approx(84, rel=0.15) and bound == "tensor_core_fp16"
    fits, above, _ = z["above"]
    assert fits and 84 < above < z["peak_tflops"]
    fits, below, bound = z["below"]
    assert fits and below < 84 / 2 and bound == "pcie"
    assert status("E1.84tf") == "reproduced"
