"""Collective cost: nccl-tests definitions, alpha-beta closed forms, NCCL's algorithm rules and
physical bounds. Links are given inline here (known latencies), so the closed forms are exact."""
import math

import pytest
from hypothesis import given, settings, strategies as st

import sim.cost.collective as coll
from sim.cost.efficiency import PARAMS
from sim.errors import InputError
from sim.hardware import load_device
from sim.hardware.spec import HostSpec, LinkSpec, NVLink
from sim.hardware.system import Cluster, System, pcie_Bps
from sim.ops import Collective

GiB = 2 ** 30
LINKS = {  # name -> (kind, GB/s per direction, latency us)
    "NVLink-3": ("nvlink", 300, 0.7), "NVLink-4": ("nvlink", 450, 0.8),
    "PCIe-4": ("pcie", 31.5, 1.2), "PCIe-5": ("pcie", 63, 1.2),
    "InfiniBand-HDR": ("infiniband", 25, 2.0), "InfiniBand-NDR": ("infiniband", 50, 1.5),
}


@pytest.fixture(autouse=True)
def inline_links(monkeypatch):
    specs = {n: LinkSpec(name=n, kind=k, bandwidth_gbps=b, width="per GPU", latency_us=l,
                         sources={"bandwidth_gbps": "test", "latency_us": "test"})
             for n, (k, b, l) in LINKS.items()}

    def load(name):
        if name not in specs:
            raise InputError("scenario", "link", f"unknown link '{name}'")
        return specs[name]
    coll._link.cache_clear()
    monkeypatch.setattr(coll, "load_link", load)
    monkeypatch.setattr(coll, "names", lambda kind: sorted(specs))
    yield
    coll._link.cache_clear()


HOST = HostSpec(name="test-host", gpus=8,
                cpu={"model": "x", "sockets": 2, "cores": 112, "fp32_tflops": 8},
                dram={"capacity_gb": 2048, "bandwidth_gbps": 600}, pcie_generation=5, pcie_lanes_per_gpu=16, network_gbps_per_gpu=400,
                nvme={"drives": 8, "capacity_tb_per_drive": 3.84, "read_gbps_per_drive": 6.9,
                      "write_gbps_per_drive": 4.2},
                sources={k: "test" for k in ("gpus", "cpu", "dram", "pcie_generation", "pcie_lanes_per_gpu", "network_gbps_per_gpu", "nvme")})
H100 = load_device("H100-SXM5-80GB")
AMPERE = H100.model_copy(update={"name": "ampere-like", "arch": "ampere"})
P = {k: v.default for k, v in PARAMS.items()}


def system(device=H100, gpus=8, gpn=8, intra="nvlink", gbps=400.0):
    return System(device, HOST, Cluster(gpus, gpn, intra, gbps))


def price(op, nbytes, gpus, algo=None, **kw):
    return coll.price(Collective(op, nbytes, gpus, algo), system(gpus=gpus, **kw))


def nvlink_Bps(dev=H100):
    return dev.nvlink_Bps * P["nvlink_efficiency"]


# fixed seconds, per-hop latency factor and share of the link rate of each NCCL protocol
PROTO = {"LL": (P["collective_launch_s"], 1.0, P["nccl_ll_bw_fraction"]),
         "LL128": (P["nccl_ll128_launch_s"], P["nccl_ll128_hop_factor"], P["nccl_ll128_bw_fraction"]),
         "Simple": (P["nccl_simple_launch_s"], P["nccl_simple_hop_factor"], 1.0)}


def closed_form(proto, hop_latency_s, data_s, loops=0):
    """NCCL's cost of one (algorithm, protocol): fixed + factor x hop latencies + data / protocol rate.

    ``loops`` > 0: a ring with the Simple protocol, whose kernel pays its hop latencies once per
    slice (2 per step) and per loop."""
    fixed, hop, bwf = PROTO[proto]
    per = 2 * loops if loops else 1
    return fixed + hop * hop_latency_s * per + data_s / bwf


def dev_hop(dev):
    """The LL hop latency of the device's NVLink in the inline link table (seconds)."""
    return LINKS[f"NVLink-{dev.nvlink.generation}"][2] * 1e-6


