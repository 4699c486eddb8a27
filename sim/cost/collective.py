"""Collectives: NCCL's algorithms priced with an alpha-beta model on the links a GPU owns.

Time = launch/sync overhead + (steps x per-step link latency) + (bytes a GPU must push through
its busiest link / that link's achievable bandwidth). Inside a node the link is NVLink (through
NVSwitch: every GPU sends and receives at its full per-direction rate at once) or PCIe (through
the host root complex); between nodes it is the GPU's own NIC (rail-aligned, one NIC per GPU).
Per-step latency comes from the link spec (``sim/hardware/links``); bandwidth from the device,
host and cluster specs; efficiencies are the declared parameters below.

Algorithms, with S the per-GPU buffer as nccl-tests counts it, g GPUs per node, N nodes:

* ring: all_reduce sends 2(g-1)/g*S per GPU in 2(g-1) steps; all_gather / reduce_scatter send
  (g-1)/g*S in g-1 steps.
* tree (all_reduce): NCCL's double binary tree across nodes with a chain inside each node; every
  GPU sends its data up and the result down (2*S per GPU), latency 2((g-1) intra + log2 N inter steps).
* nvls (Hopper+ NVSwitch): the switch reduces (multimem.ld_reduce) and multicasts (multimem.st);
  a GPU moves S(g+1)/g each way for all_reduce instead of 2(g-1)/g*S, in two steps.
* all_to_all: each GPU sends (n-1)/n*S, one message per peer; send_recv: S over one link.
* more than one node: hierarchical, as the docs describe: reduce-scatter inside the node, an
  all-reduce (ring or tree) of the 1/g shard between nodes over each GPU's NIC, all-gather
  inside the node; the phases are pipelined in chunks so each link's bytes overlap and only
  the latencies add.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from sim.cost import OpCost, pricer
from sim.cost.efficiency import eff, param
from sim.errors import InputError
from sim.hardware import load_link, names
from sim.hardware.spec import LinkSpec
from sim.hardware.system import System, pcie_Bps
from sim.ops import Collective

param("nvlink_efficiency", 0.80,
      "achievable fraction of NVLink per-direction line rate for NCCL traffic (packet headers, "
      "protocol flags, flow control)",
      "NCCL src/graph/topo.h uses 20.0 (SM80), 20.6 (SM90) and 40.1 (SM100) GB/s per NVLink link "
      "against line rates of 25, 25 and 50 GB/s per direction: 0.80-0.82", lo=0.3, hi=1.0)
param("nvls_efficiency", 0.85,
      "fraction of the NVLink rate NVLink SHARP (in-switch reduction, multicast) sustains, on top "
      "of nvlink_efficiency",
      "NCCL src/graph/tuning.cc nvlsEfficiency for Hopper (0.85; 0.74 for Blackwell)", lo=0.3, hi=1.0)
param("pcie_efficiency", 256 / (256 + 24),
      "payload share of PCIe posted-write TLPs: 256-B max payload per TLP plus 24 B of framing "
      "token, 4-DW header and LCRC",
      "PCIe base spec TLP format arithmetic: 256/(256+4+16+4)", lo=0.3, hi=1.0)
param("network_efficiency", 12.0 / 12.5,
      "achievable fraction of the NIC line rate (InfiniBand/RoCE headers, NCCL proxy)",
      "NCCL src/graph/topo.h NET_BW = 12.0 GB/s for a 100 Gb/s (12.5 GB/s) NIC", lo=0.3, hi=1.0)
param("collective_launch_s", 6.6e-6,
      "fixed cost of one collective: kernel launch, channel setup and the final synchronisation",
      "NCCL src/graph/tuning.cc baseLat for ring with the LL protocol (6.6 us)", lo=0.0, hi=1e-3)
param("nvls_latency_s", 25e-6,
      "extra fixed latency of an NVLS collective (multicast-object synchronisation across the switch)",
      "NCCL src/graph/tuning.cc hwLat[NVLINK][NVLS][Simple] = 25 us", lo=0.0, hi=1e-3)

NVLS_ARCHS = ("hopper", "blackwell")     # NVSwitch generations with in-switch reduction (NVLink SHARP)
OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv")
BUSBW_FACTOR = {   # nccl-tests: busbw = algbw * factor(n)
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "send_recv": lambda n: 1.0,
}


@dataclass(frozen=True)
class Links:
    """What one GPU owns: its intra-node link and NIC, achievable rates and per-step latencies."""
    intra: str             # 'nvlink' | 'pcie'
    intra_Bps: float       # achievable, per direction
    intra_alpha_s: float
    net_Bps: float
    net_alpha_s: float
    switched: bool         # NVSwitch: every GPU pair at full rate (SXM/HGX boards)
    nvls: bool             # NVLink SHARP available
    intra_link: str = ""
    net_link: str = ""


@lru_cache(maxsize=None)
def _link(name: str) -> LinkSpec:
    try:
        return load_link(name)
    except InputError:
        raise InputError("collective", "link", f"needs link spec '{name}' (sim/hardware/links/{name}.yaml) "
                         f"for its per-step latency; zoo has {names('link')}") from None


def _network_link(gbps: float) -> LinkSpec:
    """The slowest InfiniBand generation in the zoo whose port rate covers ``gbps`` (else the fastest)."""
    ib = sorted((_link(n) for n in names("link") if "infiniband" in n.lower()), key=lambda s: s.bandwidth_gbps)
    if not ib:
        raise InputError("collective", "link", "needs an InfiniBand link spec in sim/hardware/links/ "
                         f"for the inter-node latency; zoo has {names('link')}")
    for spec in ib:
        if spec.bandwidth_gbps * 8 >= gbps * (1 - 1e-9):
            return spec
    return ib[-1]


def pcie_path_Bps(system: System) -> float:
    """Raw per-direction PCIe rate between one GPU and its host: the slower generation, fewer lanes."""
    gen = min(system.device.pcie.generation, system.host.pcie_generation)
    return pcie_Bps(gen, min(system.device.pcie.lanes, system.host.pcie_lanes_per_gpu))


def fabric(system: System, gpus_per_node: int) -> tuple[str, bool]:
    """(intra-node link kind, NVSwitch?) for ``gpus_per_node`` GPUs of a node.

    NVLink joins every GPU of the node only through a switch (SXM/HGX boards). A device whose
    spec says ``nvlink.topology: bridge`` (PCIe cards paired by bridges) has NVLink to one peer
    only, so a ring over more than two of them crosses PCIe. A mesh (AMD OAM boards) links every
    pair directly: full per-GPU bandwidth for rings, but no in-switch reduction (NVLS).
    """
    d = system.device
    if system.cluster.intra_node != "nvlink" or d.nvlink is None:
        return "pcie", False
    if d.nvlink.topology == "bridge":
        return ("nvlink", False) if gpus_per_node <= 2 else ("pcie", False)
    return "nvlink", d.nvlink.topology == "switch"


def links(system: System, gpus_per_node: int, nodes: int = 1) -> Links:
    """The links one GPU of a collective over ``nodes`` nodes of ``gpus_per_node`` GPUs uses."""
    d, c = system.device, system.cluster
    intra, switched = fabric(system, gpus_per_node)
    if intra == "nvlink":
        link = _link(f"NVLink-{d.nvlink.generation}")
        bw = d.nvlink_Bps * eff(d, "nvlink_efficiency")
    else:
        gen = min(d.pcie.generation, system.host.pcie_generation)
        link = _link(f"PCIe-{gen}")
        bw = pcie_path_Bps(system) * eff(d, "pcie_efficiency")
    nvls = switched and d.arch in NVLS_ARCHS
    net_bw, net_alpha, net_name = 0.0, 0.0, ""
    if nodes > 1:
        net = _network_link(c.inter_node_gbps)
        net_bw, net_alpha, net_name = c.inter_node_Bps * eff(d, "network_efficiency"), net.latency_us * 1e-6, net.name
    return Links(intra, bw, link.latency_us * 1e-6, net_bw, net_alpha, switched, nvls, link.name, net_name)


def placement(gpus: int, system: System, per_node: int | None = None) -> tuple[int, int]:
    """(GPUs per node, nodes) of a collective over ``gpus`` GPUs: packed onto whole nodes, or
    ``per_node`` GPUs in each node (1 for a data-parallel group strided across nodes by TP)."""
    g = max(1, min(gpus, per_node or system.cluster.gpus_per_node))
    return g, -(-gpus // g)


def algorithms(op: str, gpus: int, system: System, per_node: int | None = None) -> list[str]:
    """The algorithms that can run ``op`` on ``gpus`` GPUs of this system (NCCL's choices)."""
    if op not in OPS:
        raise ValueError(f"unknown collective '{op}'; expected one of {OPS}")
    g, n_nodes = placement(gpus, system, per_node)
    _, switched = fabric(system, g)
    nvls = switched and system.device.arch in NVLS_ARCHS
    if op == "all_reduce":
        return ["ring", "tree"] + (["nvls"] if nvls else [])
    if op in ("all_gather", "reduce_scatter"):
        return ["ring"] + (["nvls"] if nvls and n_nodes == 1 else [])
    return ["direct"]           # all_to_all, send_recv: point-to-point to each peer


def _plan(op: str, algo: str, S: float, n: int, g: int, N: int, L: Links, device) -> dict:
    """Bytes per GPU on each link (per direction), latency in seconds, and the steps, for one algorithm."""
    ai, an = L.intra_alpha_s, L.net_alpha_s
    intra = net = lat = 0.0
    steps = ""
    if op == "all_reduce":
        if algo == "tree":
            # NCCL tree: chain inside the node, double binary tree across nodes; each GPU sends
            # its share up and the result down: 2*S through its link, 2*S/g through its NIC.
            intra = 2 * S if g > 1 else 0.0
            net = 2 * S / g if N > 1 else 0.0
            lat = 2 * ((g - 1) * ai + math.ceil(math.log2(N)) * an) if N > 1 else 2 * (g - 1) * ai
            steps = f"chain {2 * (g - 1)} intra + tree {2 * math.ceil(math.log2(N)) if N > 1 else 0} inter"
        else:
            if algo == "nvls":
                intra = S * (g + 1) / g if g > 1 else 0.0     # ld_reduce S out + S/g in; st S/g out + S in
                lat = eff(device, "nvls_latency_s") + 2 * ai
                steps = "nvls: reduce via switch, multicast result"
            else:
                intra = 2 * (g - 1) / g * S                   # reduce-scatter + all-gather in the node
                lat = 2 * (g - 1) * ai
                steps = f"ring {2 * (g - 1)} intra"
            if N > 1:                                          # inter-node all-reduce of the 1/g shard
                net = 2 * (N - 1) / N * S / g
                lat += 2 * (N - 1) * an
                steps += f" + ring {2 * (N - 1)} inter on S/{g}"
    elif op in ("all_gather", "reduce_scatter"):
        if algo == "nvls":
            intra = S * (g - 1) / g + S / g                    # multicast store / reduce-load of every shard
            lat = eff(device, "nvls_latency_s") + ai
            steps = "nvls"
        else:
            intra = (g - 1) / g * S
            lat = (g - 1) * ai
            steps = f"ring {g - 1} intra"
        if N > 1:
            net = (N - 1) / N * S / g
            lat += (N - 1) * an
            steps += f" + ring {N - 1} inter on S/{g}"
    elif op == "all_to_all":
        intra = (g - 1) / n * S
        net = (n - g) / n * S
        lat = (g - 1) * ai + (n - g) * an
        steps = f"{n - 1} peers"
    elif op == "send_recv":
        if N > 1:
            net, lat = S, an
        else:
            intra, lat = S, ai
        steps = "one message"
    bw_intra = L.intra_Bps * (eff(device, "nvls_efficiency") if algo == "nvls" else 1.0)
    terms = {}
    if intra:
        terms[L.intra] = intra / bw_intra
    if net:
        terms["network"] = net / L.net_Bps
    return {"terms": terms, "bytes": {L.intra: intra, "network": net}, "latency_s": lat, "steps": steps}


@pricer(Collective)
def price(op: Collective, system: System) -> OpCost:
    """Price ``op`` with ``op.algo`` (or the fastest algorithm, as NCCL's tuner picks), its GPUs
    packed onto nodes."""
    return price_placed(op, system)


def price_placed(op: Collective, system: System, per_node: int | None = None) -> OpCost:
    """As ``price``, with ``per_node`` GPUs of the group in each node (e.g. 1 for a data-parallel
    group whose members sit in different nodes, one per tensor-parallel block)."""
    if op.gpus < 1:
        raise ValueError(f"collective over {op.gpus} GPUs")
    if op.gpus == 1:
        return OpCost(0.0, "none", detail={"algo": None, "gpus": 1, "algbw_Bps": 0.0, "busbw_Bps": 0.0,
                                           "explanation": "one GPU: nothing to communicate"})
    choices = algorithms(op.op, op.gpus, system, per_node)
    if op.algo is not None and op.algo not in choices:
        raise ValueError(f"algorithm '{op.algo}' cannot run {op.op} on {op.gpus} GPUs of "
                         f"{system.device.name} ({system.cluster.intra_node}); choose from {choices}")
    g, N = placement(op.gpus, system, per_node)
    L = links(system, g, N)
    launch = eff(system.device, "collective_launch_s")
    timed = {}
    for algo in ([op.algo] if op.algo else choices):
        p = _plan(op.op, algo, float(op.bytes), op.gpus, g, N, L, system.device)
        bw_t = max(p["terms"].values(), default=0.0)
        timed[algo] = (launch + p["latency_s"] + bw_t, p)
    algo = min(timed, key=lambda a: timed[a][0])
    t, p = timed[algo]
    terms = dict(p["terms"])
    bw_bound = max(terms, key=terms.get) if terms else None
    latency = launch + p["latency_s"]
    bound = bw_bound if bw_bound and terms[bw_bound] >= latency else "link_latency"
    algbw = op.bytes / t
    busbw = algbw * BUSBW_FACTOR[op.op](op.gpus)
    terms.update(link_latency=p["latency_s"], launch_overhead=launch)
    detail = {
        "algo": algo, "gpus": op.gpus, "gpus_per_node": g, "nodes": N, "steps": p["steps"],
        "intra_node_link": L.intra_link, "network_link": L.net_link or None,
        "intra_Bps_achievable": L.intra_Bps, "network_Bps_achievable": L.net_Bps or None,
        "algbw_Bps": algbw, "busbw_Bps": busbw,
        "candidates_s": {a: v[0] for a, v in timed.items()},
        "explanation": _explain(op, algo, bound, p, L, latency),
    }
    return OpCost(t, bound, 0.0, {k: v for k, v in p["bytes"].items() if v}, terms, detail)


def _explain(op, algo, bound, p, L, latency) -> str:
    if bound == "link_latency":
        return (f"latency-bound: {op.op} {algo} on {op.gpus} GPUs ({p['steps']}) costs {latency * 1e6:.3g} us of "
                f"launch and per-step link latency against {max(p['terms'].values(), default=0) * 1e6:.3g} us "
                f"of data movement")
    rate = L.net_Bps if bound == "network" else L.intra_Bps
    moved = p["bytes"][bound]
    return (f"{bound}-bound: {op.op} {algo} moves {moved:.3g} bytes per GPU each way over {bound} at "
            f"{rate / 1e9:.3g} GB/s achievable ({p['steps']}); latency adds {latency * 1e6:.3g} us")
