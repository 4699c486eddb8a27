"""Claims of the low-precision GEMM and sparse-kernel families (TECHNIQUES.md family 1 and 2: FP6-LLM,
GPTQ, GLM-130B, GPTQ on T4, COMET, DGQ, arbitrary-precision Tensor Cores, Flash-LLM), each with the
helper that computes its setup, so the tests assert the same numbers the registry judges.
"""
from __future__ import annotations

import math
from functools import lru_cache

from .common import A100, gemm_time, infer, node_system, with_eff
from .registry import claim, not_modelled


# ---- A1 FP6-LLM --------------------------------------------------------------------------------------
FP6_BATCHES = (1, 4, 16, 32, 64)


@lru_cache(maxsize=None)
def fp6_llm_ratios() -> dict:
    """Per-GPU tokens/s of FP6 LLaMA-70B on one A100-80GB over FP16 on two (TP 2), by batch; and
    whether FP16 fits one GPU."""
    ratios = {}
    for b in FP6_BATCHES:
        f6 = infer(A100, "llama-2-70b", batch=b, prompt_len=128, gen_len=128, weights="fp6")
        f16 = infer(A100, "llama-2-70b", gpus=2, tp=2, batch=b, prompt_len=128, gen_len=128)
        ratios[b] = (f6.fits and f16.fits,
                     f6.metrics["tokens_per_s_per_gpu"] / f16.metrics["tokens_per_s_per_gpu"])
    fp16_one = infer(A100, "llama-2-70b", batch=1, prompt_len=128, gen_len=8).fits
    return {"ratios": {b: r for b, (_, r) in ratios.items()}, "all_fit": all(f for f, _ in ratios.values()),
            "fp16_fits_one_gpu": fp16_one}


claim("A1.ratio", id="A1", family="lowprec_gemm", paper="FP6-LLM", hardware="A100-SXM4-80GB (1 vs 2)",
      claim="FP6-LLM enables the inference of LLaMA-70b using only a single GPU, achieving 1.69x-2.65x higher "
            "normalized inference throughput than the FP16 baseline.",
      setup="LLaMA-2-70B, FP6 on 1x A100-80GB vs FP16 on 2x A100-80GB (TP 2), per-GPU tokens/s; batch 1-64, "
            "prompt 128, 128 outputs (paper body: A100-80GB)",
      metric="per-GPU throughput ratio (x)", published=(1.69, 2.65), tolerance=0.15,
      )(lambda: (min(fp6_llm_ratios()["ratios"].values()), max(fp6_llm_ratios()["ratios"].values())))


# ---- A6 GPTQ -----------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def gptq_fits() -> dict:
    """OPT-175B on one A100-80GB at 3 and 4 bits."""
    kw = dict(batch=1, prompt_len=128, gen_len=128)
    return {"int3": infer(A100, "opt-175b", weights="int3", **kw).fits,
            "int4": infer(A100, "opt-175b", weights="int4", **kw).fits}


GPTQ_SETUP = {A100: (5, 1, None), "RTX-A6000": (8, 2, "pcie")}   # hw: (FP16 GPUs, 3-bit GPUs, intra-node link)


@lru_cache(maxsize=None)
def gptq_speedups(hw: str) -> dict:
    """Per-token speedup of 3-bit OPT-175B over FP16 (layers split across GPUs, PP at batch 1, as
    HF accelerate runs it): 'modern' with the defaults (Marlin-class fused dequantisation, ~1.5 ALU
    ops per weight hidden under the loads); 'old' with GPTQ's 2022 kernel (plain shift/mask decode,
    ~4 ALU ops per weight, half overlapped)."""
    n16, nq, intra = GPTQ_SETUP[hw]
    kw = dict(batch=1, prompt_len=128, gen_len=128)
    qi = intra if nq > 1 else None
    f16 = infer(hw, "opt-175b", gpus=n16, intra=intra, weights="fp16", pp=n16, **kw).metrics["tpot_s"]
    modern = infer(hw, "opt-175b", gpus=nq, intra=qi, weights="int3", pp=nq, **kw).metrics["tpot_s"]
    old = infer(with_eff(hw, dequant_ops_per_weight=4.0), "opt-175b", gpus=nq, intra=qi, weights="int3", pp=nq,
                dequant_overlap=0.5, **kw).metrics["tpot_s"]
    return {"fp16_tpot_s": f16, "modern": f16 / modern, "old": f16 / old}


