"""Shared test fixtures (plain functions, imported by the test modules)."""
from sim.hardware import load_device


def inline_device(**over):
    """A hypothetical Ampere-class device, inline (every figure 'sourced' as a test fixture)."""
    d = dict(name="TestGPU", vendor="nvidia", arch="ampere", sms=108, boost_clock_mhz=1410,
             peak_tflops={"fp32": 19.5, "tf32": 156, "fp16": 312, "bf16": 312, "int8": 624},
             vector_fp32_tflops=19.5, sparse_24=True, register_file_kb_per_sm=256, smem_kb_per_sm=164,
             l2_mb=40, l2_bandwidth_gbps=7000, memory={"type": "HBM2e", "capacity_gb": 80, "bandwidth_gbps": 2000},
             nvlink=None, pcie={"generation": 4, "lanes": 16}, tdp_w=400, default_host="none")
    d.update(over)
    d["sources"] = {k: "test fixture" for k in d if k not in ("name", "vendor", "arch", "default_host")}
    d["sources"].update({f"efficiency.{k}": "test fixture" for k in d.get("efficiency", {})})
    return load_device(d)
