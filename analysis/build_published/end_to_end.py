"""End-to-end rows (end_to_end.csv): ``map_e2e`` sends each row to its family's mapper by
framework and source (``training``, ``inference``, ``serving``, ``offload``), and ``E2E_UNMAPPED``
says, row by row, why the others cannot be held against a scenario.
"""
from __future__ import annotations

from .common import Unmapped
from .inference import decode_batch1, fp8_speedup, qserve, trtllm_static, ttft, vllm_steady_batch
from .offload import deepnvme_inference, flexgen, zero_inference
from .serving import spec_bench, vllm_perf
from .training import fa_gpt, megatron_2021, megatron_core

E2E_UNMAPPED = {
    "E0020": "strong-scaling MFU: parallel layout only in a figure, not in the row",
    "E0022": "HuggingFace baseline: framework inefficiency is not a training-schema field",
    "E0026": "Megatron-LM (no FlashAttention) baseline: its version, micro-batch, layout and recompute are not stated",
    "E0028": "HuggingFace baseline: framework inefficiency is not a training-schema field",
    "E0034": "Megatron-LM (no FlashAttention) baseline: its version, micro-batch, layout and recompute are not stated",
    "E0037": "12B of 30B parameters pinned on the GPU: partial weight offload is not expressible",
    "E0039": "10B of 30B parameters pinned on the GPU: partial weight offload is not expressible",
    "E0040": "10B of 30B parameters pinned on the GPU: partial weight offload is not expressible",
    "E0042": "same configuration as E0044 without layer prefetch (no prefetch switch in the schema)",
    "E0057": "model dimensions, batch and sequence length not given",
    "E0059": "model dimensions, batch and sequence length not given",
    "E0060": "model dimensions, batch and sequence length not given",
    "E0061": "model dimensions, batch and sequence length not given",
    "E0062": "model dimensions, batch and sequence length not given",
    "E0064": "model dimensions, batch and sequence length not given",
    "E0065": "model dimensions, batch and sequence length not given",
    "E0066": "aggregate PFLOP/s of an unspecified 100B+ model and layout",
    "E0068": "effective throughput under a latency SLA: not a predicted metric",
    "E0070": "effective throughput of 16 load-balanced replicas under an SLA: not a predicted metric",
    "E0072": "request lengths 'various': no scenario",
    "E0154": "3D layout and FLOP-counting convention not in the row (secondary quote)",
    "E0155": "parallel layout, batch and sequence length not in the row",
    "E0157": "TPU v4, not a GPU",
    "E0158": "TPU v4, not a GPU (and recalled)",
    "E0159": "181B model dimensions not in the row",
    "E0161": "model not specified ('best case')",
    "E1024": "Marlin vs exllamav2 inside TGI: the kernel implementation is not an inference-schema field",
    "E1025": "Marlin vs exllamav2 inside TGI: the kernel implementation is not an inference-schema field",
    "E1034": "vision model (SAM), not a transformer LM in the zoo",
    "E1043": "GPU not stated",
    "E1045": "GPU not stated",
    "E1065": "hierarchical speculation with a retrieval KV draft and offloading: acceptance not stated",
    "E1066": "hierarchical speculation with a retrieval KV draft and offloading: acceptance not stated",
    "E1068": "hierarchical speculation with a retrieval KV draft and offloading: acceptance not stated",
    "E1069": "hierarchical speculation with a retrieval KV draft and offloading: acceptance not stated",
    "E1075": "speculative acceptance not stated",
    "E1076": "speculative acceptance not stated",
    "E1093": "HuggingFace baseline; ShareGPT lengths not in the row",
    "E1095": "ShareGPT request lengths not in the row",
    "E1096": "maximum over five datasets whose lengths are not given",
    "E1097": "maximum over five datasets whose lengths are not given",
    "E1098": "maximum over five datasets whose lengths are not given",
    "E1099": "'up to' ratio between two serving systems",
    "E1100": "'up to' ratio between two serving systems",
    "E1102": "'up to' capacity gain under an SLO",
    "E1103": "'up to' capacity gain under an SLO",
    "E1104": "'up to' goodput gain, GPU not stated",
    "E1107": "mixed CPU/disk placement on a GCP host not in the host zoo",
    "E1111": "HuggingFace Accelerate baseline: offload schedule inefficiency is not a schema field",
    "E1112": "HuggingFace Accelerate baseline: offload schedule inefficiency is not a schema field",
    "E1115": "Petals: inference over a network of peers",
    "E1116": "GPU count not given",
    "E1118": "GPU count not given",
    "E1120": "GPU count not given",
    "E1126": "tuned partial optimizer offload ratio (Twin-Flow) is not expressible",
    "E1127": "tuned partial optimizer offload ratio (Twin-Flow) is not expressible",
    "E1128": "batch, sequence length and host not given",
    "E1129": "batch, sequence length and host not given",
    "E1130": "batch and sequence length not given",
    "E1131": "batch and sequence length not given",
    "E1133": "'up to' speedup, model and GPU not given",
    "E1134": "MFU over a range of models and lengths, not one configuration",
}


