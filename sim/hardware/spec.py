"""Schemas of the hardware zoo: a device (GPU), a host (CPU, DRAM, PCIe, NVMe) and a link.

Files hold figures in the units datasheets print (TFLOP/s, GB/s with 1 GB = 1e9 bytes; device
memory GB, L2 MB and shared-memory KB, which vendors count in binary units (GiB, MiB, KiB); MHz, W); the properties ending in ``_Bps``, ``_flops`` and ``_bytes`` give SI values
(bytes, bytes/s, FLOP/s) for the cost model. Every figure carries a source in ``sources``:
the loader refuses a file that leaves a figure unsourced.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DTYPES = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8", "int4", "fp4")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Memory(_Strict):
    type: str = Field(description="HBM2, HBM2e, HBM3, HBM3e, GDDR6, GDDR6X, LPDDR5X ...")
    capacity_gb: float = Field(gt=0, description="device memory, GB (1e9 bytes)")
    bandwidth_gbps: float = Field(gt=0, description="peak device memory bandwidth, GB/s")


class NVLink(_Strict):
    generation: int = Field(ge=1, le=6)
    bandwidth_gbps: float = Field(gt=0, description="per GPU, per direction, GB/s")
    topology: Literal["switch", "bridge", "mesh"] = Field(
        description="switch: all GPUs of a node through NVSwitch (SXM/OAM boards); bridge: PCIe cards "
                    "paired by an NVLink bridge (one peer); mesh: direct links between every pair (AMD OAM)")


class PCIe(_Strict):
    generation: int = Field(ge=3, le=6)
    lanes: int = Field(ge=1, le=128)


class DeviceSpec(_Strict):
    """One accelerator. ``peak_tflops`` holds dense (non-sparse) matrix-unit peaks per dtype;
    a dtype the device cannot run on its matrix units is simply absent."""

    name: str
    vendor: Literal["nvidia", "amd"]
    arch: str = Field(description="volta, turing, ampere, ada, hopper, blackwell, cdna2, cdna3")
    sms: int = Field(gt=0, description="streaming multiprocessors (NVIDIA) or compute units (AMD)")
    boost_clock_mhz: float = Field(gt=0)
    peak_tflops: dict[str, float] = Field(description="dense matrix-unit peak per dtype, TFLOP/s (TOP/s for ints)")
    vector_fp32_tflops: float = Field(gt=0, description="CUDA-core / SIMD fp32 peak (dequantisation, elementwise)")
    sparse_24: bool = Field(description="2:4 structured sparsity doubles the matrix peak")
    register_file_kb_per_sm: float = Field(gt=0)
    smem_kb_per_sm: float = Field(gt=0, description="max shared memory (LDS on AMD) per SM, KB")
    l2_mb: float = Field(gt=0)
    l2_bandwidth_gbps: float = Field(gt=0, description="aggregate L2 read bandwidth, GB/s")
    memory: Memory
    nvlink: NVLink | None = Field(description="null when the device has no NVLink/Infinity Fabric link")
    pcie: PCIe
    tdp_w: float = Field(gt=0)
    default_host: str = Field(description="host zoo name used when a scenario names none")
    efficiency: dict[str, float] = Field(default_factory=dict,
                                         description="overrides of sim.cost.efficiency parameters (name -> value)")
    sources: dict[str, str]
    calibration: str = Field(default="", description="set when efficiency comes from a calibrated profile: its file")
    notes: str = ""

    @model_validator(mode="after")
    def _check(self):
        for d, v in self.peak_tflops.items():
            if d not in DTYPES:
                raise ValueError(f"peak_tflops: unknown dtype '{d}', expected one of {DTYPES}")
            if v <= 0:
                raise ValueError(f"peak_tflops.{d}: must be > 0 TFLOP/s, got {v}")
        figures = [k for k in type(self).model_fields
                   if k not in ("name", "vendor", "arch", "sources", "notes", "efficiency", "default_host", "calibration")
                   and getattr(self, k) is not None]
        figures += [f"efficiency.{k}" for k in self.efficiency]
        missing = [k for k in figures if k not in self.sources]
        if missing:
            raise ValueError(f"sources: no source given for {missing}; every figure needs one")
        return self

    # --- SI views used by the cost model -------------------------------------------------
    def peak_flops(self, dtype: str) -> float:
        """Dense matrix-unit peak in FLOP/s; raises KeyError when the device lacks the dtype."""
        return self.peak_tflops[dtype] * 1e12

    @property
    def hbm_Bps(self) -> float:
        return self.memory.bandwidth_gbps * 1e9

    @property
    def hbm_bytes(self) -> float:
        """Vendors' memory, L2 and shared-memory sizes are binary: an "80GB" A100 reports 81920 MiB in
        nvidia-smi, a "50 MB" L2 is 50 MiB. Bandwidths and FLOP/s stay decimal."""
        return self.memory.capacity_gb * 2**30

    @property
    def l2_Bps(self) -> float:
        return self.l2_bandwidth_gbps * 1e9

    @property
    def l2_bytes(self) -> float:
        return self.l2_mb * 2**20

    @property
    def smem_bytes_per_sm(self) -> float:
        return self.smem_kb_per_sm * 2**10

    @property
    def vector_flops(self) -> float:
        return self.vector_fp32_tflops * 1e12

    @property
    def nvlink_Bps(self) -> float:
        """Per-direction NVLink bandwidth per GPU (0 without NVLink)."""
        return self.nvlink.bandwidth_gbps * 1e9 if self.nvlink else 0.0


class CPU(_Strict):
    model: str
    sockets: int = Field(ge=1)
    cores: int = Field(ge=1, description="physical cores, all sockets")
    fp32_tflops: float = Field(gt=0, description="peak SIMD fp32 of all cores (for the CPU Adam step)")


class DRAM(_Strict):
    capacity_gb: float = Field(gt=0)
    bandwidth_gbps: float = Field(gt=0, description="peak host memory bandwidth, all channels, GB/s")


NVME_OPTIONAL = ("random_read_iops_per_drive", "random_write_iops_per_drive",
                 "random_read_iops_qd1_per_drive", "random_write_iops_qd1_per_drive",
                 "write_cache_gb_per_drive", "sustained_write_gbps_per_drive")


class NVMe(_Strict):
    drives: int = Field(ge=0)
    capacity_tb_per_drive: float = Field(ge=0)
    read_gbps_per_drive: float = Field(ge=0, description="sequential read, GB/s")
    write_gbps_per_drive: float = Field(ge=0, description="sequential write, GB/s")
    # Optional per-command figures of one drive (datasheet 4 KiB random IOPS): without them only large
    # streaming transfers can be priced. Each one present needs its own source, ``sources['nvme.<field>']``.
    random_read_iops_per_drive: float | None = Field(
        default=None, gt=0, description="4 KiB random read IOPS at the vendor's high rated queue depth")
    random_write_iops_per_drive: float | None = Field(
        default=None, gt=0, description="4 KiB random write IOPS at the vendor's high rated queue depth")
    random_read_iops_qd1_per_drive: float | None = Field(
        default=None, gt=0, description="4 KiB random read IOPS at queue depth 1 (= 1 / per-request latency)")
    random_write_iops_qd1_per_drive: float | None = Field(
        default=None, gt=0, description="4 KiB random write IOPS at queue depth 1 (= 1 / per-request latency)")
    # Optional write cache of a consumer drive (an SLC cache, e.g. Samsung's Intelligent TurboWrite): the
    # first write_cache_gb_per_drive GB of a write run at write_gbps_per_drive, the rest at the drive's
    # native rate sustained_write_gbps_per_drive. Both or neither (absent = no cache effect).
    write_cache_gb_per_drive: float | None = Field(
        default=None, gt=0, description="bytes (GB) a drive writes at its burst rate before its write cache is full")
    sustained_write_gbps_per_drive: float | None = Field(
        default=None, gt=0, description="sequential write rate once the write cache is full, GB/s")

    @model_validator(mode="after")
    def _cache_pair(self):
        if (self.write_cache_gb_per_drive is None) != (self.sustained_write_gbps_per_drive is None):
            raise ValueError("write_cache_gb_per_drive and sustained_write_gbps_per_drive go together: "
                             "a write cache needs both its size and the rate after it")
        return self


HOST_LINK_KINDS = ("nvlink-c2c",)      # link kinds a host may name as its GPUs' attachment (gpu_link)


class HostSpec(_Strict):
    """The machine around the GPUs: CPU, DRAM, the link from each GPU to host memory and local NVMe.

    The GPU's link to host memory is PCIe (``pcie_generation`` x ``pcie_lanes_per_gpu``, the lower of
    device and host) unless ``gpu_link`` names a link file of another kind: on a Grace Hopper
    superchip the GPU reaches the Grace CPU's memory over NVLink-C2C, which no PCIe width expresses.
    """

    name: str
    gpus: int = Field(ge=1, description="GPUs the host carries")
    cpu: CPU
    dram: DRAM
    pcie_generation: int = Field(ge=3, le=6)
    pcie_lanes_per_gpu: int = Field(ge=1, le=128)
    gpu_link: str | None = Field(
        default=None,
        description="optional: zoo link name (sim/hardware/links/<name>.yaml, kind nvlink-c2c) of each GPU's "
                    "attachment to host memory when it is not PCIe; absent: the PCIe path (the lower of device "
                    "and host generation, the fewer lanes)")
    network_gbps_per_gpu: float = Field(gt=0, description="inter-node line rate per GPU, Gbit/s (NICs x rate / GPUs)")
    nvme: NVMe
    efficiency: dict[str, float] = Field(default_factory=dict,
                                         description="overrides of host-side efficiency parameters (CPU Adam, DRAM)")
    sources: dict[str, str]
    calibration: str = Field(default="", description="set when efficiency comes from host probes: the profile file")
    notes: str = ""

    @model_validator(mode="after")
    def _check(self):
        figures = ["gpus", "cpu", "dram", "pcie_generation", "pcie_lanes_per_gpu", "network_gbps_per_gpu", "nvme"]
        figures += [f"efficiency.{k}" for k in self.efficiency]
        figures += [f"nvme.{k}" for k in NVME_OPTIONAL if getattr(self.nvme, k) is not None]
        figures += ["gpu_link"] if self.gpu_link is not None else []
        missing = [k for k in figures if k not in self.sources]
        if missing:
            raise ValueError(f"sources: no source given for {missing}; every figure needs one")
        return self

    @field_validator("gpu_link")
    @classmethod
    def _known_link(cls, v):
        """The named link must be a zoo link of a host-link kind (its own file carries the figures and
        their sources); PCIe is said with pcie_generation/pcie_lanes_per_gpu, not here."""
        if v is None:
            return v
        from sim.hardware import load_link, names      # deferred: sim.hardware imports this module
        if v not in names("link"):
            raise ValueError(f"unknown link '{v}'; expected one of {names('link')}")
        kind = load_link(v).kind
        if kind not in HOST_LINK_KINDS:
            raise ValueError(f"link '{v}' is of kind '{kind}'; a host link must be one of {HOST_LINK_KINDS} "
                             "(a PCIe host link is pcie_generation x pcie_lanes_per_gpu)")
        return v

    @property
    def dram_Bps(self) -> float:
        return self.dram.bandwidth_gbps * 1e9

    @property
    def dram_bytes(self) -> float:
        return self.dram.capacity_gb * 1e9

    @property
    def nvme_read_Bps(self) -> float:
        return self.nvme.drives * self.nvme.read_gbps_per_drive * 1e9

    @property
    def nvme_write_Bps(self) -> float:
        return self.nvme.drives * self.nvme.write_gbps_per_drive * 1e9

    @property
    def nvme_bytes(self) -> float:
        return self.nvme.drives * self.nvme.capacity_tb_per_drive * 1e12


class LinkSpec(_Strict):
    """A link technology: per-direction bandwidth of one GPU's attachment and its latency."""

    name: str
    kind: Literal["nvlink", "pcie", "infiniband", "ethernet", "nvlink-c2c"]
    bandwidth_gbps: float = Field(gt=0, description="per direction, GB/s, at the width named in `width`")
    width: str = Field(description="what the bandwidth is for: 'x16', 'per GPU', 'per port'")
    latency_us: float = Field(ge=0, description="one-way small-message latency, microseconds")
    sources: dict[str, str]
    notes: str = ""

    @model_validator(mode="after")
    def _check(self):
        missing = [k for k in ("bandwidth_gbps", "latency_us") if k not in self.sources]
        if missing:
            raise ValueError(f"sources: no source given for {missing}; every figure needs one")
        return self

    @property
    def Bps(self) -> float:
        return self.bandwidth_gbps * 1e9
