"""Tiled dense GEMM C = A @ B in fp16/bf16 (fp8 e4m3 where the device has it), fp32 accumulate.

Measures the gpusim ``gemm`` workload: Tensor-Core throughput per dtype against the spec peak,
including wave quantisation and tile-edge effects at awkward shapes. Program ids are grouped
(``GROUP_M`` rows of tiles share B columns) so neighbouring programs reuse tiles in L2.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.common import FP8, device, dtype_name, fp8_supported, interpreting, mma, upcast_dot
from kernels.timing import Case

SCENARIO = {"kind": "gemm", "m": 4096, "n": 4096, "k": 4096, "dtype": "fp16"}


def scenario(m: int, n: int, k: int, dtype: str = "fp16") -> dict:
    return {"kind": "gemm", "m": m, "n": n, "k": k, "dtype": dtype}


def _configs() -> list[triton.Config]:
    """Autotune space (all in one place). The interpreter gets one small config."""
    if interpreting():
        return [triton.Config({"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32, "GROUP_M": 4})]
    out = []
    for bm, bn, bk, stages, warps in [(128, 256, 64, 3, 8), (256, 128, 64, 3, 8), (128, 128, 64, 4, 4),
                                      (128, 128, 128, 3, 8), (128, 64, 64, 4, 4), (64, 128, 64, 4, 4),
                                      (64, 64, 64, 5, 4), (128, 256, 128, 3, 8)]:
        out.append(triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8},
                                 num_stages=stages, num_warps=warps))
    return out


@triton.autotune(configs=_configs(), key=["M", "N", "K", "IN_DTYPE"])
@triton.jit
def _gemm_kernel(a_ptr, b_ptr, c_ptr, M, N, K,
                 s_am, s_ak, s_bk, s_bn, s_cm, s_cn,
                 IN_DTYPE: tl.constexpr, UPCAST: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    pid = tl.program_id(0)
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n = tl.cdiv(N, BLOCK_N)
    per_group = GROUP_M * tiles_n
    first_m = (pid // per_group) * GROUP_M
    rows = min(tiles_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % rows
    pid_n = (pid % per_group) // rows

    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + rk
        a = tl.load(a_ptr + rm[:, None] * s_am + kk[None, :] * s_ak,
                    mask=(rm[:, None] < M) & (kk[None, :] < K), other=0.0)
        b = tl.load(b_ptr + kk[:, None] * s_bk + rn[None, :] * s_bn,
                    mask=(kk[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc = mma(a, b, acc, UPCAST)
    tl.store(c_ptr + rm[:, None] * s_cm + rn[None, :] * s_cn, acc.to(c_ptr.dtype.element_ty),
             mask=(rm[:, None] < M) & (rn[None, :] < N))


def out_dtype_for(dt: torch.dtype) -> torch.dtype:
    """fp8 GEMMs write fp16; others write their input dtype."""
    return torch.float16 if dt == FP8 else dt


def matmul(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """C[M,N] = A[M,K] @ B[K,N] with the Triton kernel (fp32 accumulation)."""
    if a.dtype != b.dtype or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: shapes/dtypes differ: {tuple(a.shape)} {a.dtype} @ {tuple(b.shape)} {b.dtype}")
    if a.dtype == FP8 and not fp8_supported():
        raise RuntimeError("fp8 GEMM needs float8_e4m3fn support (sm_89+ or the interpreter)")
    M, K = a.shape
    N = b.shape[1]
    if out is None:
        out = torch.empty((M, N), dtype=out_dtype_for(a.dtype), device=a.device)
    grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"]),)  # noqa: E731
    _gemm_kernel[grid](a, b, out, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                       out.stride(0), out.stride(1), IN_DTYPE=dtype_name(a.dtype), UPCAST=upcast_dot(a.dtype))
    return out


def reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """fp32 product of the same (already rounded) inputs, rounded to the output dtype."""
    return (a.float() @ b.float()).to(out_dtype_for(a.dtype))


def make_inputs(m: int, n: int, k: int, dtype: str, dev: str | None = None, seed: int | None = None):
    """Random normal operands (a seed makes them reproducible, generated on the CPU)."""
    dev = dev or device()
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    at = "cpu" if g is not None else dev
    store = torch.float16 if dtype == "fp8" else TORCHES[dtype]
    a = torch.randn(m, k, generator=g, device=at, dtype=store).to(dev)
    b = torch.randn(k, n, generator=g, device=at, dtype=store).to(dev)
    if dtype == "fp8":
        a, b = a.to(FP8), b.to(FP8)
    return a, b


TORCHES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}

SHAPES_QUICK = [(4096, 4096, 4096)]
SHAPES = [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096), (8192, 8192, 8192),
          (16, 8192, 8192), (128, 8192, 8192), (1024, 8192, 8192), (4096, 28672, 8192), (4096, 8192, 28672),
          (3000, 3000, 3000)]


def cases(quick: bool = False) -> list[Case]:
    dtypes = ["fp16", "bf16"] + (["fp8"] if fp8_supported() else [])
    out = []
    for dt in dtypes:
        for m, n, k in (SHAPES_QUICK if quick else SHAPES):
            out.append(Case("triton.gemm", "gemm", scenario(m, n, k, dt),
                            lambda m=m, n=n, k=k, dt=dt: make_inputs(m, n, k, dt), matmul,
                            flops=2.0 * m * n * k, metrics=("time_s", "tflops")))
    return out
