"""The scenario schema and ``predict()``: the front door of ``gpusim predict``.

A scenario names hardware, optionally host/cluster/model, and a workload with a ``kind``.
Each kind registers its workload schema and its predictor with ``workload_kind``; this module
validates the top level, resolves names through the zoos and dispatches. Unknown fields are
errors (a typo must not fall back to a default). See docs/scenarios.md for every field.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.errors import InputError, pydantic_to_input_error
from sim.hardware import (calibration_warnings, load_device, load_host, read_yaml, with_calibration,
                          with_host_calibration)
from sim.hardware.system import Cluster, System


class ClusterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gpus: int = Field(default=1, gt=0)
    gpus_per_node: int | None = Field(default=None, gt=0, description="default: min(gpus, host GPUs)")
    intra_node: Literal["nvlink", "pcie"] = "nvlink"
    inter_node_gbps: float | None = Field(default=None, gt=0,
                                          description="per GPU line rate, Gbit/s; default: the host's network_gbps_per_gpu")


@dataclass
class Prediction:
    """What every predictor returns; ``to_json()`` is the contract of docs/scenarios.md."""
    fits: bool
    time_s: float
    bound: str
    memory_bytes: dict[str, float]
    metrics: dict[str, Any]
    breakdown: dict[str, Any]
    provenance: str = "spec"
    warnings: list[str] = field(default_factory=list)
    timeline: list[dict] | None = None     # DES events (Chrome trace) when the engine made one

    def to_json(self) -> dict:
        d = asdict(self)
        if d["timeline"] is None:
            d.pop("timeline")
        return d


@dataclass(frozen=True)
class Kind:
    schema: type[BaseModel]
    predict: Callable[[Any, System, Any], Prediction]   # (workload, system, model or None) -> Prediction
    needs_model: bool = False


KINDS: dict[str, Kind] = {}


def workload_kind(name: str, schema: type[BaseModel], needs_model: bool = False):
    """Register the predictor of one workload kind (decorator)."""
    def deco(fn):
        KINDS[name] = Kind(schema, fn, needs_model)
        return fn
    return deco


def _register_kinds():
    import sim.techniques  # noqa: F401  (each technique module registers its kinds)


TOP_FIELDS = {"hardware", "host", "cluster", "model", "workload", "whatif", "parameters", "name", "notes"}


def load_scenario(src: str | Path | dict) -> dict:
    """Read a scenario from a YAML/JSON path, '-' (stdin) or a mapping."""
    if isinstance(src, dict):
        return src
    if str(src) == "-":
        import sys
        import yaml
        try:
            data = yaml.safe_load(sys.stdin.read())
        except yaml.YAMLError as e:
            raise InputError("<stdin>", "<file>", f"not valid YAML/JSON ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise InputError("<stdin>", "<root>", "expected a mapping")
        return data
    return read_yaml(Path(src))


def resolve(scenario: dict, where: str = "scenario"):
    """Validate a scenario mapping; return (workload, system, model, kind)."""
    _register_kinds()
    unknown = set(scenario) - TOP_FIELDS
    if unknown:
        raise InputError(where, sorted(unknown)[0], f"unknown field; expected one of {sorted(TOP_FIELDS)}")
    if "hardware" not in scenario:
        raise InputError(where, "hardware", "missing; expected a device zoo name, spec path or mapping")
    if "workload" not in scenario or not isinstance(scenario["workload"], dict):
        raise InputError(where, "workload", "missing; expected a mapping with a 'kind'")
    device = load_device(scenario["hardware"])
    parameters = scenario.get("parameters", "calibrated")
    if parameters not in ("spec", "calibrated"):
        raise InputError(where, "parameters", f"got {parameters!r}; expected 'spec' or 'calibrated'")
    if parameters == "calibrated":
        device = with_calibration(device)
    host_ref = scenario.get("host") or device.default_host
    if host_ref == "local" or parameters == "calibrated":
        # 'local' = this machine, from its host-probe profile; zoo hosts get fitted host efficiencies
        host = with_host_calibration(host_ref, efficiency=parameters == "calibrated")
    else:
        host = load_host(host_ref)
    if scenario.get("whatif"):
        device, host = _apply_whatif(scenario["whatif"], device, host, where)
    try:
        cin = ClusterIn.model_validate(scenario.get("cluster") or {})
    except ValidationError as e:
        err = pydantic_to_input_error(where, e)
        raise InputError(where, f"cluster.{err.field}", err.problem) from None
    gpn = cin.gpus_per_node or min(cin.gpus, host.gpus)
    network = (cin.inter_node_gbps or host.network_gbps_per_gpu) * float((scenario.get("whatif") or {}).get("network", 1.0))
    system = System(device, host, Cluster(cin.gpus, gpn, cin.intra_node, network))
    wl = dict(scenario["workload"])
    kind = wl.pop("kind", None)
    if kind not in KINDS:
        raise InputError(where, "workload.kind", f"got {kind!r}; expected one of {sorted(KINDS)}")
    try:
        workload = KINDS[kind].schema.model_validate(wl)
    except ValidationError as e:
        err = pydantic_to_input_error(where, e)
        raise InputError(where, f"workload.{err.field}", err.problem) from None
    model = None
    if KINDS[kind].needs_model or "model" in scenario:
        from sim.models import load_model
        if "model" not in scenario:
            raise InputError(where, "model", f"missing; workload kind '{kind}' needs a model (zoo name or dims)")
        model = load_model(scenario["model"])
    return workload, system, model, kind


def _apply_whatif(spec, device, host, where):
    from sim.whatif import WhatIf, scale_device, scale_host
    try:
        w = WhatIf.model_validate(spec)
        if w.is_identity():
            return device, host
        return scale_device(device, w), scale_host(host, w)
    except ValidationError as e:
        err = pydantic_to_input_error(where, e)
        raise InputError(where, f"whatif.{err.field}", err.problem) from None
    except ValueError as e:
        raise InputError(where, "whatif.pcie", str(e)) from None


def predict(scenario: str | Path | dict) -> Prediction:
    """Predict one scenario (a path, '-' or a mapping)."""
    where = str(scenario) if not isinstance(scenario, dict) else "scenario"
    data = load_scenario(scenario)
    workload, system, model, kind = resolve(data, where)
    pred = KINDS[kind].predict(workload, system, model)
    if system.device.calibration and kind in SINGLE_OP_KINDS:
        sizes = {k: v for k, v in workload.model_dump().items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        pred.warnings.extend(calibration_warnings(system.device, kind, sizes))
    return pred


# kinds that are one op, whose sizes can be checked against the calibrated range
SINGLE_OP_KINDS = {"gemm", "attention", "memory", "collective", "transfer"}


def to_json_text(pred: Prediction) -> str:
    return json.dumps(pred.to_json(), indent=2, default=float)
