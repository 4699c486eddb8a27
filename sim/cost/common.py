"""Helpers shared by the compute-side pricers (GEMM, attention, elementwise).

They hold the physics every kernel shares: a fixed cost per kernel launch, the Tensor Core
peak of a dtype (with the error a missing dtype raises), the CUDA-core ALU and SFU rates, and
memory bandwidth with a latency ramp. The ramp is Little's law: a kernel only reaches a
bandwidth B when it keeps B x latency bytes in flight, so a kernel with few CTAs (or a tiny
array) sees less than the peak, and every pass over memory pays one round-trip latency first.
"""
from __future__ import annotations

import contextlib
import contextvars
import math

from sim.cost.efficiency import eff, param
from sim.errors import InputError
from sim.hardware.spec import DeviceSpec

# architectures whose matrix peak needs the asynchronous warpgroup MMA (wgmma/tcgen05) and that have
# thread-block clusters with TMA multicast (sm_90 and later)
ASYNC_MMA_ARCHS = ("hopper", "blackwell")

param("launch_overhead_s", 3.0e-6,
      "fixed GPU-side cost of one kernel issued behind others in a stream (a step of training or "
      "decoding): grid launch, CTA rasterisation start, drain and completion signal; the host "
      "submits the next launch while the current kernel runs, so no host latency is in it "
      "(host-side dispatch cost is the framework's, not this)",
      "NVIDIA developer forum 'Too much time for kernel launch latency' (2022): null-kernel launch "
      "overhead ~3 us on recent GPUs and drivers; NVIDIA blog 'Getting Started with CUDA Graphs' "
      "(2019) shows per-kernel overheads of a few us", lo=0.0, hi=2e-5)
param("isolated_launch_s", 3.0e-6,
      "fixed cost a benchmark sees when it times one kernel by itself (an idle GPU, events or a "
      "host clock around the call, as kernel benchmarks such as a GEMM or attention sweep do): the "
      "launch path from the host's submission to the kernel's start, grid launch, drain and "
      "completion, none of it hidden behind a previous kernel. Used for the single-op workload "
      "kinds only; a sequence of kernels pays launch_overhead_s per kernel",
      "same null-kernel figure as launch_overhead_s (~3 us: NVIDIA developer forum 'Too much time "
      "for kernel launch latency', 2022, which times a lone empty kernel); kept equal to it so spec "
      "predictions do not depend on the split; calibrated from single-kernel rows (small GEMMs)",
      lo=0.0, hi=3e-5)
param("dram_latency_s", 600e-9,
      "loaded round-trip latency of a device-memory access seen by an SM (Little's law: bytes in "
      "flight = bandwidth x latency)",
      "idle pointer-chase latency ~450-550 ns on A100/H100 (Chips and Cheese 'Nvidia's H100: Funny "
      "L2, and Tons of Bandwidth', 2023; Luo et al., arXiv 2501.12084); queueing under load adds "
      "~10-30%", lo=2e-7, hi=2e-6)
param("l2_latency_s", 200e-9,
      "round-trip latency of an L2 hit seen by an SM",
      "~200-270 core cycles at 1.4-1.8 GHz in the Volta/Ampere/Hopper microbenchmarks (Jia et al. "
      "2018 arXiv 1804.06826; Luo et al. arXiv 2501.12084)", lo=5e-8, hi=1e-6)
param("hbm_efficiency", 0.85,
      "fraction of the datasheet device-memory bandwidth a streaming kernel sustains (DRAM refresh, "
      "read/write bus turnaround, row-buffer misses and bank conflicts)",
      "BabelStream/STREAM on HBM GPUs: V100 ~800-850 of 900 GB/s (Deakin et al., 'Evaluating "
      "attainable memory bandwidth of parallel programming models via BabelStream', 2018); Jia et "
      "al. 2018 measure 750 of 900 GB/s on V100; 0.83-0.92 across such reports", lo=0.3, hi=1.0)
param("l2_efficiency", 0.9,
      "fraction of the spec L2 bandwidth a well-coalesced kernel sustains (slice imbalance, "
      "partition crossing)",
      "spec L2 figures are already derived from bytes/clk x clock; ~10% lost to slice conflicts is "
      "physical reasoning, to be calibrated", lo=0.3, hi=1.0)
param("tc_peak_fraction", 0.85,
      "fraction of the datasheet matrix peak a well-fed Tensor Core main loop sustains: the clock "
      "under sustained load sits below the boost clock the peak is quoted at (power/thermal "
      "limit), plus address/synchronisation instruction issue",
      "Chips and Cheese H100 article (2023): clocks dropped to ~80% of boost under heavy load; "
      "vendor peaks are quoted at max boost (H100: 1830 MHz)", lo=0.3, hi=1.0)
param("tile_overhead_s", 1.0e-6,
      "fixed cost of one CTA tile beyond its main loop: pipeline prologue (the first loads wait one "
      "memory latency before the first MMA) and epilogue (convert and store the output tile)",
      "prologue ~ one DRAM latency (dram_latency_s ~0.6 us) + epilogue store of a 128x128 16-bit "
      "tile (32 KB) at ~64 B/clk per SM ~0.3 us; physical reasoning, to be calibrated",
      lo=0.0, hi=1e-5)
param("simt_overlap", 1.0,
      "fraction of CUDA-core preprocessing (weight dequantisation, sparse extraction, KV "
      "dequantisation) hidden under the Tensor Core / memory time; the rest adds serially",
      "FP6-LLM (Xia et al. 2024) and Marlin (Frantar et al. 2024) overlap SIMT dequantisation with "
      "MMA and loads; older kernels (e.g. GPTQ on T4, per 'Performance Trade-offs of Optimizing "
      "SLMs', TECHNIQUES A10) do not: set 0 for those", lo=0.0, hi=1.0)
