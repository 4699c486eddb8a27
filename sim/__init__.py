"""gpusim's model: hardware and model zoos, per-op costs, techniques, engines, scenarios.

Imports nothing from ``kernels`` or ``analysis``.
"""
