"""Bandwidth-bound kernels (norms, activations, softmax, residual adds, STREAM-like copies).

time = launch + max(memory, vector ALU), where
  memory = latency(level) + (bytes_read + bytes_written) / (level bandwidth x level efficiency)
  ALU    = flops / vector fp32 FLOP/s.
The latency term is the small-size ramp (Little's law with the whole array in flight at once): an
array of L x B bytes (latency x bandwidth: ~1.7 MB on an H100) reaches only half the streaming
bandwidth, a large one approaches ``hbm_efficiency`` x peak. A streaming kernel launches enough
CTAs to keep the bytes in flight, so no CTA count limits it (unlike a skinny GEMM or decode).

The ``memory`` workload maps onto this op with the STREAM conventions: read and write move one
array, copy and scale two (one read, one written), triad three (two read, one written).
"""
from __future__ import annotations

from sim.cost import OpCost, pricer
from sim.cost.common import compose, device_of, hbm_time
from sim.cost.efficiency import eff
from sim.errors import InputError
from sim.ops import Elementwise

LEVELS = ("hbm", "l2")


def elementwise_cost(op: Elementwise, dev) -> OpCost:
    if op.level not in LEVELS:
        raise InputError("scenario", "workload.level", f"expected one of {LEVELS}, got '{op.level}'")
    for f in ("bytes_read", "bytes_written", "flops"):
        if getattr(op, f) < 0:
            raise InputError("scenario", f"workload.{f}", f"must be >= 0, got {getattr(op, f)}")
    nbytes = op.bytes_read + op.bytes_written
    if op.level == "hbm":
        t_mem, mem = hbm_time(dev, nbytes), "hbm_bandwidth"
    else:
        t_mem = (eff(dev, "l2_latency_s") + nbytes / (dev.l2_Bps * eff(dev, "l2_efficiency"))) if nbytes else 0.0
        mem = "l2_bandwidth"
    terms = {mem: t_mem, "vector_fp32": op.flops / dev.vector_flops}
    time, bound, allterms = compose(terms, None, 1, dev)
    return OpCost(time_s=time, bound=bound, flops=op.flops, bytes={op.level: nbytes}, terms=allterms,
                  detail={"achieved_Bps": nbytes / time if time else 0.0, "level": op.level})


@pricer(Elementwise)
def price_elementwise(op: Elementwise, system) -> OpCost:
    return elementwise_cost(op, device_of(system))
