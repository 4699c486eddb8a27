"""Weight-only low-bit GEMM: C[M,N] = A[M,K] (fp16/bf16) @ dequant(W)[K,N], dequantised in
the kernel (int4 with per-group scales, or FP6 e3m2 with per-column scales; formats in
``kernels.lowbit``).

Measures the gpusim ``gemm`` workload with ``w_dtype`` (int4 or fp6): for skinny m (decode,
m = 1..16) the weight bytes read from HBM bound the time, so 4- and 6-bit weights approach
4x and 2.7x of fp16; for large m the SIMT dequantisation competes with the Tensor Cores.
This is a plain Triton kernel: FP6-LLM's and Marlin's layout tricks (bit-level pre-packing
into MMA fragment order, split-K for tiny m) are not reproduced, so it measures what a
straightforward in-kernel dequant achieves.
"""
from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from kernels import lowbit
from kernels.common import device, interpreting, mma, upcast_dot
from kernels.timing import Case

INT4, FP6 = 0, 1
SCENARIO = {"kind": "gemm", "m": 16, "n": 8192, "k": 8192, "dtype": "fp16", "w_dtype": "int4", "group_size": 128}


def scenario(m: int, n: int, k: int, w_dtype: str = "int4", group_size: int = 128, dtype: str = "fp16") -> dict:
    """fp6 has one scale per output column, i.e. group_size = k."""
    return {"kind": "gemm", "m": m, "n": n, "k": k, "dtype": dtype, "w_dtype": w_dtype,
            "group_size": group_size if w_dtype == "int4" else k}


def _configs() -> list[triton.Config]:
    if interpreting():
        return [triton.Config({"BLOCK_M": 16, "BLOCK_N": 32, "BLOCK_K": 32})]
    out = []
    for bm, bn, bk, stages, warps in [(16, 64, 128, 4, 4), (16, 128, 128, 3, 4), (32, 64, 128, 4, 4),
                                      (64, 128, 64, 4, 4), (128, 128, 64, 3, 8), (128, 256, 64, 3, 8)]:
        out.append(triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}, num_stages=stages, num_warps=warps))
    return out


