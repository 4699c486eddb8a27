"""Calibrated profiles: efficiency parameters fitted by ``gpusim calibrate``, merged over a spec.

A device profile (``calibrated/<device>.yaml``) holds fitted ``efficiency`` values and what they
were fitted on (families, row ids, size ranges); a host profile (``calibrated/hosts/``) holds the
host-side efficiencies, and for ``host: local`` this machine's measured figures.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sim.errors import InputError
from sim.hardware import ZOO, _validate, load_host, read_yaml
from sim.hardware.spec import DeviceSpec, HostSpec

CALIBRATED = ZOO / "calibrated"


def calibration_file(name: str) -> Path:
    return CALIBRATED / f"{name}.yaml"


def _checked_efficiency(data: dict, path: Path, required: bool = True) -> dict:
    """The profile's ``efficiency`` mapping; every name must be a declared parameter and every
    value inside its declared bounds (a misspelt or out-of-range entry is an error, never ignored)."""
    from sim.cost.efficiency import declare_all
    fitted = data.get("efficiency", None if required else {})
    if not isinstance(fitted, dict):
        raise InputError(str(path), "efficiency", "expected a mapping of parameter name -> value")
    PARAMS = declare_all()
    for k, v in fitted.items():
        if k not in PARAMS:
            raise InputError(str(path), f"efficiency.{k}", "not a declared efficiency parameter (sim.cost.efficiency)")
        p = PARAMS[k]
        if not isinstance(v, (int, float)) or not (p.lo <= v <= p.hi):
            raise InputError(str(path), f"efficiency.{k}", f"got {v!r}; expected a number in [{p.lo:g}, {p.hi:g}]")
    return fitted


def with_calibration(device: DeviceSpec, profile: Path | None = None) -> DeviceSpec:
    """The device with the efficiency parameters of its calibrated profile (written by
    ``gpusim calibrate``) merged over the spec file's; unchanged when there is no profile.
    Cached by profile path and modification time: sweeps call this for every scenario."""
    path = Path(profile) if profile else calibration_file(device.name)
    if not path.exists():
        return device
    return _calibrated(device.model_dump_json(), str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=256)
def _calibrated(device_json: str, path_s: str, mtime_ns: int) -> DeviceSpec:
    path = Path(path_s)
    device = DeviceSpec.model_validate_json(device_json)
    fitted = _checked_efficiency(read_yaml(path), path)
    sources = dict(device.sources)
    sources.update({f"efficiency.{k}": f"calibrated: {path.name}" for k in fitted})
    d = device.model_dump()
    d.update(efficiency={**device.efficiency, **fitted}, sources=sources, calibration=str(path.name))
    return _validate(DeviceSpec, d, str(path))

# ---- what a calibrated profile was fitted on (written by analysis/calibrate.py) ----------------

_OP_FAMILY = {"Gemm": "gemm", "Attention": "attention", "Elementwise": "memory", "Collective": "collective",
              "Transfer": "transfer", "elementwise": "memory"}


@lru_cache(maxsize=64)
def _fitted_ranges(path: str, mtime_ns: int) -> dict:
    data = read_yaml(Path(path))
    fams = data.get("families") or {}
    if not isinstance(fams, dict):
        raise InputError(path, "families", "expected a mapping of family -> what it was fitted on")
    return {f: (v or {}).get("range") or {} for f, v in fams.items()}


def calibration_warnings(device: DeviceSpec | str, op_kind: str, sizes: dict) -> list[str]:
    """Why a prediction from calibrated parameters may not be trusted: ``op_kind``'s family (a
    family name such as 'gemm', 'decode_attention', or an op type name such as 'Gemm') was not
    fitted on this device, or a size in ``sizes`` (e.g. {'m':..,'n':..,'k':..}, {'seq_kv':..},
    {'bytes':..}) lies outside the range of the rows it was fitted on (an extrapolation).
    Empty for a device running on spec parameters or without a profile."""
    if isinstance(device, DeviceSpec):
        if not device.calibration:
            return []
        name, path = device.name, CALIBRATED / device.calibration
    else:
        name, path = str(device), calibration_file(str(device))
    if not path.exists():
        return []
    fams = _fitted_ranges(str(path), path.stat().st_mtime_ns)
    fam = _OP_FAMILY.get(op_kind, op_kind)
    if fam == "attention" and sizes.get("seq_q") == 1 and "decode_attention" in fams:
        fam = "decode_attention"
    if fam not in fams:
        fitted = ", ".join(sorted(fams)) or "nothing"
        return [f"{name}: no {fam} measurements in its calibrated profile (fitted on {fitted}); "
                f"{fam} parameters not fitted to {fam} rows"]
    out = []
    for var, value in sizes.items():
        rng = fams[fam].get(var)
        if not rng or not isinstance(value, (int, float)):
            continue
        lo, hi = float(rng[0]), float(rng[1])
        if value < lo or value > hi:
            out.append(f"{name}: {fam} {var}={value:g} is outside the calibrated range [{lo:g}, {hi:g}]; "
                       f"extrapolated")
    return out


# ---- host profiles: this machine's measured host, and fitted host efficiencies ------------------

HOST_PROFILES = CALIBRATED / "hosts"


def this_machine() -> dict:
    """What identifies the machine running this (the fields of the bench fingerprint that do not
    change with library versions): CPU model, logical CPUs, host memory bytes."""
    import os
    import platform
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        mem = 0
    return {"cpu_model": model or platform.processor() or platform.machine(), "cpu_cores": os.cpu_count() or 0,
            "host_memory_bytes": int(mem)}


def local_host_profile(folder: Path = HOST_PROFILES) -> Path | None:
    """The newest host profile in ``folder`` whose machine is this one, or None."""
    me, best = this_machine(), None
    for p in sorted(Path(folder).glob("*.yaml")):
        data = read_yaml(p)
        m = data.get("machine") or {}
        if not isinstance(m, dict) or m.get("cpu_model") != me["cpu_model"] or m.get("cpu_cores") != me["cpu_cores"]:
            continue
        mem = float(m.get("host_memory_bytes") or 0)
        if me["host_memory_bytes"] and abs(mem / me["host_memory_bytes"] - 1) > 0.02:
            continue
        key = (str(data.get("date", "")), p.name)
        if best is None or key > best[0]:
            best = (key, p)
    return best[1] if best else None


def with_host_calibration(host: HostSpec | str, profile: Path | None = None, efficiency: bool = True) -> HostSpec:
    """A host with its calibrated profile applied.

    ``host='local'`` is the machine this runs on: its profile (written by ``gpusim calibrate`` from
    the host probes of ``gpusim bench``) names a zoo ``base`` host and replaces the figures it
    measured or read from the OS (CPU, DRAM, NVMe); ``efficiency`` (unless False, i.e. spec
    parameters) merges the fitted host efficiencies. A zoo host (or name) gets the fitted
    efficiencies of ``calibrated/hosts/<name>.yaml`` when that file exists, else is unchanged."""
    if isinstance(host, str) and host == "local":
        path = Path(profile) if profile else local_host_profile()
        if path is None:
            me = this_machine()
            raise InputError("scenario", "host", f"'local': no host profile for this machine ({me['cpu_model']}, "
                             f"{me['cpu_cores']} CPUs) in {HOST_PROFILES}; run `gpusim bench` then `gpusim calibrate`")
        data = read_yaml(path)
        if not isinstance(data.get("base"), str):
            raise InputError(str(path), "base", "expected the zoo host this machine's profile starts from")
        base = load_host(data["base"])
        figures = data.get("host") or {}
        if not isinstance(figures, dict):
            raise InputError(str(path), "host", "expected a mapping of host fields (cpu, dram, nvme ...)")
        d = base.model_dump()
        d.update(figures)
        d["name"] = f"local:{data.get('fingerprint', path.stem)}"
        d["sources"] = {**base.sources, **(data.get("sources") or {})}
        d["notes"] = f"this machine, from {path.name} (base {base.name})"
        base = _validate(HostSpec, d, str(path))
    else:
        base = load_host(host)
        path = Path(profile) if profile else HOST_PROFILES / f"{base.name}.yaml"
        if not path.exists():
            return base
        data = read_yaml(path)
    if not efficiency:
        return base
    fitted = _checked_efficiency(data, path, required=False)
    d = base.model_dump()
    d.update(efficiency={**base.efficiency, **fitted}, calibration=path.name,
             sources={**base.sources, **{f"efficiency.{k}": f"calibrated: {path.name}" for k in fitted}})
    return _validate(HostSpec, d, str(path))
