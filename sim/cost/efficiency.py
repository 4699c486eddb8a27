"""Named efficiency parameters: every constant the cost model uses that is not a spec figure.

Each cost module declares its parameters with ``param(...)``: a name, a default, the physical
meaning, and the source of the default. A device file's ``efficiency:`` block, or a calibrated
profile written by ``gpusim calibrate``, overrides the default for that device. Nothing else in
the cost model may hold an unexplained number.
"""
from __future__ import annotations

from dataclasses import dataclass

from sim.hardware.spec import DeviceSpec, HostSpec


@dataclass(frozen=True)
class Param:
    name: str
    default: float
    meaning: str
    source: str
    lo: float = 0.0          # physical bounds, used by calibration
    hi: float = float("inf")


PARAMS: dict[str, Param] = {}


def param(name: str, default: float, meaning: str, source: str, lo: float = 0.0, hi: float = float("inf")) -> Param:
    """Declare a parameter (once, at import of the cost module that uses it)."""
    if name in PARAMS and PARAMS[name].default != default:
        raise ValueError(f"efficiency parameter '{name}' declared twice with different defaults")
    PARAMS[name] = Param(name, default, meaning, source, lo, hi)
    return PARAMS[name]


def declare_all() -> dict[str, Param]:
    """Every declared parameter: imports the modules that declare them (the cost modules, and the
    technique modules for host-side ones such as host_dispatch_s), so a lookup by name never depends
    on what happened to be imported before."""
    import sim.techniques  # noqa: F401  (technique modules declare the host-side parameters)
    from sim.cost import _load_modules
    _load_modules()
    return PARAMS


def eff(spec: DeviceSpec | HostSpec, name: str) -> float:
    """The value of parameter ``name`` for a device or host spec: its override if any, else the default."""
    if name not in PARAMS:
        raise KeyError(f"efficiency parameter '{name}' is not declared")
    return spec.efficiency.get(name, PARAMS[name].default)


def provenance(device: DeviceSpec) -> str:
    """'calibrated' when any parameter was fitted for this device, else 'spec'."""
    return "calibrated" if device.calibration else "spec"
