"""Offload to host DRAM and NVMe: what moves, over which link, and the host-side optimizer step.

Policies (``offload: {optimizer, params, activations}``, each none | cpu | nvme):
- ZeRO-Offload (Ren et al., ATC'21): optimizer states (fp32 master, momentum, variance) and the
  Adam step on the CPU; fp16 gradients stream device-to-host during backward (bucketed, so they
  overlap it), the CPU runs Adam, fp16 parameters come back host-to-device. Optional one-step
  delayed parameter update (DPU) overlaps the CPU step with the next iteration's GPU work.
- ZeRO-Infinity (Rajbhandari et al., SC'21): ZeRO-3 with parameters and/or optimizer states on
  NVMe (or CPU); each layer's parameters are prefetched (NVMe -> pinned host buffer -> GPU) before
  use in forward and backward; the optimizer step streams states NVMe -> CPU -> NVMe in
  sub-groups, overlapping reads, CPU Adam and writes.
- SSDTrain (Wu et al. 2024) / activation offload: each layer's saved activations are written out
  during forward and read back ahead of its backward, overlapped with compute.
- Fuyou (Liao et al. 2024): all of the above on one consumer GPU with NVMe, plus a CPU Adam that
  runs layer by layer while backward proceeds (``overlap_optimizer_step``).
- MeZO (Malladi et al. 2023; ``optimizer: zo``): no gradients and no optimizer state; each step
  is two forward passes plus in-place perturbations of the weights.

Times come from ``sim.cost`` (Transfer and HostOp pricers); NVMe drives and the CPU are shared
by the GPUs of a node, so their legs are priced for the node's aggregate traffic.
"""
from __future__ import annotations

from sim.ops import HostOp, Transfer

ADAM_FLOPS_PER_PARAM = 14        # m, v updates (7), bias-corrected sqrt/divide/scale update (5), decay (2)
# bytes per parameter of a CPU Adam step: read fp32 weight, momentum, variance, gradient (16),
# write the first three (12) and the fp16/bf16 copy sent back to the GPU (2)
ADAM_HOST_BYTES_PER_PARAM = 30
SGD_FLOPS_PER_PARAM, SGD_HOST_BYTES_PER_PARAM = 4, 22   # momentum SGD: read w, mom, grad; write w, mom, fp16 w


def host_optimizer_op(n_params: float, optimizer: str) -> HostOp:
    if optimizer == "sgd":
        return HostOp(SGD_FLOPS_PER_PARAM * n_params, SGD_HOST_BYTES_PER_PARAM * n_params, name="cpu_sgd")
    return HostOp(ADAM_FLOPS_PER_PARAM * n_params, ADAM_HOST_BYTES_PER_PARAM * n_params, name="cpu_adam")


def to_gpu(tier: str, nbytes: float, gpus_sharing: int, price) -> float:
    """Seconds to bring ``nbytes`` to one GPU from ``tier`` while ``gpus_sharing`` GPUs of the node
    do the same: the GPU's own PCIe leg, or the node's NVMe drives serving all of them."""
    if nbytes <= 0 or tier == "none":
        return 0.0
    t = price(Transfer("host", "hbm", nbytes)).time_s
    if tier == "nvme":
        t = max(t, price(Transfer("nvme", "host", nbytes * gpus_sharing)).time_s)
    return t


def from_gpu(tier: str, nbytes: float, gpus_sharing: int, price) -> float:
    if nbytes <= 0 or tier == "none":
        return 0.0
    t = price(Transfer("hbm", "host", nbytes)).time_s
    if tier == "nvme":
        t = max(t, price(Transfer("host", "nvme", nbytes * gpus_sharing)).time_s)
    return t


def host_step_legs(n_local: float, optimizer: str, tier: str, params_tier: str, w_bytes: float,
                   state_bytes: float, gpus_sharing: int, price) -> dict:
    """Seconds of each leg of the host-side optimizer step for one GPU's partition, with the node's
    CPU cores, DRAM and NVMe shared by ``gpus_sharing`` GPUs: NVMe read of states and fp32 grads,
    the CPU update, NVMe write-back, and the updated 16-bit weights back to the GPU (unless the
    weights themselves live off the GPU)."""
    legs = {"nvme_read": 0.0, "cpu": 0.0, "nvme_write": 0.0, "h2d_params": 0.0}
    if n_local <= 0:
        return legs
    state_B = state_bytes
    legs["cpu"] = price(host_optimizer_op(n_local * gpus_sharing, optimizer)).time_s
    if tier == "nvme":
        legs["nvme_read"] = price(Transfer("nvme", "host", n_local * (state_B + 4.0) * gpus_sharing)).time_s
        legs["nvme_write"] = price(Transfer("host", "nvme", n_local * state_B * gpus_sharing)).time_s
    if params_tier == "none":
        legs["h2d_params"] = price(Transfer("host", "hbm", n_local * w_bytes)).time_s
    elif params_tier == "nvme":
        legs["nvme_write"] += price(Transfer("host", "nvme", n_local * w_bytes * gpus_sharing)).time_s
    return legs


def flow_line(stage_totals, chunks: float) -> float:
    """Time for ``chunks`` equal items through a line of stages (each stage's total time given):
    the sum of one item's stage times plus (chunks-1) times the slowest stage's per-item time."""
    totals = [t for t in stage_totals if t > 0]
    if not totals:
        return 0.0
    k = max(1.0, float(chunks))
    return sum(totals) / k + (k - 1) * max(totals) / k