GPTQ_QUOTE = ("end-to-end inference speedups over FP16, of around 3.25x when using high-end GPUs (NVIDIA A100) "
              "and 4.5x when using more cost-effective ones (NVIDIA A6000)")
claim("A6.fit", id="A6", family="lowprec_gemm", paper="GPTQ", hardware="A100-SXM4-80GB",
      claim="allowing us for the first time to execute an 175 billion-parameter model inside a single GPU for "
            "generative inference",
      setup="OPT-175B at 3 bits (group scales) on 1x A100-80GB; 4 bits (87.5 GB) must not fit",
      metric="fits in HBM", published=True, tolerance=0.0)(lambda: gptq_fits()["int3"])
claim("A6.int4", id="A6", family="lowprec_gemm", paper="GPTQ", hardware="A100-SXM4-80GB",
      claim="allowing us for the first time to execute an 175 billion-parameter model inside a single GPU for "
            "generative inference",
      setup="implied (TECHNIQUES.md 2(b) check): OPT-175B at 4 bits (87.5 GB) does not fit 1x A100-80GB, so the "
            "single-GPU claim means 3 bits", metric="fits in HBM", published=False, tolerance=0.0,
      )(lambda: gptq_fits()["int4"])
claim("A6.a100", id="A6", family="lowprec_gemm", paper="GPTQ", hardware="A100-SXM4-80GB (1 vs 5)", claim=GPTQ_QUOTE,
      setup="3-bit OPT-175B on 1x A100-80GB vs FP16 on 5 (layers split, batch 1); band: GPTQ's 2022 dequant "
            "(4 ALU ops/weight, half overlapped) to modern fused dequant",
      metric="per-token speedup (x)", published=3.25, tolerance=0.10,
      why="the modern fused kernel sits at the 16/3 byte-ratio bound (4.8x); the 2022 kernel's dequant overlap is "
          "unknown: on the A100 (lowest ALU:HBM ratio) it turns ALU-bound (2.5x). The two settings bracket 3.25x.",
      )(lambda: (gptq_speedups(A100)["old"], gptq_speedups(A100)["modern"]))
claim("A6.a6000", id="A6", family="lowprec_gemm", paper="GPTQ", hardware="RTX-A6000 (2 vs 8)", claim=GPTQ_QUOTE,
      setup="3-bit OPT-175B on 2x RTX A6000 vs FP16 on 8 (PCIe, layers split, batch 1), modern fused dequant",
      metric="per-token speedup (x)", published=4.5, tolerance=0.10)(lambda: gptq_speedups("RTX-A6000")["modern"])


# ---- A7 GLM-130B -------------------------------------------------------------------------------------
GLM130B = {"layers": 70, "hidden": 12288, "heads": 96, "ffn": 32768, "vocab": 150528, "gated_mlp": True,
           "norm": "layernorm", "bias": "all"}     # GLM-130B paper: 70 layers, d 12288, 96 heads, GeGLU 32768


@lru_cache(maxsize=None)
def glm130b() -> dict:
    kw = dict(gpus=4, intra="pcie", tp=4, batch=1, prompt_len=1024, gen_len=128)
    i4 = infer("RTX-3090", GLM130B, weights="int4", **kw)
    i8 = infer("RTX-3090", GLM130B, weights="int8", act_dtype="fp16", **kw)
    return {"int4_fits": i4.fits, "int8_fits": i8.fits, "all_reduce_s": i4.breakdown["decode_parts_s"]["all_reduce"]}


