"""AMD collectives priced as RCCL runs them: RCCL's base and per-hop latencies, its protocol rules
and size windows, xGMI's achievable rate; NVIDIA devices keep NCCL's constants.

Figures asserted here are RCCL's published source constants (ROCm/rccl src/graph/tuning.cc
baseLat and tuning_model_5 / tuning_model_0, src/graph/topo.h ncclTopoXGMISpeed, the
llProtoRanges windows of rcclUpdateCollectiveProtocol) and physical bounds, never the model's own
output."""
import math

import pytest
from hypothesis import given, settings, strategies as st

import sim.cost.collective as coll
from sim.cost.efficiency import PARAMS
from sim.hardware import load_device, load_host
from sim.hardware.spec import NVLink
from sim.hardware.system import Cluster, System
from sim.ops import Collective

MiB, GiB = 2 ** 20, 2 ** 30
MI300X = load_device("MI300X")
MI250X = load_device("MI250X")
H100 = load_device("H100-SXM5-80GB")
P = {k: v.default for k, v in PARAMS.items()}

# RCCL src/graph/tuning.cc: baseLat (us) per protocol; tuning_model_5 (gfx942) ring hwLat over xGMI (us)
RCCL_BASE_US = {"LL": 12.0, "LL128": 12.0, "Simple": 17.0}
GFX942_RING_HOP_US = {"LL": 0.8, "Simple": 2.1}
XGMI_RCCL_GBPS = 48.0          # src/graph/topo.h ncclTopoXGMISpeed, gfx94x, per link and direction


def system(dev=MI300X, gpus=8, gpn=8, gbps=400.0):
    return System(dev, load_host(dev.default_host), Cluster(gpus, gpn, "nvlink", gbps))


def price(op, nbytes, gpus=8, dev=MI300X, algo=None, **kw):
    return coll.price(Collective(op, float(nbytes), gpus, algo), system(dev, gpus=gpus, **kw))


def mesh_Bps(dev=MI300X):
    """What RCCL's topology gives a GPU of a fully connected 8-GPU node: 7 links x 48 GB/s."""
    return 7 * XGMI_RCCL_GBPS * 1e9 if dev is MI300X else dev.nvlink_Bps * dev.efficiency["nvlink_efficiency"]


def loops(S, n):
    return math.ceil(S / (P["nccl_channels"] * n * P["nccl_simple_chunk_bytes"]))


# ---------------------------------------------------------------- vendor dispatch
def test_amd_devices_take_rccl_nvidia_devices_take_nccl():
    assert coll.rccl_model(MI300X).gcn == "gfx942"
    assert coll.rccl_model(MI250X).gcn == "gfx90a"
    assert coll.rccl_model(H100) is None
    assert price("all_reduce", MiB).detail["library"] == "RCCL"
    assert price("all_reduce", MiB, dev=H100).detail["library"] == "NCCL"


def test_mi300x_xgmi_rate_is_rccl_topology_figure():
    """7 links x 48 GB/s (RCCL's per-link xGMI figure for gfx94x) against 7 x 64 GB/s line rate."""
    assert MI300X.nvlink_Bps * MI300X.efficiency["nvlink_efficiency"] == pytest.approx(mesh_Bps(), rel=1e-9)


@pytest.mark.parametrize("nbytes", [8, 64 * 1024, MiB, 64 * MiB, 4 * GiB])
@pytest.mark.parametrize("gpus", [2, 8, 16])
def test_nvidia_ignores_rccl_constants(nbytes, gpus):
    """Overriding every RCCL constant on an NVIDIA device changes nothing: its path reads NCCL's."""
    wild = {"rccl_ll_launch_s": 1e-3, "rccl_ll128_launch_s": 1e-3, "rccl_simple_launch_s": 1e-3}
    h = H100.model_copy(update={"efficiency": {**H100.efficiency, **wild}})
    a = price("all_reduce", nbytes, gpus, dev=H100)
    b = price("all_reduce", nbytes, gpus, dev=h)
    assert a.time_s == b.time_s and a.detail["protocol"] == b.detail["protocol"]
    # ... while the same override moves the AMD prediction
    m = MI300X.model_copy(update={"efficiency": {**MI300X.efficiency, **wild}})
    assert price("all_reduce", nbytes, gpus, dev=m).time_s > price("all_reduce", nbytes, gpus).time_s


def test_nvidia_tiny_all_reduce_is_nccl_closed_form():
    """NCCL: LL base latency 6.6 us + 14 ring steps x the NVLink LL hop (0.6 us, link spec)."""
    c = price("all_reduce", 8, dev=H100, algo="ring")
    assert c.detail["protocol"] == "LL"
    assert c.time_s == pytest.approx(P["collective_launch_s"] + 14 * 0.6e-6, rel=1e-4)


# ---------------------------------------------------------------- RCCL closed forms
def test_mi300x_tiny_all_reduce_is_rccl_ll_closed_form():
    """RCCL: LL base latency 12 us + 14 ring steps x 0.8 us per xGMI step (tuning_model_5)."""
    c = price("all_reduce", 8)
    assert (c.detail["algo"], c.detail["protocol"]) == ("ring", "LL")
    assert c.time_s == pytest.approx((RCCL_BASE_US["LL"] + 14 * GFX942_RING_HOP_US["LL"]) * 1e-6, rel=1e-4)


