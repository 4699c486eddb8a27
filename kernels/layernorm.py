"""Fused LayerNorm forward: y = (x - mean) / sqrt(var + eps) * w + b, one row per program.

A bandwidth-bound op as it appears in every transformer layer: read x once, write y once,
statistics in fp32 registers. Measures the gpusim ``memory`` workload as a STREAM copy (op copy,
level hbm, ``bytes`` = the size of x): x read once and y written once; the weight and bias
(2N elements) stay in cache and are left out of the count.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.common import device
from kernels.timing import Case

SCENARIO = {"kind": "memory", "op": "copy", "bytes": 2 * 16384 * 8192, "level": "hbm"}


def scenario(m: int, n: int, elem_bytes: int = 2) -> dict:
    return {"kind": "memory", "op": "copy", "bytes": m * n * elem_bytes, "level": "hbm"}


def traffic(m: int, n: int, elem_bytes: int = 2) -> int:
    """Bytes moved as counted: x read + y written."""
    return 2 * m * n * elem_bytes


@triton.jit
def _layernorm_kernel(x_ptr, w_ptr, b_ptr, y_ptr, N, stride, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    r = tl.arange(0, BLOCK)
    m = r < N
    x = tl.load(x_ptr + row * stride + r, mask=m, other=0.0).to(tl.float32)
    mean = tl.sum(x, 0) / N
    d = tl.where(m, x - mean, 0.0)
    var = tl.sum(d * d, 0) / N
    w = tl.load(w_ptr + r, mask=m, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + r, mask=m, other=0.0).to(tl.float32)
    y = d * tl.math.rsqrt(var + eps) * w + b
    tl.store(y_ptr + row * stride + r, y.to(y_ptr.dtype.element_ty), mask=m)


def layernorm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float = 1e-5,
              out: torch.Tensor | None = None) -> torch.Tensor:
    """x [M, N] (row-contiguous), w and b [N]."""
    M, N = x.shape
    if x.stride(1) != 1:
        raise ValueError("layernorm: rows must be contiguous")
    if out is None:
        out = torch.empty_like(x)
    block = triton.next_power_of_2(N)
    warps = min(16, max(1, block // 256))
    _layernorm_kernel[(M,)](x, w, b, out, N, x.stride(0), eps, BLOCK=block, num_warps=warps)
    return out


def reference(x, w, b, eps: float = 1e-5):
    return torch.nn.functional.layer_norm(x.float(), (x.shape[1],), w.float(), b.float(), eps).to(x.dtype)


def make_inputs(m: int, n: int, dtype=torch.float16, dev=None, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    dev = dev or device()
    at = "cpu" if g is not None else dev
    r = lambda *s: torch.randn(*s, generator=g, device=at, dtype=dtype).to(dev)  # noqa: E731
    return r(m, n), r(n), r(n)


SHAPES_QUICK = [(16384, 8192)]
SHAPES = [(4096, 4096), (16384, 4096), (16384, 8192), (8192, 12288), (32768, 8192)]


def cases(quick: bool = False) -> list[Case]:
    return [Case("triton.layernorm", "memory", scenario(m, n), lambda m=m, n=n: make_inputs(m, n),
                 layernorm, bytes=traffic(m, n), metrics=("time_s", "gbps"),
                 notes="fused LayerNorm fwd, fp16; GB/s = (x read + y written) / time")
            for m, n in (SHAPES_QUICK if quick else SHAPES)]