param("sfu_ops_per_clk_per_sm", 16.0,
      "special-function-unit (exp2, rcp) results per clock per SM",
      "CUDA C++ Programming Guide, arithmetic instruction throughput table: 16 for compute "
      "capability 7.x-9.0; FA3 paper: H100 has 3.9 TFLOPS of special functions "
      "(132 SMs x 16 x 1.83 GHz)", lo=1.0, hi=256.0)

param("smem_bytes_per_clk_per_sm", 128.0,
      "shared-memory bandwidth per SM per clock",
      "32 banks x 4 bytes per clock (CUDA C++ Programming Guide, shared memory)", lo=32.0, hi=1024.0)


_ISOLATED: contextvars.ContextVar[bool] = contextvars.ContextVar("isolated_kernel", default=False)


@contextlib.contextmanager
def isolated_kernel():
    """Price the ops inside as one kernel timed by itself (a single-op benchmark row): the first
    launch of each costs ``isolated_launch_s`` instead of the in-stream ``launch_overhead_s``."""
    token = _ISOLATED.set(True)
    try:
        yield
    finally:
        _ISOLATED.reset(token)


def launch_cost(dev: DeviceSpec, launches: int) -> float:
    """Fixed cost of ``launches`` kernel launches: in a stream each pays ``launch_overhead_s``;
    timed in isolation (``isolated_kernel``) the first pays ``isolated_launch_s`` instead, since no
    earlier kernel hides its launch path."""
    gap = eff(dev, "launch_overhead_s")
    if launches <= 0:
        return 0.0
    if _ISOLATED.get():
        return eff(dev, "isolated_launch_s") + (launches - 1) * gap
    return launches * gap


def device_of(system) -> DeviceSpec:
    """The DeviceSpec of a System (or a DeviceSpec passed directly, handy in tests and sweeps)."""
    return system if isinstance(system, DeviceSpec) else system.device


def tc_peak(dev: DeviceSpec, dtype: str, field: str = "workload.dtype") -> float:
    """Dense matrix-unit peak (FLOP/s) for ``dtype``; an InputError when the device lacks it."""
    if dtype not in dev.peak_tflops:
        raise InputError("scenario", field,
                         f"{dev.name} has no matrix-unit peak for dtype '{dtype}'; "
                         f"expected one of {sorted(dev.peak_tflops)}")
    return dev.peak_flops(dtype)


def alu_ops_per_s(dev: DeviceSpec) -> float:
    """CUDA-core instruction rate (one op per lane per clock): vector fp32 FLOP/s / 2 (FMA = 2 FLOPs).

    Used for integer/bit work (dequantisation) too: a proxy, as the INT32 pipe is as wide as the
    FP32 one on Volta/Ampere and half as wide on Ada/Hopper (CUDA Programming Guide throughput table)."""
    return dev.vector_flops / 2.0


def smem_Bps(dev: DeviceSpec) -> float:
    """Shared-memory bandwidth of one SM (bytes/s) at the boost clock."""
    return eff(dev, "smem_bytes_per_clk_per_sm") * dev.boost_clock_mhz * 1e6


def sfu_ops_per_s(dev: DeviceSpec) -> float:
    return eff(dev, "sfu_ops_per_clk_per_sm") * dev.sms * dev.boost_clock_mhz * 1e6


def hbm_Bps(dev: DeviceSpec, bytes_in_flight: float = math.inf) -> float:
    """Achievable HBM bandwidth: the streaming ceiling, or Little's law when too little is in flight."""
    ceiling = dev.hbm_Bps * eff(dev, "hbm_efficiency")
    return min(ceiling, bytes_in_flight / eff(dev, "dram_latency_s"))


def hbm_time(dev: DeviceSpec, nbytes: float, bytes_in_flight: float = math.inf) -> float:
    """One pass over ``nbytes`` of device memory: first-access latency + bytes / achievable bandwidth."""
    if nbytes <= 0:
        return 0.0
    return eff(dev, "dram_latency_s") + nbytes / hbm_Bps(dev, bytes_in_flight)


def l2_time(dev: DeviceSpec, nbytes: float) -> float:
    if nbytes <= 0:
        return 0.0
    return nbytes / (dev.l2_Bps * eff(dev, "l2_efficiency"))


def compose(terms: dict[str, float], serial: dict[str, float] | None = None,
            launches: int = 1, dev: DeviceSpec | None = None) -> tuple[float, str, dict[str, float]]:
    """Time of a kernel: overlapped resources (max), plus serial parts, plus launch overheads.

    ``terms`` are the seconds each resource alone would take (they overlap: the slowest sets the
    pace); ``serial`` are parts that add on top (e.g. un-hidden dequantisation). The bound is the
    term with the largest time, or 'launch_overhead' when the fixed cost is larger than all work.
    Returns (time, bound, terms with the overhead added)."""
    serial = serial or {}
    launch = launch_cost(dev, launches)
    work = max(terms.values(), default=0.0) + sum(serial.values())
    allterms = {k: v for k, v in terms.items()}
    for k, v in serial.items():
        allterms[k] = allterms.get(k, 0.0) + v
    bound = max(allterms, key=allterms.get) if allterms else "launch_overhead"
    if launch > allterms.get(bound, 0.0):
        bound = "launch_overhead"
    allterms["launch_overhead"] = launch
    return work + launch, bound, allterms


def ceil_div(a: float, b: float) -> int:
    return int(-(-a // b))
