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

Protocols. NCCL moves data with one of three protocols and its tuner picks, per call, the
(algorithm, protocol) pair of least predicted time (NCCL src/graph/tuning.cc, enqueue.cc):

* LL (low latency): every 8-byte store carries 4 bytes of data and a 4-byte flag, so the receiver
  polls the data itself: the lowest per-hop latency (the link spec's ``latency_us``) but at most
  half the link rate (``nccl_ll_bw_fraction``).
* LL128: 128-byte lines with an 8-byte flag (120 bytes of data), relying on NVLink's in-order
  delivery of a warp's 128-byte store, so NCCL enables it only where NVLink joins the GPUs; higher
  per-hop latency (``nccl_ll128_hop_factor`` x the LL hop).
* Simple: bulk stores, a memory fence, then a separate flag store that the receiver polls before
  reading: the full link rate but the largest per-hop latency (``nccl_simple_hop_factor`` x) and
  base cost. NVLS runs only with Simple.

So a mid-size message pays either LL's halved bandwidth or Simple's per-hop latency on each of the
2(n-1) ring steps: busbw rises with the message size and reaches the link rate only for large
messages, and which protocol wins switches with size.

AMD devices (``vendor: amd``) run RCCL, AMD's fork of NCCL, whose tuner keeps NCCL's formula but
reads its own constants: base latencies per protocol, a per-architecture table of per-hop
latencies and of measured bandwidth ratios per (algorithm, protocol) (``rcclTuningModel`` in
ROCm/rccl src/graph/tuning.cc), rules that switch protocols off on some architectures, and
fixed message-size windows that override the tuner's protocol between nodes. ``RCCL_MODELS``
below holds them, one entry per architecture; NVIDIA devices keep the NCCL parameters above.
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
from sim.hardware.system import System, pcie_Bps, pcie_path
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

param("nccl_ll_bw_fraction", 0.5,
      "share of the link rate the LL protocol carries as data: each 8-byte store is 4 bytes of data and "
      "a 4-byte flag",
      "NCCL src/device/prims_ll.h (union ncclLLFifoLine: data1, flag1, data2, flag2); "
      "src/graph/tuning.cc scales ring LL busBw by 0.5", lo=0.1, hi=1.0)
param("nccl_ll128_bw_fraction", 120 / 128,
      "share of the link rate the LL128 protocol carries as data: 120 data bytes per 128-byte line "
      "(8 bytes of flag)",
      "NCCL src/device/prims_ll128.h (NCCL_LL128_DATAELEMS 15 of NCCL_LL128_LINEELEMS 16 per line); "
      "tuning.cc uses 0.92 ('120.0/128.0')", lo=0.3, hi=1.0)
param("nccl_ll128_hop_factor", 1.9 / 0.6,
      "per-hop latency of LL128 relative to LL (a full 128-byte line per warp must land before its "
      "flag is seen)",
      "NCCL src/graph/tuning.cc hwLatencies, NVLink ring: LL 0.6 us, LL128 1.9 us per step", lo=1.0, hi=10.0)
param("nccl_simple_hop_factor", 3.4 / 0.6,
      "per-hop latency of the Simple protocol relative to LL (data stores, a memory fence, then a "
      "separate flag store the receiver polls before reading)",
      "NCCL src/graph/tuning.cc hwLatencies, ring: NVLink 3.4 vs 0.6 us, PCI 5.7 vs 1.0 us, network "
      "14 vs 2.7 us per step (5.2-5.7x)", lo=1.0, hi=20.0)
param("nccl_ll128_launch_s", 14.0e-6,
      "fixed cost of one collective with the LL128 protocol (launch, setup, final synchronisation)",
      "NCCL src/graph/tuning.cc baseLatencies, ring LL128: 14.0 us", lo=0.0, hi=1e-3)
param("nccl_simple_launch_s", 8.4e-6,
      "fixed cost of one collective with the Simple protocol",
      "NCCL src/graph/tuning.cc baseLatencies, ring Simple: 8.4 us", lo=0.0, hi=1e-3)

param("nccl_channels", 24,
      "NCCL channels (one CTA each) a ring collective is split over; sets how many bytes one loop of "
      "the ring kernel covers",
      "NCCL INFO '24 coll channels' in init logs of 8-GPU NVSwitch nodes, A100 SXM4 and H100 "
      "(p5.48xlarge); the ring search plus ncclTopoDupChannels (src/graph/search.cc)", lo=1, hi=64)
param("nccl_simple_chunk_bytes", 2 * 1024 * 1024,
      "bytes one channel moves per ring step of one loop with the Simple protocol (chunkSize)",
      "NCCL src/enqueue.cc calcCollChunking: chunkSize = buffSizes[SIMPLE]/NCCL_STEPS x chunkSteps "
      "= 4 MiB (NCCL_BUFFSIZE default) / 8 x 4 (ALLREDUCE_CHUNKSTEPS = NCCL_STEPS/2, "
      "src/include/collectives.h)", lo=4096, hi=64 * 1024 * 1024)
param("nccl_simple_slices_per_step", 2,
      "flag handshakes (wait for the peer's step counter, copy, barrier, system fence, post) the "
      "Simple protocol performs per ring step; each costs one Simple per-hop latency",
      "NCCL src/include/collectives.h: SlicePerChunk = ALLREDUCE_CHUNKSTEPS/ALLREDUCE_SLICESTEPS = 4/2; "
      "src/device/prims_simple.h genericOp runs waitPeer, reduceCopy, barrier and postPeer "
      "(fence_acq_rel_sys) once per slice, in sequence within the CTA, even for empty slices",
      lo=1, hi=8)

# ---------------------------------------------------------------- RCCL (AMD)
param("rccl_ll_launch_s", 12.0e-6,
      "fixed cost of one RCCL collective with the LL protocol (launch, setup, final synchronisation)",
      "ROCm/rccl src/graph/tuning.cc baseLat, ring and tree LL: 12.0 us (RCCL 2.18-2.2x; NCCL's is 6.6)",
      lo=0.0, hi=1e-3)
param("rccl_ll128_launch_s", 12.0e-6,
      "fixed cost of one RCCL collective with the LL128 protocol",
      "ROCm/rccl src/graph/tuning.cc baseLat, ring and tree LL128: 12.0 us", lo=0.0, hi=1e-3)
param("rccl_simple_launch_s", 17.0e-6,
      "fixed cost of one RCCL collective with the Simple protocol",
      "ROCm/rccl src/graph/tuning.cc baseLat, ring and tree Simple: 17.0 us", lo=0.0, hi=1e-3)


@dataclass(frozen=True)
class RcclModel:
    """One entry of RCCL's ``rcclTuningModel[]`` (src/graph/tuning.cc) and the rules RCCL applies
    to that architecture. Latencies in microseconds per intra-node (xGMI) step; ``bw_ratio`` is
    the share of the ring/tree bus bandwidth each (algorithm, protocol) achieves, as AMD measured
    it (``[0]``: one or two nodes, ``[1]``: more); a ratio of 0 means RCCL never offers the pair."""
    index: int
    gcn: str
    hop_us: dict            # algo -> {proto: us per xGMI step}
    bw_ratio: tuple         # (<=2 nodes, >2 nodes), each algo -> {proto: ratio}
    ll128: bool             # LL128 enabled by default
    tree_simple_one_node: bool   # Tree/Simple offered when all ranks sit in one node
    ll_windows: dict        # op -> (LL max bytes per rank, LL128 min, LL128 max); nNodes >= 2 only
    one_node_ll_max: dict   # op -> LL up to this many bytes per rank, one node (overrides the tuner)
    source: str


RCCL_MODELS = {
    # gfx942 (MI300X/MI300A): tuning index 5
    "cdna3": RcclModel(
        index=5, gcn="gfx942",
        hop_us={"ring": {"LL": 0.8, "LL128": 0.8, "Simple": 2.1},
                "tree": {"LL": 0.9, "LL128": 0.9, "Simple": 2.3}},
        bw_ratio=({"ring": {"LL": 0.08, "LL128": 0.08, "Simple": 1.00},
                   "tree": {"LL": 0.06, "LL128": 0.06, "Simple": 0.11}},
                  {"ring": {"LL": 0.08, "LL128": 0.08, "Simple": 1.00},
                   "tree": {"LL": 0.06, "LL128": 0.06, "Simple": 0.59}}),
        ll128=False,
        tree_simple_one_node=False,
        ll_windows={"all_reduce": (1048576, 1048576, 9437184),
                    "all_gather": (98304, 98304, 5046272),
                    "reduce_scatter": (655360, 131072, 3211264)},
        one_node_ll_max={"reduce_scatter": 352128},
        source="ROCm/rccl src/graph/tuning.cc tuning_model_5 (hwLat NVLINK row = xGMI, bwRatio, "
               "llProtoRanges); ncclTopoTuneModel skips Tree/Simple on gfx94x when all ranks share a "
               "node and enables LL128 on gfx942 only where a topology model sets ll128Enabled "
               "(2.18-2.20: gfx90a only); rcclUpdateCollectiveProtocol (src/enqueue.cc, later "
               "src/misc/rccl_wrap.cc) applies llProtoRanges only when nNodes >= 2 and, on one gfx942 "
               "node, LL for reduce_scatter up to 352128 B per rank; RCCL docs map gfx942 to index 5"),
    # gfx90a (MI200: MI210/MI250/MI250X): tuning index 0
    "cdna2": RcclModel(
        index=0, gcn="gfx90a",
        hop_us={"ring": {"LL": 0.8, "LL128": 2.2, "Simple": 3.6},
                "tree": {"LL": 0.8, "LL128": 1.4, "Simple": 2.5}},
        bw_ratio=({"ring": {"LL": 0.04, "LL128": 0.34, "Simple": 1.00},
                   "tree": {"LL": 0.04, "LL128": 0.22, "Simple": 0.91}},
                  {"ring": {"LL": 0.04, "LL128": 0.34, "Simple": 1.00},
                   "tree": {"LL": 0.04, "LL128": 0.22, "Simple": 0.95}}),
        ll128=False,
        tree_simple_one_node=True,
        ll_windows={},
        one_node_ll_max={},
        source="ROCm/rccl src/graph/tuning.cc tuning_model_0 (the default model; RCCL docs map "
               "gfx90a to index 0); LL128 on gfx90a needs a topology model with ll128Enabled "
               "(src/graph/rome_models.cc), so it is off by default; llProtoRanges undefined"),
}
RCCL_DEFAULT_ARCH = "cdna2"       # rcclTuningModel[0] is RCCL's fallback for an unknown architecture
RCCL_LAUNCH = {"LL": "rccl_ll_launch_s", "LL128": "rccl_ll128_launch_s", "Simple": "rccl_simple_launch_s"}


def rccl_model(device) -> RcclModel | None:
    """RCCL's tuning model for an AMD device (by its ``arch``), None for NVIDIA (NCCL)."""
    if getattr(device, "vendor", "nvidia") != "amd":
        return None
    return RCCL_MODELS.get(device.arch, RCCL_MODELS[RCCL_DEFAULT_ARCH])


NVLS_ARCHS = ("hopper", "blackwell")
PROTOCOLS = ("LL", "LL128", "Simple")     # NVSwitch generations with in-switch reduction (NVLink SHARP)
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
    return pcie_Bps(*pcie_path(system))


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
    hi = hn = 0                # link steps inside the node and between nodes (RCCL prices them apart)
    steps = ""
    if op == "all_reduce":
        if algo == "tree":
            # NCCL tree: chain inside the node, double binary tree across nodes; each GPU sends
            # its share up and the result down: 2*S through its link, 2*S/g through its NIC.
            intra = 2 * S if g > 1 else 0.0
            net = 2 * S / g if N > 1 else 0.0
            lat = 2 * ((g - 1) * ai + math.ceil(math.log2(N)) * an) if N > 1 else 2 * (g - 1) * ai
            hi, hn = 2 * (g - 1), (2 * math.ceil(math.log2(N)) if N > 1 else 0)
            steps = f"chain {2 * (g - 1)} intra + tree {2 * math.ceil(math.log2(N)) if N > 1 else 0} inter"
        else:
            if algo == "nvls":
                intra = S * (g + 1) / g if g > 1 else 0.0     # ld_reduce S out + S/g in; st S/g out + S in
                lat = eff(device, "nvls_latency_s") + 2 * ai
                steps = "nvls: reduce via switch, multicast result"
            else:
                intra = 2 * (g - 1) / g * S                   # reduce-scatter + all-gather in the node
                lat = 2 * (g - 1) * ai
                hi = 2 * (g - 1)
                steps = f"ring {2 * (g - 1)} intra"
            if N > 1:                                          # inter-node all-reduce of the 1/g shard
                net = 2 * (N - 1) / N * S / g
                lat += 2 * (N - 1) * an
                hn = 2 * (N - 1)
                steps += f" + ring {2 * (N - 1)} inter on S/{g}"
    elif op in ("all_gather", "reduce_scatter"):
        if algo == "nvls":
            intra = S * (g - 1) / g + S / g                    # multicast store / reduce-load of every shard
            lat = eff(device, "nvls_latency_s") + ai
            steps = "nvls"
        else:
            intra = (g - 1) / g * S
            lat = (g - 1) * ai
            hi = g - 1
            steps = f"ring {g - 1} intra"
        if N > 1:
            net = (N - 1) / N * S / g
            lat += (N - 1) * an
            hn = N - 1
            steps += f" + ring {N - 1} inter on S/{g}"
    elif op == "all_to_all":
        intra = (g - 1) / n * S
        net = (n - g) / n * S
        lat = (g - 1) * ai + (n - g) * an
        hi, hn = g - 1, n - g
        steps = f"{n - 1} peers"
    elif op == "send_recv":
        if N > 1:
            net, lat, hn = S, an, 1
        else:
            intra, lat, hi = S, ai, 1
        steps = "one message"
    bw_intra = L.intra_Bps * (eff(device, "nvls_efficiency") if algo == "nvls" else 1.0)
    terms = {}
    if intra:
        terms[L.intra] = intra / bw_intra
    if net:
        terms["network"] = net / L.net_Bps
    ring = algo == "ring" and op in ("all_reduce", "all_gather", "reduce_scatter")
    return {"terms": terms, "bytes": {L.intra: intra, "network": net}, "latency_s": lat, "steps": steps,
            "loop_chunks": n if ring else 0, "S": S, "hops": (hi, hn), "nodes": N, "net_alpha_s": an}


def protocols(algo: str, L: Links, device=None, nodes: int = 1) -> tuple[str, ...]:
    """The protocols NCCL may run ``algo`` with on these links: NVLS only with Simple; LL128 only
    where NVLink joins the GPUs (it relies on NVLink's in-order 128-byte stores).

    RCCL (AMD): LL128 only where its tuning model enables it by default, and no Tree/Simple on
    one gfx94x node (ncclTopoTuneModel skips the pair when every rank sits in the node)."""
    if algo == "nvls":
        return ("Simple",)
    m = rccl_model(device) if device is not None else None
    if m is None:
        return PROTOCOLS if L.intra == "nvlink" else ("LL", "Simple")
    out = ("LL",) + (("LL128",) if m.ll128 and L.intra == "nvlink" else ()) + ("Simple",)
    if algo == "tree" and nodes == 1 and not m.tree_simple_one_node:
        out = tuple(p for p in out if p != "Simple")
    return out


def simple_loops(S: float, chunks_per_loop: int, device) -> int:
    """Loops of NCCL's ring kernel over ``S`` bytes with the Simple protocol.

    One loop moves ``nccl_channels x chunks_per_loop x nccl_simple_chunk_bytes`` (calcCollChunking:
    loopSize = nChannels x nchunksPerLoop x chunkSize; the kernel shrinks the chunk of the last
    loop to what is left, so a message below one loop runs one loop of smaller chunks).
    """
    if chunks_per_loop <= 0 or S <= 0:
        return 1
    loop = eff(device, "nccl_channels") * chunks_per_loop * eff(device, "nccl_simple_chunk_bytes")
    return max(1, math.ceil(S / loop - 1e-9))


def _protocol_cost(proto: str, algo: str, p: dict, device) -> tuple[float, float, dict[str, float], float]:
    """(fixed seconds, link latency seconds, per-link data seconds, the link latency NCCL's tuner
    assumes) of one (algorithm, protocol).

    Simple on a ring pays its per-hop latency ``nccl_simple_slices_per_step`` times per ring step
    (one flag handshake per slice) and again in every loop of the kernel: a CTA waits for its
    peer's step counter, copies, fences and posts one slice at a time, so the handshakes of one
    channel do not overlap its own copies. NCCL's tuner (tuning.cc) charges the steps once per
    collective; the kernel (prims_simple.h, all_reduce.h runRing) pays them per slice and loop.
    LL and LL128 carry their flags inside the data lines, so a receiver forwards each line as it
    lands and the hop latency is paid once along the ring.
    """
    if algo == "nvls":               # NCCL's NVLS latency is already a Simple-protocol figure
        return eff(device, "collective_launch_s"), p["latency_s"], dict(p["terms"]), p["latency_s"]
    m = rccl_model(device)
    if m is not None:
        return _rccl_protocol_cost(m, proto, algo, p, device)
    launch, hop, bwf = {
        "LL": ("collective_launch_s", 1.0, "nccl_ll_bw_fraction"),
        "LL128": ("nccl_ll128_launch_s", "nccl_ll128_hop_factor", "nccl_ll128_bw_fraction"),
        "Simple": ("nccl_simple_launch_s", "nccl_simple_hop_factor", 1.0),
    }[proto]
    hop = hop if isinstance(hop, float) else eff(device, hop)
    bwf = bwf if isinstance(bwf, float) else eff(device, bwf)
    tuner = lat = hop * p["latency_s"]
    if proto == "Simple" and p.get("loop_chunks"):
        lat *= eff(device, "nccl_simple_slices_per_step") * simple_loops(p["S"], p["loop_chunks"], device)
    return eff(device, launch), lat, {k: v / bwf for k, v in p["terms"].items()}, tuner


def _rccl_protocol_cost(m: RcclModel, proto: str, algo: str, p: dict, device):
    """RCCL's version of ``_protocol_cost``: its base latency, its per-xGMI-step latency of the
    (algorithm, protocol) for each step inside the node (network steps keep the link spec's
    latency scaled by the NCCL protocol factors: RCCL's network row is a tuner bias, see
    docs/cost_model.md), and its measured bandwidth ratio. The Simple ring pays its handshakes per
    slice and loop as NCCL's kernel does (RCCL keeps prims_simple.h's structure)."""
    kind = "tree" if algo == "tree" else "ring"        # direct (all_to_all, send_recv) as the ring
    hi, hn = p["hops"]
    net_factor = {"LL": 1.0, "LL128": eff(device, "nccl_ll128_hop_factor"),
                  "Simple": eff(device, "nccl_simple_hop_factor")}[proto]
    inter = hn * p["net_alpha_s"] * net_factor
    tuner = lat = hi * m.hop_us[kind][proto] * 1e-6 + inter
    if proto == "Simple" and p.get("loop_chunks"):
        lat = (lat - inter) * eff(device, "nccl_simple_slices_per_step") \
            * simple_loops(p["S"], p["loop_chunks"], device) + inter
    ratio = m.bw_ratio[0 if p["nodes"] <= 2 else 1][kind][proto]
    return eff(device, RCCL_LAUNCH[proto]), lat, {k: v / ratio for k, v in p["terms"].items()}, tuner


def rccl_protocol_override(m: RcclModel, op: str, S: float, n: int, nodes: int) -> str | None:
    """The protocol RCCL's rcclUpdateCollectiveProtocol forces after its tuner, or None.

    Between nodes (nNodes >= 2) the model's llProtoRanges windows decide: Simple, LL when the
    bytes per rank fall in (0, LL max], LL128 in (LL128 min, LL128 max] where LL128 is enabled
    (the all_reduce maximum x 3.8 beyond two nodes). Bytes per rank: the buffer for all_reduce, the
    buffer / n for all_gather and reduce_scatter (rcclGetSizePerRank). On one gfx942 node only
    reduce_scatter has a rule (LL up to ``one_node_ll_max``)."""
    per_rank = S / n if op in ("all_gather", "reduce_scatter") else S
    if nodes == 1:
        cap = m.one_node_ll_max.get(op)
        return "LL" if cap is not None and per_rank <= cap else None
    if op not in m.ll_windows:
        return None
    ll_max, ll128_min, ll128_max = m.ll_windows[op]
    proto = "LL" if 0 < per_rank <= ll_max else "Simple"
    if m.ll128:
        if op == "all_reduce" and nodes > 2:
            ll128_max *= 3.8
        if ll128_min < per_rank <= ll128_max:
            proto = "LL128"
    return proto


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
        return OpCost(0.0, "none", detail={"algo": None, "protocol": None, "gpus": 1, "algbw_Bps": 0.0,
                                           "busbw_Bps": 0.0, "explanation": "one GPU: nothing to communicate"})
    choices = algorithms(op.op, op.gpus, system, per_node)
    if op.algo is not None and op.algo not in choices:
        raise ValueError(f"algorithm '{op.algo}' cannot run {op.op} on {op.gpus} GPUs of "
                         f"{system.device.name} ({system.cluster.intra_node}); choose from {choices}")
    g, N = placement(op.gpus, system, per_node)
    L = links(system, g, N)
    timed = {}
    for algo in ([op.algo] if op.algo else choices):
        p = _plan(op.op, algo, float(op.bytes), op.gpus, g, N, L, system.device)
        for proto in protocols(algo, L, system.device, N):
            fixed, lat, terms, tuner_lat = _protocol_cost(proto, algo, p, system.device)
            data = max(terms.values(), default=0.0)
            timed[(algo, proto)] = (fixed + lat + data, p, fixed, lat, terms, fixed + tuner_lat + data)
    # NCCL picks by its tuner's estimate (latency charged once), then pays what the kernel costs.
    algo, proto = min(timed, key=lambda a: timed[a][5])
    m = rccl_model(system.device)
    forced = rccl_protocol_override(m, op.op, float(op.bytes), op.gpus, N) if m else None
    if forced is not None and (algo, forced) in timed:     # RCCL's size windows replace the protocol
        proto = forced
    t, p, launch, link_lat, terms, _ = timed[(algo, proto)]
    bw_bound = max(terms, key=terms.get) if terms else None
    latency = launch + link_lat
    bound = bw_bound if bw_bound and terms[bw_bound] >= latency else "link_latency"
    algbw = op.bytes / t
    busbw = algbw * BUSBW_FACTOR[op.op](op.gpus)
    terms.update(link_latency=link_lat, launch_overhead=launch)
    detail = {
        "algo": algo, "protocol": proto, "library": "RCCL" if m else "NCCL", "gpus": op.gpus, "gpus_per_node": g, "nodes": N, "steps": p["steps"],
        "intra_node_link": L.intra_link, "network_link": L.net_link or None,
        "intra_Bps_achievable": L.intra_Bps, "network_Bps_achievable": L.net_Bps or None,
        "algbw_Bps": algbw, "busbw_Bps": busbw,
        "candidates_s": {f"{a}/{pr}": v[0] for (a, pr), v in timed.items()},
        "tuner_estimate_s": {f"{a}/{pr}": v[5] for (a, pr), v in timed.items()},
        "loops": simple_loops(p["S"], p["loop_chunks"], system.device)
        if proto == "Simple" and p["loop_chunks"] else 1,
        "explanation": _explain(op, algo, proto, bound, p, terms, L, latency),
    }
    return OpCost(t, bound, 0.0, {k: v for k, v in p["bytes"].items() if v}, terms, detail)


def _explain(op, algo, proto, bound, p, terms, L, latency) -> str:
    data_s = max((v for k, v in terms.items() if k not in ("link_latency", "launch_overhead")), default=0)
    if bound == "link_latency":
        return (f"latency-bound: {op.op} {algo}/{proto} on {op.gpus} GPUs ({p['steps']}) costs {latency * 1e6:.3g} us "
                f"of launch and per-step link latency against {data_s * 1e6:.3g} us of data movement")
    moved = p["bytes"][bound]
    rate = moved / terms[bound]
    return (f"{bound}-bound: {op.op} {algo}/{proto} moves {moved:.3g} bytes per GPU each way over {bound} at "
            f"{rate / 1e9:.3g} GB/s with this protocol ({p['steps']}); latency adds {latency * 1e6:.3g} us")
