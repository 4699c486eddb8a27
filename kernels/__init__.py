"""Triton kernels and host probes that measure what ``sim/`` predicts.

Each kernel module holds a Triton kernel, a torch/numpy reference beside it, the gpusim
workload it measures (``SCENARIO`` and ``scenario(...)``) and ``cases(quick)`` for the bench
(``analysis.bench`` lists the modules it runs). Nothing here needs CUDA at import: on CPU the
kernels run in the Triton interpreter (``TRITON_INTERPRET=1``), which is how the tests check them.
"""
