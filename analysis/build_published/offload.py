"""End-to-end offloaded-inference rows -> ``inference`` scenarios with an ``offload`` block:
ZeRO-Inference (CPU/NVMe weights on a DGX-2 V100), ZeRO-Inference with DeepNVMe (GDS on an Azure
A100 box) and FlexGen / FlexLLMGen on a T4. The placement, prefetch, compression and attention
choices come from each project's benchmark code, as the rows give only the headline setting.
"""
from __future__ import annotations

import re

from .common import Unmapped
from .inference import inference_scenario, lens, model_ref

def zero_inference(r, notes):
    tier = "nvme" if "NVMe" in r["framework"] else "cpu"
    notes += ["V100-32GB of a DGX-2 assumed (SXM; the blog names no machine); host DGX-2",
              f"all weights offloaded to {tier} and streamed per layer; prompt 4, generate 10 tokens"]
    if "prefetch" in r["framework"]:
        notes.append("layer prefetch on")
    elif r["id"] == "E0041":
        notes.append("Table 2 runs without layer prefetch (its NVMe figure equals Table 3's no-prefetch figure)")
    scen = inference_scenario("V100-SXM2-32GB", model_ref(r["model"], notes), int(r["global_batch"]), 4, 10, "fp16", "fp16",
                      host="DGX-2", offload={"weights": tier, "kv_cache": "none"})
    return "offload", scen, None, "tokens_per_s", float(r["value"])


def deepnvme_inference(r, notes):
    """DeepNVMe blog, Figure 3: Llama-3-70B on one A100 with every weight streamed from the RAID0 of 4 NVMe."""
    prompt, gen = lens(r["seq_len"])
    notes += ["host NC96ads-A100-v4 (4 local NVMe disks in RAID0, 13 GB/s read); A100 80GB PCIe",
              f"all fp16 weights offloaded to NVMe and streamed per layer; KV cache assumed on the GPU (it fits); "
              f"prompt {prompt}, generate {gen} tokens",
              "DeepNVMe with GDS: NVMe reads go straight to the GPU (offload gds: true)"]
    scen = inference_scenario("A100-PCIe-80GB", "llama-3-70b", int(r["global_batch"]), prompt, gen, "fp16", "fp16",
                      host="NC96ads-A100-v4", offload={"weights": "nvme", "kv_cache": "none", "gds": True})
    return "offload", scen, None, "tokens_per_s", float(r["value"])


def flexgen(r, notes):
    tier = re.search(r"lowest offload tier: (\w+)", r["parallelism"]).group(1)
    w = kv = "int4" if r["precision"].startswith("4-bit") else "fp16"
    prompt, gen = lens(r["seq_len"])
    flexgen = r["framework"].startswith("FlexLLMGen")
    extra_mb = 1
    notes += [f"{r['framework']}; effective batch {r['global_batch']} from FlexGen's batch-size table",
              "generation throughput = generated tokens / (prefill + decode time)"]
    offload = None
    if tier == "CPU":
        offload = {"weights": "cpu", "kv_cache": "none"}
        notes += ["lowest tier CPU: weights offloaded to host DRAM",
                  "GCP host (208 GB DRAM, 1.5 TB SSD) is not in the host zoo: the T4's default host stands in "
                  "(the T4's own PCIe Gen3 x16 link bounds the streaming)"]
        if flexgen and w == "int4":
            offload["kv_cache"] = "cpu"
            notes.append("FlexGen's benchmark/flexgen/bench_suite.py (suite_175b_1x1_comp, prompt 512: "
                         "--percent 0 100 0 100 0 100, GPU batch 48 x 3, no --cpu): compressed KV cache in "
                         "host DRAM too, fetched to the GPU each step; attention on the GPU; 3 GPU batches "
                         "share each layer's weight fetch but decompress and compute one after another "
                         "(micro_batches 3)")
            extra_mb = 3

    elif tier != "GPU":
        raise Unmapped("mixed CPU/disk placement on a GCP host not in the host zoo: the stand-in host's "
                       "NVMe figures would decide the result")
    extra = {"offload": offload} if offload else {}
    if extra_mb > 1:
        extra["micro_batches"] = extra_mb
    if flexgen:
        extra["attn_impl"] = "naive"
        notes.append("FlexGen computes attention with torch.bmm + softmax (pytorch_backend.py "
                     "_attention_value): attn_impl naive")
    if w == "int4":
        extra.update(group_size=64, kv_group_size=64, dequant="torch")
        notes.append("4-bit group-wise compression of weights and KV cache, group 64 (FlexGen flex_opt.py "
                     "CompressionConfig(num_bits=4, group_size=64)); decompressed before every use by "
                     "PyTorch ops (compression.py decompress: nibble unpack, div_ scale, add_ min) into a "
                     "16-bit copy: dequant torch")
    scen = inference_scenario("T4", model_ref(r["model"], notes), int(r["global_batch"]), prompt, gen, w, kv, **extra)
    return ("offload" if offload else "inference"), scen, None, "tokens_per_s", float(r["value"])