def ring_loops(S, n):
    """NCCL's loop count by hand: loopSize = nChannels (24) x nRanks x chunkSize (4 MiB / 8 steps x 4)."""
    return math.ceil(S / (24 * n * (4 * 2 ** 20 // 8 * 4)))


# ---------------------------------------------------------------- nccl-tests definitions
@pytest.mark.parametrize("op,factor", [("all_reduce", lambda n: 2 * (n - 1) / n),
                                       ("all_gather", lambda n: (n - 1) / n),
                                       ("reduce_scatter", lambda n: (n - 1) / n),
                                       ("all_to_all", lambda n: (n - 1) / n),
                                       ("send_recv", lambda n: 1.0)])
@pytest.mark.parametrize("n", [2, 4, 8])
def test_busbw_is_algbw_times_nccl_tests_factor(op, factor, n):
    c = price(op, 256 * 2 ** 20, n, gpn=8)
    algbw = 256 * 2 ** 20 / c.time_s
    assert c.detail["algbw_Bps"] == pytest.approx(algbw)
    assert c.detail["busbw_Bps"] == pytest.approx(algbw * factor(n))


# ---------------------------------------------------------------- alpha-beta closed forms
@pytest.mark.parametrize("n", [2, 4, 8])
def test_ring_all_reduce_large_message_is_2_n_minus_1_over_n_bytes_over_bandwidth(n):
    S = 16 * GiB
    c = price("all_reduce", S, n, algo="ring")
    bw_time = 2 * (n - 1) / n * S / nvlink_Bps()
    assert c.detail["protocol"] == "Simple"                  # full link rate wins for large messages
    assert c.time_s == pytest.approx(closed_form("Simple", 2 * (n - 1) * 0.8e-6, bw_time, ring_loops(S, n)),
                                     rel=1e-9)
    assert c.detail["loops"] == ring_loops(S, n)
    # the handshakes of every loop keep busbw a few percent under the achievable link rate
    assert c.time_s == pytest.approx(bw_time, rel=0.1) and c.time_s > bw_time
    assert c.bound == "nvlink"
    assert 0.9 * nvlink_Bps() < c.detail["busbw_Bps"] < nvlink_Bps()


@pytest.mark.parametrize("op,steps", [("all_gather", 7), ("reduce_scatter", 7)])
def test_ring_gather_scatter_closed_form(op, steps):
    S = 4 * GiB
    c = price(op, S, 8, algo="ring")
    assert c.time_s == pytest.approx(closed_form("Simple", steps * 0.8e-6, 7 / 8 * S / nvlink_Bps(),
                                                 ring_loops(S, 8)))


def test_small_messages_are_latency_bound():
    tiny = price("all_reduce", 8, 8, algo="ring")
    assert tiny.bound == "link_latency"
    assert tiny.detail["protocol"] == "LL"                   # the lowest latency wins for tiny messages
    assert tiny.time_s == pytest.approx(P["collective_launch_s"] + 14 * 0.8e-6, rel=1e-4)
    # doubling a tiny message costs (almost) nothing; doubling a huge one doubles the time
    assert price("all_reduce", 16, 8, algo="ring").time_s == pytest.approx(tiny.time_s, rel=1e-3)
    big1, big2 = price("all_reduce", 8 * GiB, 8).time_s, price("all_reduce", 16 * GiB, 8).time_s
    assert big2 / big1 == pytest.approx(2.0, rel=1e-3)


def test_one_gpu_costs_nothing():
    c = coll.price(Collective("all_reduce", GiB, 1), system())
    assert c.time_s == 0.0


def test_send_recv_uses_one_link():
    S = 4 * GiB
    intra = price("send_recv", S, 2)
    assert intra.time_s == pytest.approx(closed_form("Simple", 0.8e-6, S / nvlink_Bps()))
    inter = price("send_recv", S, 2, gpn=1)          # two nodes of one GPU: the NIC
    net = 400e9 / 8 * P["network_efficiency"]
    assert inter.bound == "network"
    assert inter.time_s == pytest.approx(closed_form("Simple", 1.5e-6, S / net))


def test_pcie_intra_node_uses_the_slower_pcie_generation_and_fewer_lanes():
    dev = H100.model_copy(update={"nvlink": None})
    host4 = HOST.model_copy(update={"pcie_generation": 4, "pcie_lanes_per_gpu": 8})
    s = System(dev, host4, Cluster(4, 4, "pcie"))
    S = 4 * GiB
    c = coll.price(Collective("all_gather", S, 4, "ring"), s)
    B = pcie_Bps(4, 8) * P["pcie_efficiency"]
    assert c.bound == "pcie"
    assert c.time_s == pytest.approx(closed_form("Simple", 3 * 1.2e-6, 3 / 4 * S / B, ring_loops(S, 4)))
    assert set(c.detail["candidates_s"]) == {"ring/LL", "ring/Simple"}   # no LL128 without NVLink


# ---------------------------------------------------------------- multi-node (hierarchical)
@pytest.mark.parametrize("nbytes", [2 ** 10, 2 ** 20, 2 ** 27, 2 ** 33])
@pytest.mark.parametrize("gbps", [100.0, 400.0])
def test_multi_node_is_slower_than_one_node_for_the_same_buffer(nbytes, gbps):
    one = price("all_reduce", nbytes, 8, gbps=gbps)
    two = price("all_reduce", nbytes, 16, gpn=8, gbps=gbps)
    assert two.time_s > one.time_s
    assert two.detail["nodes"] == 2


def test_hierarchical_all_reduce_moves_the_1_over_g_shard_between_nodes():
    S, g, N = 8 * GiB, 8, 4
    c = price("all_reduce", S, g * N, algo="ring", gpn=g, gbps=100.0)
    net = 100e9 / 8 * P["network_efficiency"]
    assert c.bound == "network"
    assert c.bytes["network"] == pytest.approx(2 * (N - 1) / N * S / g)
    lat = 2 * (g - 1) * 0.8e-6 + 2 * (N - 1) * 2.0e-6
    assert c.time_s == pytest.approx(closed_form("Simple", lat, 2 * (N - 1) / N * S / g / net,
                                                 ring_loops(S, g * N)))


def test_tree_wins_small_messages_across_many_nodes_ring_wins_large():
    kw = dict(gpn=8, gbps=400.0)
    small = price("all_reduce", 4096, 8 * 64, **kw)
    large = price("all_reduce", 8 * GiB, 8 * 64, **kw)
    assert small.detail["algo"] == "tree"
    assert large.detail["algo"] in ("ring", "nvls")


# ---------------------------------------------------------------- NVLS
def test_nvls_only_on_hopper_and_later_nvswitch_systems():
    assert "nvls" in coll.algorithms("all_reduce", 8, system())
    assert "nvls" not in coll.algorithms("all_reduce", 8, system(AMPERE))
    assert "nvls" not in coll.algorithms("all_reduce", 8, system(intra="pcie"))
    bridged = H100.model_copy(update={"nvlink": NVLink(generation=4, bandwidth_gbps=300, topology="bridge")})
    assert "nvls" not in coll.algorithms("all_reduce", 2, system(bridged, gpus=2, gpn=2))   # a bridge, no switch
    with pytest.raises(ValueError, match="nvls"):
        coll.price(Collective("all_reduce", GiB, 8, "nvls"), system(AMPERE))


def test_nvls_all_reduce_moves_about_the_buffer_each_way():
    S, n = 16 * GiB, 8
    c = price("all_reduce", S, n, algo="nvls")
    assert c.bytes["nvlink"] == pytest.approx(S * (n + 1) / n)
    ring = price("all_reduce", S, n, algo="ring")
    # in-switch reduction beats the ring's 2(n-1)/n unless the switch is less than ~(n+1)/(2(n-1)) efficient
    assert c.time_s < ring.time_s
    assert price("all_reduce", S, n).detail["algo"] == "nvls"


# ---------------------------------------------------------------- physical bounds (properties)
ops = st.sampled_from(coll.OPS)
sizes = st.floats(min_value=1.0, max_value=64 * GiB)


@settings(max_examples=60, deadline=None)
@given(op=ops, nbytes=sizes, n=st.integers(2, 8), algo=st.sampled_from([None, "ring", "tree"]))
def test_busbw_never_exceeds_achievable_link_rate_inside_a_node(op, nbytes, n, algo):
    s = system(gpus=n, gpn=8)
    if algo not in coll.algorithms(op, n, s):
        algo = None
    c = coll.price(Collective(op, nbytes, n, algo), s)
    B = nvlink_Bps()
    if c.detail["algo"] == "nvls":      # the switch reduces: each GPU still receives the whole buffer
        assert c.detail["algbw_Bps"] <= B * P["nvls_efficiency"] * (1 + 1e-9)
    else:
        assert c.detail["busbw_Bps"] <= B * (1 + 1e-9)
    assert c.detail["busbw_Bps"] <= H100.nvlink_Bps * 2


@settings(max_examples=60, deadline=None)
@given(op=ops, nbytes=sizes, nodes=st.integers(2, 16), gbps=st.sampled_from([100.0, 200.0, 400.0]))
def test_multi_node_busbw_within_what_a_gpu_can_send(op, nbytes, nodes, gbps):
    s = system(gpus=8 * nodes, gpn=8, gbps=gbps)
    c = coll.price(Collective(op, nbytes, 8 * nodes), s)
    per_gpu = nvlink_Bps() + gbps * 1e9 / 8 * P["network_efficiency"]
    if c.detail["algo"] != "nvls":
        assert c.detail["busbw_Bps"] <= per_gpu * (1 + 1e-9)


@settings(max_examples=80, deadline=None)
@given(op=ops, nbytes=sizes, gpus=st.sampled_from([2, 4, 8, 16, 64]), f_nvl=st.floats(1.0, 4.0),
       f_net=st.floats(1.0, 4.0), gbps=st.sampled_from([100.0, 200.0, 400.0]))
def test_more_link_bandwidth_is_never_slower(op, nbytes, gpus, f_nvl, f_net, gbps):
    gpn = min(gpus, 8)
    base = coll.price(Collective(op, nbytes, gpus), system(gpus=gpus, gpn=gpn, gbps=gbps))
    faster = H100.model_copy(update={"nvlink": NVLink(generation=4, bandwidth_gbps=450 * f_nvl, topology="switch")})
    more = coll.price(Collective(op, nbytes, gpus), system(faster, gpus=gpus, gpn=gpn, gbps=gbps * f_net))
    assert more.time_s <= base.time_s * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(op=ops, n=st.integers(2, 8), a=sizes, b=sizes)
def test_more_bytes_never_faster(op, n, a, b):
    lo, hi = sorted((a, b))
    assert price(op, lo, n).time_s <= price(op, hi, n).time_s * (1 + 1e-12)


def test_missing_link_spec_fails_clearly(monkeypatch):
    monkeypatch.setattr(coll, "names", lambda kind: [])
    v100ish = H100.model_copy(update={"nvlink": NVLink(generation=2, bandwidth_gbps=150, topology="switch"), "arch": "volta"})
    with pytest.raises(InputError, match="NVLink-2"):
        coll.price(Collective("all_reduce", GiB, 8), system(v100ish))


def test_tree_latency_grows_with_log2_of_nodes():
    # chain of g-1 steps each way inside a node, ceil(log2 N) each way between nodes
    for N in (2, 4, 16, 64):
        c = price("all_reduce", 8, 8 * N, algo="tree", gpn=8)
        expected = P["collective_launch_s"] + 2 * (7 * 0.8e-6 + math.ceil(math.log2(N)) * 1.5e-6)
        assert c.time_s == pytest.approx(expected, rel=1e-4)


def test_bridged_pairs_cross_pcie_beyond_two_gpus():
    from types import SimpleNamespace
    bridged = H100.model_copy(update={"name": "bridged", "arch": "ampere",
                                      "nvlink": SimpleNamespace(generation=3, bandwidth_gbps=56.25, topology="bridge")})
    pair = coll.price(Collective("all_reduce", 4 * GiB, 2), system(bridged, gpus=2, gpn=4))
    quad = coll.price(Collective("all_reduce", 4 * GiB, 4), system(bridged, gpus=4, gpn=4))
    assert pair.bound == "nvlink" and quad.bound == "pcie"
    assert "nvls" not in coll.algorithms("all_reduce", 4, system(bridged, gpus=4, gpn=4))


def test_a_group_strided_across_nodes_goes_over_the_network():
    s = system(gpus=32, gpn=8, gbps=200.0)
    packed = coll.price(Collective("all_reduce", GiB, 4), s)
    strided = coll.price_placed(Collective("all_reduce", GiB, 4), s, per_node=1)
    assert packed.detail["nodes"] == 1 and packed.bound == "nvlink"
    assert strided.detail["nodes"] == 4 and strided.bound == "network"
    net = 200e9 / 8 * P["network_efficiency"]
    assert strided.bytes["network"] == pytest.approx(2 * 3 / 4 * GiB)
    assert strided.time_s > 2 * 3 / 4 * GiB / net


# ---------------------------------------------------------------- protocols (NCCL LL / LL128 / Simple)
def test_protocol_switches_from_ll_to_simple_as_messages_grow():
    protos = [coll.price(Collective("all_reduce", 2 ** k, 8), system(AMPERE)).detail["protocol"]
              for k in range(3, 35)]
    order = {"LL": 0, "LL128": 1, "Simple": 2}
    ranks = [order[p] for p in protos]
    assert ranks == sorted(ranks)                        # LL -> LL128 -> Simple, never back
    assert protos[0] == "LL" and protos[-1] == "Simple" and "LL128" in protos


@pytest.mark.parametrize("dev,gpus", [(AMPERE, 8), (AMPERE, 2), (H100, 4)])
def test_busbw_rises_with_message_size_towards_the_large_message_bound(dev, gpus):
    s = system(dev, gpus=gpus)
    sizes = [2 ** k for k in range(10, 36)]
    costs = [coll.price(Collective("all_reduce", b, gpus, "ring"), s) for b in sizes]
    busbw = [c.detail["busbw_Bps"] for c in costs]
    # with the protocol and the loop count unchanged, a bigger message never lowers busbw
    for c1, c2 in zip(costs, costs[1:]):
        if (c1.detail["protocol"], c1.detail["loops"]) == (c2.detail["protocol"], c2.detail["loops"]):
            assert c2.detail["busbw_Bps"] >= c1.detail["busbw_Bps"] * (1 - 1e-12)
    bound = nvlink_Bps(dev)
    assert max(busbw) <= bound
    # the largest message: bound x loop data time / (loop data time + one loop's handshakes)
    loop = 24 * gpus * 2 * 2 ** 20
    data = 2 * (gpus - 1) / gpus * loop / bound
    hs = 2 * (gpus - 1) * 2 * P["nccl_simple_hop_factor"] * dev_hop(dev)
    assert busbw[-1] == pytest.approx(bound * data / (data + hs), rel=5e-3)
    # a mid-size message (1 MiB) pays latency or the LL protocol's halved rate: well below the bound
    assert busbw[sizes.index(2 ** 20)] < 0.5 * bound


def test_mid_size_messages_pay_either_protocol_cost():
    """Between the regimes no protocol gets both: LL halves the rate, Simple pays ~5x the hop latency."""
    c = coll.price(Collective("all_reduce", 4 * 2 ** 20, 8, "ring"), system(AMPERE))
    ll, simple = c.detail["candidates_s"]["ring/LL"], c.detail["candidates_s"]["ring/Simple"]
    ideal = P["collective_launch_s"] + 14 * 0.8e-6 + 2 * 7 / 8 * 4 * 2 ** 20 / nvlink_Bps()
    assert min(ll, simple) > ideal * 1.2
    assert c.time_s == min(c.detail["candidates_s"].values())


def test_nvls_runs_only_with_simple():
    c = price("all_reduce", 16 * GiB, 8, algo="nvls")
    assert c.detail["protocol"] == "Simple"
    assert not any(k.startswith("nvls/LL") for k in c.detail["candidates_s"])


# ---------------------------------------------------------------- NCCL's ring loops (Simple)
def test_simple_ring_pays_its_handshakes_once_per_loop_of_nccl_chunks():
    """One byte past NCCL's loop (24 channels x n ranks x 2 MiB) adds a second loop of slice handshakes."""
    n, loop = 8, 24 * 8 * 2 * 2 ** 20
    below = price("all_reduce", loop, n, algo="ring")
    above = price("all_reduce", loop + 2 ** 20, n, algo="ring")
    assert (below.detail["protocol"], above.detail["protocol"]) == ("Simple", "Simple")
    assert (below.detail["loops"], above.detail["loops"]) == (1, 2)
    one_loop = 2 * (n - 1) * 2 * P["nccl_simple_hop_factor"] * 0.8e-6      # 14 steps x 2 slices
    extra_data = 2 * (n - 1) / n * 2 ** 20 / nvlink_Bps()
    assert above.time_s - below.time_s == pytest.approx(one_loop + extra_data, rel=1e-9)
    assert above.detail["busbw_Bps"] < below.detail["busbw_Bps"]          # the sawtooth at the boundary


def test_protocol_is_chosen_by_nccl_tuner_estimate_and_priced_by_the_kernel():
    for size in (2 ** 16, 2 ** 22, 2 ** 25, 2 ** 30):
        c = price("all_reduce", size, 8)
        est = c.detail["tuner_estimate_s"]
        key = f"{c.detail['algo']}/{c.detail['protocol']}"
        assert est[key] == min(est.values())
        assert c.time_s >= est[key] * (1 - 1e-12)          # the kernel never beats the tuner's estimate
        assert c.time_s == pytest.approx(c.detail["candidates_s"][key])
