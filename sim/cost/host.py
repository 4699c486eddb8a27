"""Work on the host CPU (``HostOp``): the optimizer step of ZeRO-Offload, ZeRO-Infinity and Fuyou.

A host op is a roofline over the CPU's SIMD fp32 rate and the host DRAM bandwidth. An Adam step
does ~14 FLOPs per parameter against ~30 bytes moved (read fp32 weight, momentum, variance and
gradient; write the first three and the fp16 weight copy), about 0.5 FLOP/byte, so on any
server it sits on the DRAM roof: DeepSpeed's vectorised CPU-Adam is 5-7x faster than PyTorch's
loop (DeepSpeed ZeRO-Offload tutorial) because it reaches that roof while the loop does not.
"""
from __future__ import annotations

from sim.cost import OpCost, pricer
from sim.cost.efficiency import eff, param
from sim.hardware.system import System
from sim.ops import HostOp

param("cpu_adam_simd_efficiency", 0.30,
      "fraction of the host's peak SIMD fp32 rate a vectorised optimizer loop reaches (sqrt and divide "
      "per element, OpenMP over all cores)",
      "physical reasoning: Adam's per-element sqrt + divide cost 10-20 cycles of latency on AVX-512 "
      "units against 1-2 cycles per FMA; 0.3 of peak until host probes calibrate it", lo=0.01, hi=1.0)
param("cpu_adam_dram_efficiency", 0.60,
      "fraction of peak host DRAM bandwidth a CPU optimizer step streams at (7 concurrent streams, "
      "NUMA traffic between sockets)",
      "STREAM triad on two-socket servers reaches 70-85% of peak; Adam's 4 read + 4 write streams "
      "across sockets lose more; DeepSpeed's CPU-Adam is 5-7x faster than PyTorch's "
      "(deepspeed.ai ZeRO-Offload tutorial), consistent with a loop near the DRAM roof", lo=0.05, hi=1.0)


@pricer(HostOp)
def price(op: HostOp, system: System) -> OpCost:
    h = system.host
    terms = {"cpu": op.flops / (h.cpu.fp32_tflops * 1e12 * eff(h, "cpu_adam_simd_efficiency")),
             "dram_bandwidth": op.bytes / (h.dram_Bps * eff(h, "cpu_adam_dram_efficiency"))}
    bound = max(terms, key=terms.get)
    return OpCost(terms[bound], bound, op.flops, {"dram": op.bytes}, terms,
                  {"explanation": f"{op.name} on {h.cpu.cores} cores of {h.cpu.model}: {bound}-bound"})
