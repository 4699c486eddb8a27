"""Setup helpers every claim family shares: a prediction with the spec efficiencies (``infer``,
``train``), a device with older-kernel efficiency overrides (``with_eff``), and a single-node
system and GEMM time for the kernel-level claims.

Every helper passes ``parameters: spec`` (the model before any fitting), so a calibration run
cannot move the claim checks.
"""
from __future__ import annotations

A100 = "A100-SXM4-80GB"
H100 = "H100-SXM5-80GB"


def infer(hw, model, gpus: int = 1, intra: str | None = None, **wl):
    """An inference prediction with the spec efficiencies."""
    from sim.scenario import predict
    s = {"hardware": hw, "model": model, "workload": {"kind": "inference", **wl}, "parameters": "spec"}
    if gpus > 1 or intra:
        s["cluster"] = {"gpus": gpus, **({"intra_node": intra} if intra else {})}
    return predict(s)


def with_eff(name: str, **overrides) -> dict:
    """A device spec with efficiency overrides (each override carries its source)."""
    from sim.hardware import load_device
    d = load_device(name).model_dump()
    d["efficiency"] = {**d["efficiency"], **overrides}
    d["sources"] = {**d["sources"], **{f"efficiency.{k}": "claim registry: older-kernel setting" for k in overrides}}
    return d


def node_system(hw: str, gpus: int = 1):
    """One node of ``gpus`` devices on the device's default host: what a kernel-level claim prices a
    single op on, without building a whole scenario."""
    from sim.hardware import load_device, load_host
    from sim.hardware.system import Cluster, System
    dev = load_device(hw)
    return System(dev, load_host(dev.default_host), Cluster(gpus, gpus))


def gemm_time(system, m, n, k, dtype, w_dtype=None) -> float:
    """Seconds for one (m x k) @ (k x n) GEMM: the kernel claims compare GEMM times, not whole runs."""
    from sim.cost import cost
    from sim.ops import Gemm
    return cost(Gemm(m, n, k, dtype, w_dtype=w_dtype), system).time_s


def train(hardware, model, gpus: int, gpn: int | None = None, host=None, ib: float | None = None, **wl):
    """A training prediction with the spec efficiencies: ``gpn`` GPUs per node (default min(gpus, 8)),
    ``ib`` the inter-node line rate per GPU in Gbit/s, ``wl`` the training workload fields."""
    from sim.scenario import predict
    cluster = {"gpus": gpus, "gpus_per_node": gpn or min(gpus, 8), **({"inter_node_gbps": ib} if ib else {})}
    s = {"hardware": hardware, "cluster": cluster, "model": model, "parameters": "spec",
         "workload": {"kind": "training", "seq_len": 1024, **wl}}
    if host:
        s["host"] = host
    return predict(s)
