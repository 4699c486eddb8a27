"""A system: one device type, its host, and how many of them are wired together how."""
from __future__ import annotations

from dataclasses import dataclass

from sim.hardware.spec import DeviceSpec, HostSpec


@dataclass(frozen=True)
class Cluster:
    gpus: int = 1
    gpus_per_node: int = 1
    intra_node: str = "nvlink"          # nvlink | pcie
    inter_node_gbps: float = 400.0      # per GPU line rate, Gbit/s

    @property
    def nodes(self) -> int:
        return -(-self.gpus // self.gpus_per_node)

    @property
    def inter_node_Bps(self) -> float:
        return self.inter_node_gbps * 1e9 / 8


@dataclass(frozen=True)
class System:
    device: DeviceSpec
    host: HostSpec
    cluster: Cluster = Cluster()

    def intra_node_Bps(self) -> float:
        """Per-direction bandwidth of one GPU's intra-node attachment (NVLink, else PCIe)."""
        if self.cluster.intra_node == "nvlink" and self.device.nvlink is not None:
            return self.device.nvlink_Bps
        return pcie_Bps(self.device.pcie.generation, self.device.pcie.lanes)

    def host_link(self) -> "HostLink":
        """One GPU's link to host memory; see :func:`host_link`."""
        return host_link(self)


@dataclass(frozen=True)
class HostLink:
    """The link between one GPU and host memory: what every host<->GPU transfer crosses."""
    kind: str           # 'pcie' or a HOST_LINK_KINDS kind ('nvlink-c2c')
    label: str          # 'PCIe Gen5 x16', 'NVLink-C2C'
    Bps: float          # raw per-direction bytes/s, before protocol efficiency


def host_link(system: System) -> HostLink:
    """The one place that says how a GPU reaches host memory.

    A host naming ``gpu_link`` (a Grace Hopper superchip: NVLink-C2C) attaches each GPU by that link,
    at the link file's per-direction rate. Otherwise it is the PCIe path: the lower of the device's
    and the host's generation, the fewer of their lanes (each end trains the link to what both support).
    """
    h = system.host
    if h.gpu_link is not None:
        from sim.hardware import load_link             # deferred: sim.hardware imports this package's spec
        link = load_link(h.gpu_link)
        return HostLink(link.kind, link.name, link.Bps)
    gen, lanes = pcie_path(system)
    return HostLink("pcie", f"PCIe Gen{gen} x{lanes}", pcie_Bps(gen, lanes))


def pcie_path(system: System) -> tuple[int, int]:
    """(generation, lanes) of one GPU's PCIe path to its host: each end trains the link to what
    both support, so the lower generation and the fewer lanes. Also the GPU-to-GPU path of a PCIe
    collective, which crosses the same slot."""
    d, h = system.device, system.host
    return min(d.pcie.generation, h.pcie_generation), min(d.pcie.lanes, h.pcie_lanes_per_gpu)


def host_link_Bps(system: System) -> float:
    """Raw per-direction bytes/s between one GPU and host memory (see :func:`host_link`)."""
    return host_link(system).Bps


# Per-lane, per-direction PCIe data rate after 128b/130b encoding (PCI-SIG base specs):
# Gen3 8 GT/s, Gen4 16 GT/s, Gen5 32 GT/s, Gen6 64 GT/s (PAM4, FLIT ~ same payload share).
_PCIE_GTPS = {3: 8.0, 4: 16.0, 5: 32.0, 6: 64.0}


def pcie_Bps(generation: int, lanes: int) -> float:
    """Raw per-direction PCIe bandwidth in bytes/s (before protocol overhead)."""
    return _PCIE_GTPS[generation] * 1e9 * (128 / 130) / 8 * lanes
