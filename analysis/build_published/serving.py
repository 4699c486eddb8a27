"""End-to-end rows of speculative decoding (Spec-Bench) and online serving (vLLM's 2024-09
performance post) -> ``speculative`` scenarios with a draft model and ``serving`` scenarios with
an arrival process; both reuse the static inference scenario builder.
"""
from __future__ import annotations

import re

from .common import Unmapped, device
from .inference import HW_E2E, inference_scenario, model_ref

LLAMA_68M = {"layers": 2, "hidden": 768, "heads": 12, "ffn": 3072, "vocab": 32000, "gated_mlp": True}
# one-layer draft heads at the target's width (EAGLE; Medusa/Hydra approximated so)
DRAFT_HEAD = {"llama-7b": {"layers": 1, "hidden": 4096, "heads": 32, "ffn": 11008, "vocab": 32000, "gated_mlp": True},
              "llama-33b": {"layers": 1, "hidden": 6656, "heads": 52, "ffn": 17920, "vocab": 32000,
                            "gated_mlp": True}}


def spec_bench(r, notes):
    dev, note = device(HW_E2E[r["hardware"]])
    if note:
        notes.append(note)
    method = r["framework"].split(": ", 1)[1]
    acc = float(re.search(r"mean accepted tokens per step ([\d.]+)", r["notes"]).group(1))
    model = model_ref(r["model"], notes)
    if method.startswith("SpS"):
        draft, k = LLAMA_68M, 5
        notes.append("SpS draft: LLaMA-68M (2 layers, hidden 768); k = 5 drafted tokens assumed")
    elif method.startswith(("EAGLE", "Hydra", "Medusa")):
        draft, k = DRAFT_HEAD[model], 5
        notes.append(f"{method} draft head taken as one decoder layer at the target's width "
                     "(Medusa/Hydra heads approximated so); tree drafting taken as a chain of k = 5")
    else:
        raise Unmapped(f"{method} drafts without a draft model (prompt lookup / Jacobi lookahead)")
    notes += ["mean accepted tokens per step as Spec-Bench prints it (tokens per target forward)",
              "prompt and output lengths not in the row: 256 / 512 assumed (the ratio barely depends on them)",
              "speedup = autoregressive time / speculative time, batch 1, greedy",
              "Spec-Bench runs each method's Hugging Face / PyTorch code eagerly (leaderboard: PyTorch 2.5.1), "
              "baseline included: no CUDA graphs (cuda_graphs false)"]
    spec = {"draft_model": draft, "k": k, "mean_accepted": acc}
    scen = inference_scenario(dev, model, 1, 256, 512, "fp16", "fp16", speculative=spec, cuda_graphs=False)
    base = inference_scenario(dev, model, 1, 256, 512, "fp16", "fp16", cuda_graphs=False)
    return "speculative", scen, base, "speedup", float(r["value"])


def vllm_perf(r, notes):
    dev, note = device(HW_E2E[r["hardware"]])
    if note:
        notes.append(note)
    m = re.search(r"in (\d+) / out (\d+)", r["seq_len"]) or re.search(r"~(\d+) in / (\d+) out", r["seq_len"])
    prompt, gen = int(m.group(1)), int(m.group(2))
    tp = int(r["num_gpus"])
    notes += [f"{r['framework']}: 500 requests sent at once (arrival rate 1e6/s stands for 'QPS inf')",
              "scheduler limit 256 sequences in flight assumed (vLLM's default max_num_seqs)",
              f"request throughput x mean output {gen} tokens = output tokens/s",
              "dtype not stated: bf16 weights and KV assumed"]
    arrival = {"rate_per_s": 1e6, "requests": 500}
    if "ShareGPT" in r["seq_len"]:
        arrival["length_dist"] = "exponential"
        notes.append("ShareGPT prompts keep each conversation's own lengths (widely spread, long-tailed; the "
                     "source gives only the means): exponential lengths around the means assumed (CV 1)")
    else:
        notes.append("sonnet synthetic prompts: fixed input and output lengths")
    fw = r["framework"]
    if fw.startswith(("vLLM v0.6", "SGLang")):
        arrival["scheduler"] = "prefill_first"
        notes.append(f"{fw} schedules waiting prefills in their own steps, not mixed with decodes (vLLM v0 "
                     "scheduler, chunked prefill off below 32K context; SGLang's default, mixed chunks off): "
                     "scheduler prefill_first")
    else:
        arrival["scheduler"] = "chunked"
        notes.append(f"{fw} in-flight batching runs new contexts in the same iterations as decodes: "
                     "scheduler chunked (mixed steps)")
    scen = inference_scenario(dev, model_ref(r["model"], notes), 256, prompt, gen, "bf16", "bf16", tp, arrival=arrival)
    return "serving", scen, None, "tokens_per_s", float(r["value"]) * gen