def map_e2e(r: dict):
    """One end_to_end row -> (family, scenario, baseline, metric, value, notes)."""
    rid, fw, notes = r["id"], r["framework"], []
    if rid in E2E_UNMAPPED:
        raise Unmapped(E2E_UNMAPPED[rid])
    if fw.startswith("Megatron-LM (PTD-P"):
        out = megatron_2021(r, notes)
    elif fw.startswith("Megatron-Core"):
        out = megatron_core(r, notes)
    elif fw.startswith("FlashAttention repo"):
        out = fa_gpt(r, notes)
    elif fw.startswith("ZeRO-Inference + DeepNVMe"):
        out = deepnvme_inference(r, notes)
    elif fw.startswith("ZeRO-Inference (full") and r["num_gpus"] == "4":
        raise Unmapped("layer fetch partitioned over 4 GPUs then all-gathered: not expressible")
    elif fw.startswith("ZeRO-Inference"):
        out = zero_inference(r, notes)
    elif fw.startswith("TensorRT-LLM v0.6.1"):
        out = trtllm_static(r, notes)
    elif fw.startswith("TensorRT-LLM v0.5") and "first-token" in r["metric"]:
        out = ttft(r, notes)
    elif fw.startswith("TensorRT-LLM v0.5") and r["metric"].startswith("decode throughput"):
        out = decode_batch1(r, notes, 128, 128, "ISL/OSL 128/128")
    elif fw.startswith("TensorRT-LLM (PyTorch backend"):
        raise Unmapped("batch size chosen by the scheduler and not stated")
    elif fw.startswith("gpt-fast"):
        out = decode_batch1(r, notes, 5, 200, "prompt 5 tokens; 200 new tokens assumed (gpt-fast default)")
        notes.append("GPUs power-capped at 330 W (README: ~1700 GB/s empirical peak); the cap is not modelled")
    elif fw.startswith("torchao"):
        out = decode_batch1(r, notes, 5, 200, "prompt and output lengths not stated: 5 / 200 assumed "
                                               "(gpt-fast-style generate)")
    elif fw == "TensorRT-LLM" and r["task"].startswith("inference (offline max throughput, in-flight"):
        raise Unmapped("TensorRT-LLM baseline batch size not listed")
    elif fw == "QServe":
        out = qserve(r, notes)
    elif fw == "TensorRT-LLM" and r["metric"] == "speedup vs FP16":
        out = fp8_speedup(r, notes)
    elif fw.startswith(("Flash-LLM", "DeepSpeed inference", "FasterTransformer")):
        raise Unmapped("prompt/output lengths (and the pruned model's sparsity) not stated")
    elif fw.startswith("vLLM v0.19"):
        out = vllm_steady_batch(r, notes)
    elif fw.startswith("Spec-Bench harness"):
        out = spec_bench(r, notes)
    elif fw.startswith("Lookahead decoding"):
        raise Unmapped("Jacobi lookahead decoding has no draft model: not expressible")
    elif r["source"].startswith("vllm-project/vllm-project.github.io _posts/2024-09-05"):
        out = vllm_perf(r, notes)
    elif r["source"].startswith("FMInference/FlexLLMGen"):
        out = flexgen(r, notes)
    else:
        raise Unmapped(f"no mapping for framework '{fw}'")
    family, scen, base, metric, value = out
    if r["notes"]:
        notes.append(f"reference note: {r['notes']}")
    return family, scen, base, metric, value, [n for n in notes if n]
