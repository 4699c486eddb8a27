"""Parallel layouts and the communication each parallelism dimension adds to a training step.

Rank order follows Megatron-LM (tensor innermost, then sequence/context, then data, then
pipeline outermost), so a group's members sit ``stride`` ranks apart and a node of g GPUs
holds ``g // stride`` of them (at least one). Each builder returns ``Collective`` ops priced by
``sim.cost.cost`` on ``group_system(...)``: the system as that group sees it (its size and how
many of its members share a node), so the collective model picks NVLink or the network.

Volumes (b micro-batch, s sequence, h hidden, B bytes per element, t = tp, per GPU buffer as
nccl-tests counts it):
- TP (Megatron, Shoeybi et al. 2019): 2 all-reduces of b*s*h*B in each layer's forward and 2 in
  its backward; with sequence parallelism (Korthikanti et al. 2022) each becomes an all-gather
  plus a reduce-scatter of the same buffer (same bytes on the wire, activations split by t).
- Ulysses SP (Jacobs et al. 2023): all-to-all of Q, K, V before attention and of the output
  after it, forward and backward; a GPU's buffer per tensor is b*(s/P)*(h/t)*B, so it sends
  about 4*b*s*h*B/P per layer: constant when s and P grow together.
- ring attention (LightSeq, Li et al. 2023): P-1 steps, each passing one K,V block of
  b*(s/P)*h_kv*B*2 to the next GPU, overlapped with the block's attention compute.
- EP (MoE): all-to-all dispatch and combine of the routed tokens (tokens*top_k*h*B) forward and
  backward (GShard / DeepSpeed-MoE).
- PP: one send/recv of the stage boundary activation b*s*h*B (split by t when the activations
  are, Megatron's scatter-gather) per micro-batch each way.
- DP: gradients all-reduced (ZeRO-0), reduce-scattered (ZeRO-1/2/3), parameters all-gathered
  after the step (ZeRO-1/2) or before each use (ZeRO-3) (Rajbhandari et al. 2020).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from sim.hardware.system import Cluster, System
from sim.ops import Collective


@dataclass(frozen=True)
class Layout:
    tp: int = 1
    pp: int = 1
    dp: int = 1
    sp: int = 1                    # sequence (context) parallel degree: Ulysses or ring
    sp_mode: str = "ulysses"
    sequence_parallel: bool = False  # Megatron SP inside the TP group
    ep: int = 1
    zero: int = 0
    schedule: str = "1f1b"
    v: int = 1                     # model chunks per stage (interleaved)

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp * self.sp

    @property
    def shard(self) -> int:
        """Ranks that hold replicas of a dense parameter and share its ZeRO partitions."""
        return self.dp * self.sp


STRIDE = {"tp": lambda L: 1, "sp": lambda L: L.tp, "dp": lambda L: L.tp * L.sp,
          "ep": lambda L: L.tp * L.sp, "pp": lambda L: L.tp * L.sp * L.dp}


def group_system(system: System, size: int, stride: int) -> System:
    """The system as a group of ``size`` ranks ``stride`` apart sees it (members per node)."""
    gpn = system.cluster.gpus_per_node
    per_node = max(1, min(size, gpn // stride)) if stride < gpn else 1
    return _group(system, size, per_node)


_GROUPS: dict = {}


def _group(system: System, size: int, per_node: int) -> System:
    # cached by identity (specs hold dicts, so systems are not hashable); the same object comes back
    # for the same group, which lets the op-price cache hit
    key = (id(system), size, per_node)
    hit = _GROUPS.get(key)
    if hit is None or hit[0] is not system:
        if len(_GROUPS) > 10_000:
            _GROUPS.clear()
        c = system.cluster
        hit = _GROUPS[key] = (system, replace(system, cluster=Cluster(size, per_node, c.intra_node, c.inter_node_gbps)))
    return hit[1]


def group(system: System, L: Layout, dim: str) -> tuple[int, System]:
    size = {"tp": L.tp, "sp": L.sp, "dp": L.shard, "ep": L.ep, "pp": 2}[dim]
    stride = STRIDE[dim](L) if dim != "dp" else L.tp
    return size, group_system(system, size, stride)


# ---- per-layer communication (one micro-batch, one GPU) ----------------------------------------
def tp_ops(L: Layout, act_bytes: float) -> list[Collective]:
    """One direction (forward or backward) of one layer: 2 all-reduces, or 2 AG + 2 RS with SP."""
    if L.tp == 1:
        return []
    if L.sequence_parallel:
        return [Collective("all_gather", act_bytes, L.tp, name="tp_ag"),
                Collective("reduce_scatter", act_bytes, L.tp, name="tp_rs")] * 2
    return [Collective("all_reduce", act_bytes, L.tp, name="tp_ar")] * 2


def ulysses_ops(L: Layout, b: int, s: int, q_w: int, kv_w: int, B: float) -> list[Collective]:
    """Four all-to-alls (Q, K, V in; output back) per layer per direction. ``q_w``/``kv_w``: the
    query and key/value widths (heads x head_dim) on one TP rank."""
    if L.sp == 1 or L.sp_mode != "ulysses":
        return []
    q, kv = b * (s / L.sp) * q_w * B, b * (s / L.sp) * kv_w * B
    return [Collective("all_to_all", q, L.sp, name="ulysses_q"),
            Collective("all_to_all", kv, L.sp, name="ulysses_k"),
            Collective("all_to_all", kv, L.sp, name="ulysses_v"),
            Collective("all_to_all", q, L.sp, name="ulysses_out")]


def ring_ops(L: Layout, b: int, s: int, kv_w: int, B: float) -> list[Collective]:
    """P-1 passes of one K,V block (2*b*(s/P)*kv_w*B) per layer per direction."""
    if L.sp == 1 or L.sp_mode != "ring":
        return []
    return [Collective("send_recv", 2 * b * (s / L.sp) * kv_w * B, 2, name="ring_kv")] * (L.sp - 1)


def ep_ops(L: Layout, tokens: float, top_k: int, h: int, B: float) -> list[Collective]:
    """Dispatch and combine all-to-alls of the routed tokens (one direction)."""
    if L.ep == 1:
        return []
    buf = tokens * top_k * h * B
    return [Collective("all_to_all", buf, L.ep, name="ep_dispatch"),
            Collective("all_to_all", buf, L.ep, name="ep_combine")]


def p2p_op(L: Layout, act_bytes: float) -> Collective | None:
    if L.pp == 1:
        return None
    split = L.tp if (L.tp > 1) else 1          # Megatron scatter-gather: each TP rank sends 1/t
    return Collective("send_recv", act_bytes / split, 2, name="pp_p2p")


# ---- data-parallel gradient and parameter traffic ----------------------------------------------
def dp_grad_op(L: Layout, grad_bytes: float) -> Collective | None:
    """Gradient reduction of ``grad_bytes`` (one bucket) over the data-parallel group."""
    if L.shard == 1:
        return None
    op = "all_reduce" if L.zero == 0 else "reduce_scatter"
    return Collective(op, grad_bytes, L.shard, name=f"dp_{op}")


def dp_param_gather_op(L: Layout, param_bytes: float) -> Collective | None:
    """All-gather of updated (ZeRO-1/2) or about-to-be-used (ZeRO-3) parameters."""
    if L.shard == 1 or L.zero == 0:
        return None
    return Collective("all_gather", param_bytes, L.shard, name="dp_all_gather")
