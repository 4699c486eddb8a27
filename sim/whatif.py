"""Hardware what-ifs: scale a resource of the device or host by a factor.

``whatif: {hbm_bandwidth: 2}`` in a scenario predicts the same workload on a device whose HBM is
twice as fast; everything else stays the spec's. The scaled spec is a new, validated spec (its
name gains a suffix), so what-ifs go through exactly the same cost model as real devices.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sim.hardware.spec import DeviceSpec, HostSpec


class WhatIf(BaseModel):
    """Factors (1 = as specified) applied to the device and host specs."""
    model_config = ConfigDict(extra="forbid")
    hbm_bandwidth: float = Field(default=1.0, gt=0, description="device memory bandwidth")
    hbm_capacity: float = Field(default=1.0, gt=0, description="device memory capacity")
    tensor_core: float = Field(default=1.0, gt=0, description="every matrix-unit peak (all dtypes)")
    vector: float = Field(default=1.0, gt=0, description="CUDA-core fp32 peak")
    l2_bandwidth: float = Field(default=1.0, gt=0)
    nvlink: float = Field(default=1.0, gt=0, description="NVLink bandwidth per GPU")
    pcie: float = Field(default=1.0, gt=0, description="PCIe lanes per GPU (device and host), i.e. PCIe bandwidth")
    network: float = Field(default=1.0, gt=0, description="inter-node bandwidth per GPU")
    dram_bandwidth: float = Field(default=1.0, gt=0)
    dram_capacity: float = Field(default=1.0, gt=0)
    nvme_bandwidth: float = Field(default=1.0, gt=0, description="NVMe read and write bandwidth")
    nvme_capacity: float = Field(default=1.0, gt=0)

    def is_identity(self) -> bool:
        return all(v == 1.0 for v in self.model_dump().values())

    def tag(self) -> str:
        return ",".join(f"{k}x{v:g}" for k, v in self.model_dump().items() if v != 1.0)


def _lanes(lanes: int, f: float) -> int:
    scaled = lanes * f
    if abs(scaled - round(scaled)) > 1e-9 or round(scaled) < 1:
        raise ValueError(f"pcie factor {f} gives {scaled} lanes; choose a factor giving whole lanes")
    return int(round(scaled))


def scale_device(dev: DeviceSpec, w: WhatIf) -> DeviceSpec:
    d = dev.model_dump()
    d["name"] = f"{dev.name}[{w.tag()}]"
    d["peak_tflops"] = {k: v * w.tensor_core for k, v in dev.peak_tflops.items()}
    d["vector_fp32_tflops"] *= w.vector
    d["l2_bandwidth_gbps"] *= w.l2_bandwidth
    d["memory"]["bandwidth_gbps"] *= w.hbm_bandwidth
    d["memory"]["capacity_gb"] *= w.hbm_capacity
    if d["nvlink"]:
        d["nvlink"]["bandwidth_gbps"] *= w.nvlink
    d["pcie"]["lanes"] = _lanes(dev.pcie.lanes, w.pcie)
    return DeviceSpec.model_validate(d)


def scale_host(host: HostSpec, w: WhatIf) -> HostSpec:
    h = host.model_dump()
    h["name"] = f"{host.name}[{w.tag()}]"
    h["dram"]["bandwidth_gbps"] *= w.dram_bandwidth
    h["dram"]["capacity_gb"] *= w.dram_capacity
    h["nvme"]["read_gbps_per_drive"] *= w.nvme_bandwidth
    h["nvme"]["write_gbps_per_drive"] *= w.nvme_bandwidth
    h["nvme"]["capacity_tb_per_drive"] *= w.nvme_capacity
    h["pcie_lanes_per_gpu"] = _lanes(host.pcie_lanes_per_gpu, w.pcie)
    return HostSpec.model_validate(h)
