"""STREAM-style bandwidth probes in Triton: read (sum), write (fill), copy, scale, triad.

Measures the gpusim ``memory`` workload at level hbm: one pass over fp32 arrays much larger
than L2 (the bench also rotates input sets). As in STREAM, the scenario's ``bytes`` is the size
of one array and GB/s counts the arrays read plus written: read and write move 1 array, copy
and scale 2, triad 3 (write-allocate reads of the destination are not counted).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.common import device, interpreting
from kernels.timing import Case

OPS = ("read", "write", "copy", "scale", "triad")
ARRAYS = {"read": 1, "write": 1, "copy": 2, "scale": 2, "triad": 3}    # arrays touched once each
SCENARIO = {"kind": "memory", "op": "triad", "bytes": 4 * 2 ** 26, "level": "hbm"}
BLOCK = 256 if interpreting() else 2048
SCALAR = 3.0


def scenario(op: str, n: int, elem_bytes: int = 4) -> dict:
    return {"kind": "memory", "op": op, "bytes": n * elem_bytes, "level": "hbm"}


@triton.jit
def _stream_kernel(a_ptr, b_ptr, c_ptr, n, s, OP: tl.constexpr, BLOCK: tl.constexpr):
    """OP 0 read: a[pid] = sum(b block); 1 write: a = s; 2 copy: a = b; 3 scale: a = s*b;
    4 triad: a = b + s*c."""
    pid = tl.program_id(0)
    r = pid * BLOCK + tl.arange(0, BLOCK)
    m = r < n
    if OP == 0:
        tl.store(a_ptr + pid, tl.sum(tl.load(b_ptr + r, mask=m, other=0.0), 0))
    elif OP == 1:
        tl.store(a_ptr + r, tl.zeros((BLOCK,), tl.float32) + s, mask=m)
    elif OP == 2:
        tl.store(a_ptr + r, tl.load(b_ptr + r, mask=m), mask=m)
    elif OP == 3:
        tl.store(a_ptr + r, s * tl.load(b_ptr + r, mask=m), mask=m)
    else:
        tl.store(a_ptr + r, tl.load(b_ptr + r, mask=m) + s * tl.load(c_ptr + r, mask=m), mask=m)


def stream(op: str, a: torch.Tensor, b: torch.Tensor | None = None, c: torch.Tensor | None = None,
           s: float = SCALAR, n: int | None = None) -> torch.Tensor:
    """Run one probe. For read, ``a`` receives one partial sum per block of ``b``."""
    n = n if n is not None else (b if b is not None else a).numel()
    code = OPS.index(op)
    b = a if b is None else b
    c = a if c is None else c
    _stream_kernel[(triton.cdiv(n, BLOCK),)](a, b, c, n, s, OP=code, BLOCK=BLOCK)
    return a


def reference(op: str, a, b=None, c=None, s: float = SCALAR):
    if op == "read":
        n = b.numel()
        pad = torch.zeros(triton.cdiv(n, BLOCK) * BLOCK, dtype=b.dtype, device=b.device)
        pad[:n] = b
        return pad.reshape(-1, BLOCK).sum(1)
    return {"write": lambda: torch.full_like(a, s), "copy": lambda: b.clone(), "scale": lambda: s * b,
            "triad": lambda: b + s * c}[op]()


def make_inputs(op: str, n: int, dev=None, seed=None):
    """(a, b, c) fp32 normal random; ``a`` is the destination (partials for read)."""
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    dev = dev or device()
    at = "cpu" if g is not None else dev
    r = lambda k: torch.randn(k, generator=g, device=at).to(dev)  # noqa: E731
    a = r(triton.cdiv(n, BLOCK)) if op == "read" else r(n)
    return a, r(n), r(n)


SIZES_QUICK = [2 ** 26]
SIZES = [2 ** 24, 2 ** 26, 2 ** 28]


def cases(quick: bool = False) -> list[Case]:
    out = []
    for op in OPS:
        for n in (SIZES_QUICK if quick else SIZES):
            sc = scenario(op, n)
            out.append(Case(f"triton.stream.{op}", "memory", sc, lambda op=op, n=n: make_inputs(op, n),
                            lambda a, b, c, op=op: stream(op, a, b, c), bytes=ARRAYS[op] * 4 * n,
                            metrics=("time_s", "gbps")))
    return out