@triton.jit
def _int4_tile(w_ptr, s_ptr, kk, rn, N, K, GROUP: tl.constexpr):
    """fp32 weights of rows kk, columns rn: code k sits at bits 4*(k%8) of int32 word k//8."""
    mask = (kk[:, None] < K) & (rn[None, :] < N)
    word = tl.load(w_ptr + (kk // 8)[:, None] * N + rn[None, :], mask=mask, other=0)
    q = (word >> ((kk % 8) * 4)[:, None]) & 0xF
    s = tl.load(s_ptr + (kk // GROUP)[:, None] * N + rn[None, :], mask=mask, other=0.0)
    return (q - 8).to(tl.float32) * s.to(tl.float32)


@triton.jit
def _fp6_tile(w_ptr, s_ptr, kk, rn, N, K):
    """fp32 weights of rows kk, columns rn from 3-byte groups of four 6-bit codes.

    The e3m2 code's 5 exponent+mantissa bits are placed in the low exponent and top mantissa
    bits of an fp16 (bits 12..8); that fp16 equals the e3m2 magnitude times 2^-12 (bias 15
    versus 3), normals and subnormals alike, so one multiply by 4096 decodes it.
    """
    mask = (kk[:, None] < K) & (rn[None, :] < N)
    off = (kk % 4) * 6
    row = (kk // 4) * 3 + off // 8
    sh = off % 8
    lo = tl.load(w_ptr + row[:, None] * N + rn[None, :], mask=mask, other=0).to(tl.int32)
    hi = tl.load(w_ptr + (row + 1)[:, None] * N + rn[None, :], mask=mask & (sh > 2)[:, None], other=0).to(tl.int32)
    code = ((lo | (hi << 8)) >> sh[:, None]) & 0x3F
    mag = ((code & 0x1F) << 8).to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32) * 4096.0
    val = tl.where((code & 0x20) != 0, -mag, mag)
    s = tl.load(s_ptr + rn, mask=rn < N, other=0.0).to(tl.float32)
    return val * s[None, :]


@triton.autotune(configs=_configs(), key=["M", "N", "K", "FMT"])
@triton.jit
def _lowbit_gemm_kernel(a_ptr, w_ptr, s_ptr, c_ptr, M, N, K, s_am, s_ak, s_cm, s_cn,
                        FMT: tl.constexpr, GROUP: tl.constexpr, UPCAST: tl.constexpr,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    pid_n = tl.program_id(0)       # n fastest: programs sharing an A row-block run together
    pid_m = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + rk
        a = tl.load(a_ptr + rm[:, None] * s_am + kk[None, :] * s_ak,
                    mask=(rm[:, None] < M) & (kk[None, :] < K), other=0.0)
        if FMT == 0:
            w = _int4_tile(w_ptr, s_ptr, kk, rn, N, K, GROUP)
        else:
            w = _fp6_tile(w_ptr, s_ptr, kk, rn, N, K)
        acc = mma(a, w.to(a.dtype), acc, UPCAST)
    tl.store(c_ptr + rm[:, None] * s_cm + rn[None, :] * s_cn, acc.to(c_ptr.dtype.element_ty),
             mask=(rm[:, None] < M) & (rn[None, :] < N))


def _run(a, w, s, fmt, group, n, out):
    M, K = a.shape
    if out is None:
        out = torch.empty((M, n), dtype=a.dtype, device=a.device)
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), triton.cdiv(M, meta["BLOCK_M"]))  # noqa: E731
    _lowbit_gemm_kernel[grid](a, w, s, out, M, n, K, a.stride(0), a.stride(1), out.stride(0), out.stride(1),
                              FMT=fmt, GROUP=group, UPCAST=upcast_dot(a.dtype))
    return out


def matmul_int4(a: torch.Tensor, packed: torch.Tensor, scales: torch.Tensor, group_size: int = 128,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """A[M,K] @ W where W is int4 packed [K//8, N] int32 with fp16 scales [K//group_size, N]."""
    K = a.shape[1]
    if packed.shape[0] * 8 != K or scales.shape[0] * group_size != K or not packed.is_contiguous():
        raise ValueError("matmul_int4: packed must be contiguous [K//8, N], scales [K//group_size, N]")
    return _run(a, packed, scales, INT4, group_size, packed.shape[1], out)


def matmul_fp6(a: torch.Tensor, packed: torch.Tensor, scales: torch.Tensor,
               out: torch.Tensor | None = None) -> torch.Tensor:
    """A[M,K] @ W where W is FP6 e3m2 packed [3K/4, N] uint8 with fp16 per-column scales [N]."""
    K = a.shape[1]
    if packed.shape[0] * 4 != K * 3 or scales.shape[0] != packed.shape[1] or not packed.is_contiguous():
        raise ValueError("matmul_fp6: packed must be contiguous [3K/4, N] uint8, scales [N]")
    return _run(a, packed, scales, FP6, 1, packed.shape[1], out)


def reference(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """fp32 product with the dequantised weights rounded to the activation dtype, as the kernel feeds them."""
    return (a.float() @ w.to(a.dtype).float()).to(a.dtype)


def make_inputs(m: int, n: int, k: int, w_dtype: str, group_size: int = 128, dtype: str = "fp16",
                dev: str | None = None, seed: int | None = None):
    """(a, packed, scales, dequantised fp32 weights) with normal random A and W."""
    rng = np.random.default_rng(seed)
    dt = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    dev = dev or device()
    w = rng.standard_normal((k, n), dtype=np.float32)
    if w_dtype == "int4":
        packed, scales = lowbit.quantize_int4(w, group_size)
        wq = lowbit.dequantize_int4(packed, scales, group_size)
    else:
        packed, scales = lowbit.quantize_fp6(w)
        wq = lowbit.dequantize_fp6(packed, scales)
    a = torch.from_numpy(rng.standard_normal((m, k), dtype=np.float32)).to(dt)
    to = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(dev)  # noqa: E731
    return a.to(dev), to(packed), to(scales), to(wq)


def random_packed(m: int, n: int, k: int, w_dtype: str, group_size: int = 128, dev: str | None = None):
    """Timing inputs made on the device: random codes in every bit (timing does not depend on the
    values, and quantising a large matrix on the host would take longer than the run)."""
    dev = dev or device()
    a = torch.randn(m, k, dtype=torch.float16, device=dev)
    if w_dtype == "int4":
        packed = torch.randint(-2**31, 2**31 - 1, (k // 8, n), dtype=torch.int32, device=dev)
        scales = (0.01 * torch.randn(k // group_size, n, device=dev)).half()
    else:
        packed = torch.randint(0, 256, (3 * k // 4, n), dtype=torch.uint8, device=dev)
        scales = (0.01 * torch.randn(n, device=dev)).half()
    return a, packed, scales


SHAPES_QUICK = [(1, 8192, 8192), (16, 8192, 8192), (4096, 8192, 8192)]
SHAPES = [(m, n, k) for m in (1, 4, 16, 64, 256, 1024, 4096) for (n, k) in ((8192, 8192), (28672, 8192))]


def cases(quick: bool = False) -> list[Case]:
    out = []
    for wd in ("int4", "fp6"):
        for m, n, k in (SHAPES_QUICK if quick else SHAPES):
            mk = lambda m=m, n=n, k=k, wd=wd: random_packed(m, n, k, wd)  # noqa: E731
            fn = (lambda a, p, s: matmul_int4(a, p, s, 128)) if wd == "int4" else matmul_fp6
            wbytes = n * k * (0.5 if wd == "int4" else 0.75)
            out.append(Case(f"triton.lowbit_gemm.{wd}", "lowbit_gemm", scenario(m, n, k, wd), mk, fn,
                            flops=2.0 * m * n * k, bytes=2.0 * (m * k + m * n) + wbytes,
                            metrics=("time_s", "tflops"), extra={"weight_bytes": wbytes}))
    return out
