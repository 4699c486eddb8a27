"""What every mapper of the published-rows builder shares: the reason a row stays out
(``Unmapped``), the reference folder, parsers for the reference's free-text ``params`` column,
canonical JSON and number formatting (so a rebuild is byte-identical), the reference's hardware
text -> zoo device table, and the cluster and Megatron-GPT model blocks several families use.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


class Unmapped(Exception):
    """The row cannot be expressed as a scenario; the message is the reason (one line)."""


def reference_dir() -> Path:
    """$GPUSIM_REFERENCE, else shared/reference in the checkout, else /work/shared/reference."""
    for p in (os.environ.get("GPUSIM_REFERENCE"), REPO / "shared" / "reference", "/work/shared/reference"):
        if p and (Path(p) / "kernel_measurements.csv").exists():
            return Path(p)
    raise FileNotFoundError("shared/reference not found; set GPUSIM_REFERENCE")


# ---- small parsers -------------------------------------------------------------------------------

def parse_params(text: str) -> tuple[dict[str, str], list[str]]:
    """'pass=fwd;seqlen=4096;M=N=K=4096;weight 72k x 18k' -> ({'pass': 'fwd', 'seqlen': '4096',
    'm': '4096', 'n': '4096', 'k': '4096'}, ['weight 72k x 18k']). Keys are lower-cased."""
    kv, free = {}, []
    for part in (text or "").split(";"):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            free.append(part)
            continue
        m = re.fullmatch(r"((?:[A-Za-z_][A-Za-z0-9_ ]*=)+)(.*)", part)   # 'M=N=K=4096' or 'k=v (note=x)'
        keys = [k.strip() for k in m.group(1).split("=") if k.strip()] if m else []
        if m and len(keys) > 1 and not re.fullmatch(r"[A-Za-z0-9_ ]*", m.group(2)):
            keys, value = keys[:1], part.split("=", 1)[1].strip()
        elif m:
            value = m.group(2).strip()
        else:
            free.append(part)
            continue
        for k in keys:
            kv[k.lower()] = value
    return kv, free


def lead_int(text: str) -> int | None:
    m = re.match(r"\s*(\d+)", text or "")
    return int(m.group(1)) if m else None


def lead_bool(text: str) -> bool | None:
    m = re.match(r"\s*(true|false)", text or "", re.I)
    return None if not m else m.group(1).lower() == "true"


def sj(obj) -> str:
    """Canonical JSON: sorted keys, no spaces; the same scenario always serialises the same."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def fmt(v: float) -> str:
    return format(float(v), ".10g")


# ---- hardware names ------------------------------------------------------------------------------

# reference hardware text -> (zoo device, note on the mapping) or (None, reason it is unmapped)
HARDWARE = {
    "A100-SXM4-80GB": ("A100-SXM4-80GB", ""),
    "A100-SXM4-40GB": ("A100-SXM4-40GB", ""),
    "A100-PCIe-80GB": ("A100-PCIe-80GB", ""),
    "H100-SXM5-80GB": ("H100-SXM5-80GB", ""),
    "H100-PCIe-80GB": ("H100-PCIe-80GB", ""),
    "RTX 4090": ("RTX-4090", ""),
    "A10": ("A10", ""),
    "L40S-48GB": ("L40S", ""),
    "H100-SXM5-80GB (reported as 'NVIDIA H100 80GB HBM3', docker cloud)":
        ("H100-SXM5-80GB", "reported as 'NVIDIA H100 80GB HBM3' (the SXM5 part), cloud container"),
    "A10 (24GB GDDR6, ECC off)": ("A10", "ECC off"),
    "RTX 3090 (24GB GDDR6X)": ("RTX-3090", ""),
    "A100 (README: 'evaluated on NVIDIA A100 GPUs')":
        ("A100-SXM4-80GB", "A100 variant not stated; 80GB SXM4 assumed because the figure's dense cuBLAS "
                           "bars (27 TFLOP/s at 16x36864x9216) imply ~1.7 TB/s of weight reads, above the "
                           "40GB part's 1.555 TB/s"),
    "H100": ("H100-SXM5-80GB", "H100 variant not stated; SXM5 assumed"),
    "H100 (FA3 requires Hopper; variant not stated)": ("H100-SXM5-80GB", "H100 variant not stated; SXM5 assumed"),
    "A100 (SXM4, 40GB launch part assumed)": ("A100-SXM4-40GB", "row assumes the 40GB SXM4 launch part"),
    "A100-80GB": ("A100-SXM4-80GB", "A100 80GB form factor not stated; SXM4 assumed"),
    "A100 node, 8 GPUs, NVLink 3 / NVSwitch (300 GB/s uni-dir per GPU)":
        ("A100-SXM4-80GB", "A100 memory size not stated; 80GB SXM4 assumed (NVLink is the same on 40GB)"),
    "V100 (HBM2 900 GB/s spec)": ("V100-SXM2-32GB", "V100 variant not stated; SXM2 32GB assumed "
                                                   "(its 900 GB/s HBM2 matches the row's spec)"),
    "H100-PCIe-80GB (114 SMs, HBM2e 2.0 TB/s spec)": ("H100-PCIe-80GB", ""),
    "H100 (user-reported, SXM assumed)": ("H100-SXM5-80GB", "user-reported H100; SXM assumed by the row"),
    "H100 PCIe x2 with NVLink bridge": ("H100-PCIe-80GB", "two H100 PCIe cards joined by an NVLink bridge"),
    "H100 (8-GPU cluster node, PCIe Gen5 host link)": ("H100-SXM5-80GB", "8-GPU node; SXM5 (HGX) assumed"),
    "H100 (8-GPU cluster node)": ("H100-SXM5-80GB", "8-GPU node; SXM5 (HGX) assumed"),
    "RTX 4090 x8 (PCIe Gen4)": ("RTX-4090", "one of 8 RTX 4090 in a PCIe Gen4 server, measured one at a time"),
    "L40 (GDDR6 864 GB/s spec)": (None, "L40 is not in the device zoo (L40S is a different part)"),
    "RTX 6000 Ada": (None, "RTX 6000 Ada is not in the device zoo (RTX-A6000 is the Ampere card)"),
    "V100-PCIE-32GB": (None, "V100 PCIe is not in the device zoo (only V100-SXM2-32GB)"),
    "V100": ("V100-SXM2-32GB", "V100 variant not stated; SXM2 32GB assumed"),
}


def device(text: str) -> tuple[str, str]:
    """Reference hardware text -> (zoo device, note on the mapping); Unmapped when it has none."""
    if text not in HARDWARE:
        raise Unmapped(f"hardware '{text}' not mapped to a zoo device")
    name, note = HARDWARE[text]
    if name is None:
        raise Unmapped(note)
    return name, note


def cluster(gpus: int, inter_gbps: float | None = None, intra: str = "nvlink") -> dict:
    """A scenario's cluster block: up to 8 GPUs per node (DGX/HGX), inter-node Gb/s when given."""
    c = {"gpus": gpus, "gpus_per_node": min(gpus, 8), "intra_node": intra}
    if inter_gbps is not None:
        c["inter_node_gbps"] = inter_gbps
    return c


def gpt_model(layers: int, hidden: int, heads: int, vocab: int, seq_len: int) -> dict:
    """A Megatron GPT inline: MHA, 4h GeLU MLP, LayerNorm, biases, learned positions, tied output."""
    return {"layers": layers, "hidden": hidden, "heads": heads, "ffn": 4 * hidden, "vocab": vocab,
            "seq_len": seq_len, "norm": "layernorm", "bias": "all", "position_embedding": "learned",
            "tied_embeddings": True}