claim("A7.fit", id="A7", family="lowprec_gemm", paper="GLM-130B", hardware="4x RTX-3090",
      claim="effective inference on 4×RTX 3090 (24G) or 8×RTX 2080 Ti (11G) GPUs",
      setup="GLM-130B INT4 weights on 4x RTX 3090, TP 4 over PCIe (INT8 must not fit); the 8x RTX 2080 Ti half "
            "has no device file and is not checked",
      metric="fits in HBM", published=True, tolerance=0.0)(lambda: glm130b()["int4_fits"])


claim("A7.int8", id="A7", family="lowprec_gemm", paper="GLM-130B", hardware="4x RTX-3090",
      claim="effective inference on 4×RTX 3090 (24G) or 8×RTX 2080 Ti (11G) GPUs",
      setup="implied (TECHNIQUES.md 2(b) check): INT8 weights (130 GB) do not fit 4x RTX 3090, hence INT4",
      metric="fits in HBM", published=False, tolerance=0.0)(lambda: glm130b()["int8_fits"])


# ---- A10 GPTQ on T4 ----------------------------------------------------------------------------------
LLAMA32_1B = {"layers": 16, "hidden": 2048, "heads": 32, "kv_heads": 8, "ffn": 8192, "vocab": 128256,
              "gated_mlp": True, "tied_embeddings": True}


@lru_cache(maxsize=None)
def gptq_t4_latencies() -> dict:
    """Llama-3.2-1B request latency on a T4: FP16, fused int4, and int4 dequantised by a separate
    kernel into a 16-bit copy (read 0.5 B, write 2 B, GEMM reads 2 B per weight). Prompt/output
    lengths are not in the abstract: 256/64 assumed."""
    kw = dict(batch=1, prompt_len=256, gen_len=64)
    return {"fp16": infer("T4", LLAMA32_1B, **kw).metrics["latency_s"],
            "fused": infer("T4", LLAMA32_1B, weights="int4", **kw).metrics["latency_s"],
            "unfused": infer("T4", LLAMA32_1B, weights="int4", dequant="unfused", **kw).metrics["latency_s"]}


claim("A10.t4", id="A10", family="lowprec_gemm", paper="SLM for e-commerce", hardware="T4",
      claim="it paradoxically slowed inference by 82% on an older GPU architecture (NVIDIA T4) due to "
            "dequantization overhead",
      setup="Llama-3.2-1B on 1x T4, 4-bit GPTQ dequantised by a separate kernel vs FP16; prompt 256, 64 outputs "
            "(assumed)",
      metric="latency ratio GPTQ/FP16 (x)", published=1.82, tolerance=0.10,
      )(lambda: gptq_t4_latencies()["unfused"] / gptq_t4_latencies()["fp16"])


# ---- A2 COMET, A3, A4 DGQ: kernel-level -----------------------------------------------------------------
LLAMA3_70B_LINEARS = ((10240, 8192), (8192, 8192), (57344, 8192), (8192, 28672))   # (n, k): QKV, O, gate+up, down
KERNEL_M = (1, 16, 64, 256, 1024, 4096)


def _geomean(xs) -> float:
    xs = list(xs)
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


@lru_cache(maxsize=None)
def comet_kernel_speedups() -> dict:
    """Geometric-mean speedup over cuBLAS FP16 of an all-W4A4 (INT4 Tensor Cores) and an all-W4A8
    (INT8 Tensor Cores, 4-bit weights) kernel over LLaMA-3-70B linear shapes and M in KERNEL_M, on
    one A100-80GB. COMET's FMPQ mixes the two per channel group; the mix is an accuracy-side input."""
    s = node_system(A100)
    out = {}
    for name, dt, wdt in (("w4a4", "int4", None), ("w4a8", "int8", "int4")):
        out[name] = _geomean(gemm_time(s, m, n, k, "fp16") / gemm_time(s, m, n, k, dt, wdt)
                             for m in KERNEL_M for n, k in LLAMA3_70B_LINEARS)
    return out


