"""Technique families: each module turns (workload, system, model) into ops and a Prediction,
and registers its workload kinds with ``sim.scenario.workload_kind`` on import."""
from sim.techniques import inference, kernels, training  # noqa: F401
