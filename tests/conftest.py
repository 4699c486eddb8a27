"""Test-wide setup: Triton kernels run in the interpreter on CPU (no GPU in CI)."""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")