claim("A2.kernel", id="A2", family="lowprec_gemm", paper="COMET (W4A4KV4)", hardware="A100-SXM4-80GB",
      claim="COMET achieves a kernel-level speedup of 2.88× over cuBLAS",
      setup="1x A100-80GB; LLaMA-3-70B linear shapes, M 1-4096; band: all-W4A8 to all-W4A4 (the FMPQ mix is not "
            "in the abstract) vs cuBLAS FP16",
      metric="GEMM speedup, geometric mean (x)", published=2.88, tolerance=0.10,
      why="COMET mixes W4A4 and W4A8 blocks in proportions set by accuracy; the model brackets 2.88x between the "
          "all-W4A8 and all-W4A4 kernels but cannot pin the mix (nor the paper's shape list)",
      )(lambda: (comet_kernel_speedups()["w4a8"], comet_kernel_speedups()["w4a4"]))


@lru_cache(maxsize=None)
def dgq_speedups(hw: str = A100) -> dict:
    """A8W4 (INT4 weights dequantised to INT8, INT8 Tensor Cores) over A16W4 (INT4 weights, FP16
    Tensor Cores), same shapes as COMET; with the device's INT8:FP16 Tensor-Core peak ratio, which
    bounds the gain once both are compute-bound (in the memory-bound regime both read the same bytes)."""
    from sim.hardware import load_device
    s = node_system(hw)
    r = [gemm_time(s, m, n, k, "fp16", "int4") / gemm_time(s, m, n, k, "int8", "int4")
         for m in KERNEL_M for n, k in LLAMA3_70B_LINEARS]
    d = load_device(hw)
    return {"max": max(r), "min": min(r), "peak_ratio": d.peak_tflops["int8"] / d.peak_tflops["fp16"]}


claim("A4.speed", id="A4", family="lowprec_gemm", paper="DGQ", hardware="A100-SXM4-80GB (assumed)",
      claim="we achieve 1.12 times memory reduction and 3.24 times speed gains comparing A16W4 implementation",
      setup="A100-80GB assumed (GPU not named); A8W4 vs A16W4 GEMM, LLaMA-3-70B linear shapes, M 1-4096, best case",
      metric="GEMM speedup, best shape (x)", published=3.24, tolerance=0.10,
      why="3.24x exceeds the INT8:FP16 Tensor-Core peak ratio (2x on every NVIDIA GPU in the zoo), and in the "
          "memory-bound regime both kernels read the same 4-bit weights; the gain must come from a slow A16W4 "
          "baseline kernel, which the abstract does not name (nor the GPU)",
      )(lambda: dgq_speedups()["max"])

not_modelled("A3.kernel", id="A3", family="lowprec_gemm", paper="Arbitrary-precision TC", hardware="not named",
             claim="up to 2.4× speedup in matrix multiplication compared to NVIDIA's CUTLASS",
             setup="GPU, bit widths and shapes not named", metric="GEMM speedup (x)", published=2.4, tolerance=0.10,
             why="not modelled: the bipolar-INT bit-decomposition kernel (1-bit MMAs recombined) has no cost model, "
                 "and the abstract names neither the GPU nor the precisions")


# ---- B1 Flash-LLM -------------------------------------------------------------------------------------
FLASH_LLM_LENGTHS = ((64, 512), (128, 512), (256, 256), (128, 128))   # (prompt, output) tokens, assumed
FLASH_LLM_README = {"opt-66b": 520 / 336, "opt-175b": 194 / 126}       # tokens/GPU-s, Flash-LLM README figure


