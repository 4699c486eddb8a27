"""End-to-end static-batch inference rows -> ``inference`` scenarios: TensorRT-LLM throughput and
first-token tables, batch-1 decode (gpt-fast, torchao, TensorRT-LLM), QServe, FP8 speedups and a
long-context vLLM run. Also the reference model text -> zoo name table and the inference scenario
builder that the serving and offload mappers reuse.
"""
from __future__ import annotations

import re

from .common import Unmapped, cluster, device

GPTJ = {"layers": 28, "hidden": 4096, "heads": 16, "ffn": 16384, "vocab": 50400, "norm": "layernorm"}

# reference model text -> zoo name (a note where the zoo entry is a same-dimension stand-in)
MODELS = {"OPT-30B": "opt-30b", "OPT-175B": "opt-175b", "BLOOM-176B": "bloom-176b", "OPT-6.7B": "opt-6.7b",
          "LLaMA(-2) 7B": "llama-2-7b", "LLaMA(-2) 70B": "llama-2-70b", "Llama-2-7B": "llama-2-7b",
          "Llama-2-70B": "llama-2-70b", "Llama-2-13B": "llama-2-13b", "LLaMA-v2-7B": "llama-2-7b",
          "Llama-3-8B": "llama-3-8b", "Llama-3.1-8B-Instruct-FP8": "llama-3.1-8b", "Llama-3.1-8B": "llama-3.1-8b",
          "Llama-3.3-70B-Instruct-FP8": "llama-3.1-70b", "Llama-3.1-405B-Instruct-FP8": "llama-3.1-405b",
          "Llama 3 8B": "llama-3-8b", "Llama 3 70B": "llama-3-70b", "Vicuna-7B-v1.3": "llama-7b",
          "Vicuna-33B-v1.3": "llama-33b", "Qwen1.5-72B": "qwen1.5-72b"}
MODEL_NOTES = {"Llama-3.3-70B-Instruct-FP8": "Llama-3.3-70B has the dimensions of llama-3.1-70b",
               "Vicuna-7B-v1.3": "Vicuna-7B is a LLaMA-7B fine-tune (llama-7b dims)",
               "Vicuna-33B-v1.3": "Vicuna-33B is a LLaMA-33B fine-tune (llama-33b dims)",
               "LLaMA(-2) 7B": "LLaMA(-2) 7B taken as llama-2-7b", "LLaMA(-2) 70B": "LLaMA(-2) 70B taken as llama-2-70b"}


def model_ref(text: str, notes: list[str]):
    if text == "GPT-J 6B":
        notes.append("GPT-J 6B inline: 28 layers, hidden 4096, 16 heads, ffn 16384, vocab 50400, LayerNorm, "
                     "rotary positions")
        return GPTJ
    if text not in MODELS:
        raise Unmapped(f"model '{text}' has no zoo name or dimensions")
    if text in MODEL_NOTES:
        notes.append(MODEL_NOTES[text])
    return MODELS[text]


def lens(text: str) -> tuple[int, int]:
    """'in 1024 / out 512', 'prompt 4 / gen 10', 'in 512 / out 32' -> (prompt, output) lengths."""
    a, b = re.findall(r"\d+", text)[:2]
    return int(a), int(b)


def inference_scenario(dev, model, batch, prompt, gen, weights, kv, tp=1, host=None, **extra) -> dict:
    wl = {"kind": "inference", "batch": batch, "prompt_len": prompt, "gen_len": gen, "weights": weights,
          "kv_cache": kv, **extra}
    if tp > 1:
        wl["tp"] = tp
    scen = {"hardware": dev, "model": model, "workload": wl}
    if host:
        scen["host"] = host
    if tp > 1:
        scen["cluster"] = cluster(tp)
    return scen


def trtllm_static(r, notes):
    """TensorRT-LLM v0.6.1 peak-throughput tables (static batch): output tokens/s."""
    dev, hw_note = device(r["hardware"].split(" (")[0])
    tp = int(r["num_gpus"])
    prompt, gen = (int(x) for x in re.findall(r"\d+", r["seq_len"]))
    fp8 = r["precision"].startswith("FP8")
    dt = "fp8" if fp8 else "fp16"
    value = float(r["value"])
    if r["unit"] == "tokens/s/GPU":
        value *= tp
        notes.append(f"per-GPU output throughput x {tp} GPUs = total tokens/s")
    elif tp > 1:
        raise Unmapped("per-GPU vs total throughput not stated for the A100 table with TP > 1")
    if fp8:
        notes.append("FP8 weights, activations and KV cache")
    notes.append("TensorRT-LLM v0.6.1 generation attention is the masked-MHA plugin kernel, which reads the "
                 "KV cache once per query head; the GQA-aware XQA kernel came in v0.8 (TensorRT-LLM blog "
                 "XQA-kernel.md: 2.4x Llama-70B throughput at 128/2048): kv_head_sharing false")
    scen = inference_scenario(dev, model_ref(r["model"], notes), int(r["global_batch"]), prompt, gen, dt, dt, tp,
                      kv_head_sharing=False)
    return "inference", scen, None, "tokens_per_s", value


