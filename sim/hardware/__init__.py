"""The hardware zoo: one YAML file per device, host and link, validated on load.

``load_device('H100-SXM5-80GB')`` finds ``devices/H100-SXM5-80GB.yaml``; a path to a file or
an inline mapping works too, so a hypothetical device is one file. Errors name the file and field.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.errors import InputError, pydantic_to_input_error
from sim.hardware.spec import DeviceSpec, HostSpec, LinkSpec

ZOO = Path(__file__).parent
_KINDS = {"device": ("devices", DeviceSpec), "host": ("hosts", HostSpec), "link": ("links", LinkSpec)}


def names(kind: str) -> list[str]:
    """Names in the zoo for kind 'device', 'host' or 'link'."""
    folder, _ = _KINDS[kind]
    return sorted(p.stem for p in (ZOO / folder).glob("*.yaml"))


def read_yaml(path: Path) -> dict:
    """Read a YAML/JSON mapping, with a one-line error naming the file when it is not one."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(str(path), "<file>", "no such file") from None
    except (OSError, UnicodeDecodeError) as e:     # a directory, no permission, binary content
        raise InputError(str(path), "<file>", f"cannot read it ({getattr(e, 'strerror', None) or e})") from None
    except yaml.YAMLError as e:
        raise InputError(str(path), "<file>", f"not valid YAML/JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InputError(str(path), "<root>", f"expected a mapping, got {type(data).__name__}")
    return data


def _validate(schema, data: dict, where: str):
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        raise pydantic_to_input_error(where, e) from None


@lru_cache(maxsize=None)
def _load_named(kind: str, name: str):
    folder, schema = _KINDS[kind]
    path = ZOO / folder / f"{name}.yaml"
    if not path.exists():
        raise InputError("scenario", kind if kind != "device" else "hardware",
                         f"unknown {kind} '{name}'; expected one of {names(kind)} or a path to a spec file")
    spec = _validate(schema, read_yaml(path), str(path))
    if spec.name != name:
        raise InputError(str(path), "name", f"'{spec.name}' must equal the file name '{name}'")
    return spec


def _load(kind: str, ref: Any):
    _, schema = _KINDS[kind]
    if isinstance(ref, schema):
        return ref
    if isinstance(ref, dict):
        return _validate(schema, ref, f"inline {kind}")
    if isinstance(ref, (str, Path)):
        s = str(ref)
        if s.endswith((".yaml", ".yml", ".json")) or "/" in s:
            return _validate(schema, read_yaml(Path(s)), s)
        return _load_named(kind, s)
    raise InputError("scenario", kind, f"expected a zoo name, a spec file path or a mapping, got {type(ref).__name__}")


def load_device(ref: Any) -> DeviceSpec:
    return _load("device", ref)


def load_host(ref: Any) -> HostSpec:
    return _load("host", ref)


def load_link(ref: Any) -> LinkSpec:
    return _load("link", ref)



# calibrated profiles (written by `gpusim calibrate`) live in their own module
from sim.hardware.calibration import (  # noqa: E402,F401
    CALIBRATED, HOST_PROFILES, calibration_file, calibration_warnings, local_host_profile, this_machine,
    with_calibration, with_host_calibration)