def test_mi300x_large_all_reduce_is_rccl_simple_closed_form():
    """Simple: 17 us + 14 steps x 2.1 us x 2 slices per loop, and the ring's bytes at 7 x 48 GB/s."""
    S, n = 4 * GiB, 8
    c = price("all_reduce", S)
    assert (c.detail["algo"], c.detail["protocol"]) == ("ring", "Simple")
    hs = 14 * GFX942_RING_HOP_US["Simple"] * 1e-6 * 2 * loops(S, n)
    expected = RCCL_BASE_US["Simple"] * 1e-6 + hs + 2 * (n - 1) / n * S / mesh_Bps()
    assert c.time_s == pytest.approx(expected, rel=1e-9)
    assert 0.95 * mesh_Bps() < c.detail["busbw_Bps"] < mesh_Bps()


def test_rccl_ll_carries_its_measured_share_of_the_bus_bandwidth():
    """tuning_model_5 ring LL bwRatio 0.08: an LL ring moves its bytes at 8% of the bus rate."""
    S = 16 * MiB
    c = price("all_reduce", S, algo="ring")
    ll = c.detail["candidates_s"]["ring/LL"]
    data = 2 * 7 / 8 * S / (0.08 * mesh_Bps())
    assert ll == pytest.approx((RCCL_BASE_US["LL"] + 14 * GFX942_RING_HOP_US["LL"]) * 1e-6 + data, rel=1e-9)


# ---------------------------------------------------------------- protocol rules and size windows
sizes = st.floats(min_value=1.0, max_value=16 * GiB)


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(["all_reduce", "all_gather", "reduce_scatter"]), nbytes=sizes)
def test_one_gfx942_node_never_runs_ll128_or_tree_simple(op, nbytes):
    """RCCL enables LL128 on gfx942 only through a topology model's ll128Enabled, and skips
    Tree/Simple on a gfx94x node holding every rank."""
    c = price(op, nbytes)
    assert c.detail["protocol"] != "LL128"
    assert not any(k.endswith("LL128") for k in c.detail["candidates_s"])
    assert "tree/Simple" not in c.detail["candidates_s"]


@settings(max_examples=80, deadline=None)
@given(nbytes=st.floats(min_value=1.0, max_value=256 * MiB))
def test_between_nodes_all_reduce_follows_llprotoranges(nbytes):
    """nNodes >= 2: LL for up to 1048576 bytes per rank, Simple above (LL128 is off)."""
    c = price("all_reduce", nbytes, gpus=16, gpn=8)
    assert c.detail["nodes"] == 2
    assert c.detail["protocol"] == ("LL" if nbytes <= 1048576 else "Simple")


@pytest.mark.parametrize("op,ll_max_per_rank", [("all_gather", 98304), ("reduce_scatter", 655360)])
def test_between_nodes_gather_scatter_windows_count_bytes_per_rank(op, ll_max_per_rank):
    n = 16
    at = price(op, ll_max_per_rank * n, gpus=n, gpn=8)
    above = price(op, (ll_max_per_rank + 64) * n, gpus=n, gpn=8)
    assert (at.detail["protocol"], above.detail["protocol"]) == ("LL", "Simple")


def test_one_gfx942_node_reduce_scatter_keeps_ll_up_to_its_threshold():
    n = 8
    assert price("reduce_scatter", 352128 * n).detail["protocol"] == "LL"


def test_mi250x_is_gfx90a_tuning_model_0():
    """gfx90a may run Tree/Simple on one node; LL128 is off without a topology model."""
    s = system(MI250X)
    c = coll.price(Collective("all_reduce", float(GiB), 8, "tree"), s)
    assert "tree/Simple" in c.detail["candidates_s"]
    assert not any(k.endswith("LL128") for k in c.detail["candidates_s"])
    tiny = coll.price(Collective("all_reduce", 8.0, 8, "ring"), s)
    assert tiny.time_s == pytest.approx((12.0 + 14 * 0.8) * 1e-6, rel=1e-4)   # tuning_model_0 ring LL 0.8 us


# ---------------------------------------------------------------- physical bounds
@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(coll.OPS), nbytes=sizes, n=st.integers(2, 8))
def test_mi300x_busbw_never_above_xgmi_rate(op, nbytes, n):
    c = price(op, nbytes, gpus=n)
    assert c.detail["busbw_Bps"] <= mesh_Bps() * (1 + 1e-9)


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(coll.OPS), nbytes=sizes, gpus=st.sampled_from([2, 8, 16, 32]),
       f=st.floats(1.0, 4.0), f_net=st.floats(1.0, 4.0))
def test_mi300x_more_link_bandwidth_is_never_slower(op, nbytes, gpus, f, f_net):
    gpn = min(gpus, 8)
    faster = MI300X.model_copy(update={"nvlink": NVLink(generation=4, bandwidth_gbps=448 * f, topology="mesh")})
    base = price(op, nbytes, gpus, gpn=gpn, gbps=400.0)
    more = price(op, nbytes, gpus, dev=faster, gpn=gpn, gbps=400.0 * f_net)
    assert more.time_s <= base.time_s * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(op=st.sampled_from(coll.OPS), a=sizes, b=sizes)
def test_mi300x_more_bytes_never_faster(op, a, b):
    lo, hi = sorted((a, b))
    assert price(op, lo).time_s <= price(op, hi).time_s * (1 + 1e-12)
