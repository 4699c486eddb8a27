"""Per-op cost: the time of one op on one system, and what bounds it.

``cost(op, system)`` dispatches on the op's type to the module that prices it. Every cost is a
roofline over the resources the op touches (Tensor Cores per dtype, HBM, L2, links, PCIe, NVMe,
CPU) times named efficiencies (``sim.cost.efficiency``), plus fixed overheads (kernel launch,
link latency). The ``bound`` names the resource whose time is largest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sim.hardware.system import System


@dataclass(frozen=True)
class OpCost:
    time_s: float
    bound: str                                           # e.g. tensor_core_fp16, hbm_bandwidth, launch_overhead, nvlink
    flops: float = 0.0                                   # useful FLOPs (2 per multiply-add)
    bytes: dict[str, float] = field(default_factory=dict)   # traffic per resource: hbm, l2, nvlink, pcie, network, nvme, dram
    terms: dict[str, float] = field(default_factory=dict)   # seconds each resource alone would take, + overheads
    detail: dict = field(default_factory=dict)           # what explains the number (tiles, waves, algorithm ...)


_PRICERS: dict[type, Callable] = {}


def pricer(op_type: type):
    """Register the function that prices ops of ``op_type``."""
    def deco(fn):
        _PRICERS[op_type] = fn
        return fn
    return deco


def cost(op, system: System) -> OpCost:
    _load_modules()
    try:
        fn = _PRICERS[type(op)]
    except KeyError:
        raise TypeError(f"no cost function for op type {type(op).__name__}") from None
    return fn(op, system)


def _load_modules():
    # importing registers the pricers; done lazily so sim.cost has no import cycle with its modules
    from sim.cost import gemm, attention, elementwise, collective, transfer, host  # noqa: F401


def roofline(terms: dict[str, float], overhead_s: float = 0.0) -> tuple[float, str]:
    """Time = the slowest resource (they overlap) plus fixed overhead; bound = that resource."""
    bound = max(terms, key=terms.get)
    t = terms[bound] + overhead_s
    if overhead_s > terms[bound]:
        bound = "launch_overhead"
    return t, bound
