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


# Per-lane, per-direction PCIe data rate after 128b/130b encoding (PCI-SIG base specs):
# Gen3 8 GT/s, Gen4 16 GT/s, Gen5 32 GT/s, Gen6 64 GT/s (PAM4, FLIT ~ same payload share).
_PCIE_GTPS = {3: 8.0, 4: 16.0, 5: 32.0, 6: 64.0}


def pcie_Bps(generation: int, lanes: int) -> float:
    """Raw per-direction PCIe bandwidth in bytes/s (before protocol overhead)."""
    return _PCIE_GTPS[generation] * 1e9 * (128 / 130) / 8 * lanes