@lru_cache(maxsize=None)
def flash_llm_ratios() -> dict:
    """Tokens per GPU-second of 80%-sparse OPT (2 GPUs for 66B, 4 for 175B) over dense (4, 8), by
    (prompt, output, model, batch); and whether every configuration fits."""
    ratios, fits = {}, True
    for pl, gl in FLASH_LLM_LENGTHS:
        for model, ns, nd in (("opt-66b", 2, 4), ("opt-175b", 4, 8)):
            for b in (8, 64):
                s = infer(A100, model, gpus=ns, tp=ns, batch=b, prompt_len=pl, gen_len=gl, sparsity=0.8)
                d = infer(A100, model, gpus=nd, tp=nd, batch=b, prompt_len=pl, gen_len=gl)
                fits = fits and s.fits and d.fits
                ratios[(pl, gl, model, b)] = s.metrics["tokens_per_s_per_gpu"] / d.metrics["tokens_per_s_per_gpu"]
    return {"ratios": ratios, "all_fit": fits}


def flash_llm_band(model: str, batch: int = 64) -> tuple[float, float]:
    r = [v for (pl, gl, m, b), v in flash_llm_ratios()["ratios"].items() if m == model and b == batch]
    return min(r), max(r)


FLASH_LLM_QUOTE = ("At end-to-end framework level on OPT-30B/66B/175B models, for tokens per GPU-second, Flash-LLM "
                   "achieves up to 3.8x and 3.6x improvement over DeepSpeed and FasterTransformer")
claim("B1.e2e", id="B1", family="sparse_kernels", paper="Flash-LLM", hardware="A100-SXM4-80GB", claim=FLASH_LLM_QUOTE,
      setup="A100-80GB; OPT-66B sparse on 2 vs dense on 4, OPT-175B 4 vs 8 (README setups); 80% sparsity, batch 8 "
            "and 64, prompts 64-256, outputs 128-512 (assumed); best case vs the 3.8x over DeepSpeed",
      metric="tokens per GPU-second ratio (x)", published=3.8, tolerance=0.10,
      why="at the README's GPU counts (half as many GPUs for the sparse model) the model reaches ~2.3x at most; "
          "the 'up to 3.8x' maxima need baselines spread over more GPUs than the sparse model, or slower "
          "baseline kernels, a setup the abstract does not give",
      )(lambda: max(flash_llm_ratios()["ratios"].values()))
for _m, _n in (("opt-66b", "2 vs 4"), ("opt-175b", "4 vs 8")):
    claim(f"B1.{_m}", id="B1", family="sparse_kernels", paper="Flash-LLM", hardware="A100-SXM4-80GB",
          claim=FLASH_LLM_QUOTE,
          setup=f"A100-80GB; {_m.upper()} sparse vs FasterTransformer dense on {_n} GPUs, batch 64 (Flash-LLM README "
                "figure: measured ratio); 80% sparsity, band over prompts 64-256 and outputs 128-512 (not given)",
          metric="tokens per GPU-second ratio (x)", published=FLASH_LLM_README[_m], tolerance=0.05,
          why="the measured ratio lies inside the band the unstated prompt/output lengths span; the lengths are "
              "needed to pin it",
          )(lambda _m=_m: flash_llm_band(_m))

not_modelled("B1.spmm", id="B1", family="sparse_kernels", paper="Flash-LLM", hardware="A100 (paper body)",
             claim="At SpMM kernel level, Flash-LLM significantly outperforms the state-of-the-art library, i.e., "
                   "Sputnik and SparTA by an average of 2.9x and 1.5x, respectively",
             setup="A100 (paper body); Sputnik (CUDA-core SpMM) and SparTA baselines",
             metric="SpMM speedup (x)", published=2.9, tolerance=0.10,
             why="not modelled: the model prices Flash-LLM's load-as-sparse/compute-as-dense GEMM but has no cost "
                 "model of the baselines (Sputnik's CUDA-core SpMM, SparTA's 2:4 + sparse split)")
