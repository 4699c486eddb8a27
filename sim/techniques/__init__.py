"""Technique families: each module turns (workload, system, model) into ops and a Prediction,
and registers its workload kinds with ``sim.scenario.workload_kind`` on import."""
import importlib

for _m in ("kernels", "training", "inference"):
    try:
        importlib.import_module(f"sim.techniques.{_m}")
    except ModuleNotFoundError as e:   # a family not written yet
        if e.name != f"sim.techniques.{_m}":
            raise