def ttft(r, notes):
    dev = device(r["hardware"].split(" (")[0])[0]
    tp = int(r["num_gpus"])
    prompt = int(re.search(r"ISL (\d+)", r["seq_len"]).group(1))
    dt = "fp8" if r["precision"].startswith("FP8") else "fp16"
    notes.append("first-token latency = prefill of the prompt at batch 1; gen_len 1")
    scen = inference_scenario(dev, model_ref(r["model"], notes), 1, prompt, 1, dt, dt, tp)
    return "inference", scen, None, "ttft_s", float(r["value"]) * 1e-3


WEIGHTS = {"BF16 base": "bf16", "BF16 TP": "bf16", "int8 weight-only": "int8", "INT8 weight-only": "int8",
           "int4 weight-only G=32": "int4", "INT4 weight-only g64 (tinygemm)": "int4",
           "INT4 g64 + 2:4 sparsity (Sparse-Marlin)": "int4", "FP16": "fp16"}


def decode_batch1(r, notes, prompt: int, gen: int, why: str):
    """Batch-1 decode throughput (tokens/s) stored as time per output token = 1/value."""
    dev, hw_note = device(HW_E2E[r["hardware"]])
    if hw_note:
        notes.append(hw_note)
    tp = int(r["num_gpus"])
    w = WEIGHTS[r["precision"]]
    kv = "bf16" if w != "fp16" else "fp16"
    extra = {}
    if w == "int8" and "weight-only" in r["precision"]:
        extra["act_dtype"] = "bf16"
        notes.append(f"'{r['precision']}': int8 weights dequantised into bf16 GEMMs (act_dtype bf16; "
                     "weights 'int8' alone would mean W8A8)")
    if "2:4" in r["precision"]:
        extra.update(sparsity=0.5, sparsity_pattern="2:4")
        notes.append("2:4 sparse INT4 weights (Sparse-Marlin): sparsity 0.5, sparsity_pattern 2:4")
    m = re.search(r"\b[gG]=?(\d+)\b", r["precision"])
    if w == "int4" and m:
        extra["group_size"] = int(m.group(1))
        notes.append(f"weight group size {m.group(1)} as the precision column states")
    notes.append(f"batch-1 decode throughput stored as time per output token = 1/value; {why}")
    scen = inference_scenario(dev, model_ref(r["model"], notes), 1, prompt, gen, w, kv, tp, **extra)
    return "inference", scen, None, "tpot_s", 1.0 / float(r["value"])


HW_E2E = {"A100-SXM4-80GB (330 W power cap)": "A100-SXM4-80GB", "A100-80GB (single A100)": "A100-80GB",
          "A100-80GB": "A100-80GB", "A100-SXM4-80GB": "A100-SXM4-80GB", "H100-80GB": "H100",
          "H100-SXM5-80GB": "H100-SXM5-80GB", "A100-SXM4-80GB (A100 80G)": "A100-SXM4-80GB",
          "L40S-48GB": "L40S-48GB", "H100-80GB (4x)": "H100", "A100-80GB (4x)": "A100-80GB",
          "RTX 3090 (24GB)": "RTX 3090 (24GB GDDR6X)",
          "H100 (single GPU; blog: all Hopper experiments on a single H100)": "H100"}


def qserve(r, notes):
    dev = device(HW_E2E[r["hardware"]])[0]
    prompt, gen = lens(r["seq_len"])
    notes += ["QServe W4A8KV4: 4-bit weights into INT8 Tensor Cores (weights w4a8), 8-bit activations, 4-bit KV",
              "max-throughput batch from QServe's table; generation throughput = output tokens/s"]
    extra = {}
    g = re.search(r"per-group g(\d+)", r["precision"])
    if g:
        extra["group_size"] = int(g.group(1))
        notes.append(f"per-group weight scales, group {g.group(1)} (precision column)")
    elif "per-channel" in r["precision"]:
        extra["group_size"] = "channel"
        notes.append("per-channel weight scales (precision column)")
    scen = inference_scenario(dev, model_ref(r["model"], notes), int(r["global_batch"]), prompt, gen, "w4a8", "int4", **extra)
    return "inference", scen, None, "tokens_per_s", float(r["value"])


def fp8_speedup(r, notes):
    dev, note = device(HW_E2E[r["hardware"]])
    notes += [note, "FP8 W8A8 weights and activations; KV cache fp16 assumed", "speedup = FP16 time / FP8 time"]
    prompt, gen = (int(x) for x in re.findall(r"\d+", r["seq_len"]))
    b = int(r["global_batch"])
    model = model_ref(r["model"], notes)
    scen = inference_scenario(dev, model, b, prompt, gen, "fp8", "fp16")
    base = inference_scenario(dev, model, b, prompt, gen, "fp16", "fp16")
    return "inference", scen, base, "speedup", float(r["value"])



def vllm_steady_batch(r, notes):
    """vLLM v0.19 long-context run: a fixed concurrency of 8 taken as a steady batch."""
    dev, note = device(HW_E2E[r["hardware"]])
    notes += [note, "150 requests at concurrency 8 taken as a steady batch of 8; ~20k in / ~2k out",
              "BF16 weights and KV cache"]
    scen = inference_scenario(dev, model_ref(r["model"], notes), 8, 20000, 2000, "bf16", "bf16")
    return "inference", scen, None, "tokens_per_s", float(r["value"])
