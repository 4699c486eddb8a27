"""Small things every kernel module shares: dtype names, device choice, and one Triton
helper that works around an interpreter bug.

Triton 3.9's interpreter multiplies bf16 operands of ``tl.dot`` as their raw uint16 bit
patterns (it stores bf16 as uint16 and calls ``np.matmul`` on them), so a bf16 ``tl.dot``
returns garbage on CPU while the compiled kernel is right. Kernels therefore call ``mma``
with ``UPCAST = upcast_dot(dtype)``: true only under the interpreter for bf16, where the
operands go to fp32 first (exact for bf16 inputs); on a GPU the bf16 Tensor-Core path runs.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

FP8 = getattr(torch, "float8_e4m3fn", None)

TORCH_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
if FP8 is not None:
    TORCH_DTYPES["fp8"] = FP8


def interpreting() -> bool:
    """True when Triton kernels run in the CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def on_gpu() -> bool:
    """True when kernels compile for a CUDA GPU (a GPU is present and we are not interpreting)."""
    return torch.cuda.is_available() and not interpreting()


def device() -> str:
    return "cuda" if on_gpu() else "cpu"


def dtype_name(dt: torch.dtype) -> str:
    for name, t in TORCH_DTYPES.items():
        if t == dt:
            return name
    raise KeyError(f"no gpusim dtype name for {dt}")


def fp8_supported() -> bool:
    """float8_e4m3fn exists in torch and the target can run it (interpreter, or sm_89+)."""
    if FP8 is None:
        return False
    if interpreting():
        return True
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9)


def upcast_dot(dt: torch.dtype) -> bool:
    """Whether ``mma`` must upcast operands (bf16 under the interpreter; see module doc)."""
    return interpreting() and dt == torch.bfloat16


@triton.jit
def mma(a, b, acc, UPCAST: tl.constexpr):
    """acc += a @ b on Tensor Cores; fp32 operands only under the interpreter for bf16."""
    if UPCAST:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc)
    return tl.dot(a, b, acc)
