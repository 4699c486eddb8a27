"""Unstructured-sparse GEMM, Flash-LLM style ("load as sparse, compute as dense"):
C[M,N] = A[M,K] @ W[K,N] with W stored compressed per BK x BN tile.

Format (``compress``): tiles in row-major order (k-tile, n-tile); per tile its non-zero values
(fp16) and their in-tile positions r*BN + c (int16, ascending), concatenated, plus
``offsets[t]`` where tile t's non-zeros start. The kernel loads a tile's values and positions
(coalesced, compressed bytes only), rebuilds the dense tile on chip (a histogram of the
positions gives the occupancy, its running sum the rank of each non-zero, and a register
gather places the values), then runs a dense ``tl.dot``. Flash-LLM does the extraction in
shared memory with a scatter; Triton has no shared-memory scatter, so the histogram/gather
route (Triton >= 3.2) is this kernel's way to the same data movement.

Measures the gpusim ``gemm`` workload with ``sparsity`` and ``sparsity_pattern: unstructured``:
for skinny m the weight bytes fall with sparsity while the Tensor-Core work stays dense.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.common import device, interpreting, mma, upcast_dot
from kernels.timing import Case

SCENARIO = {"kind": "gemm", "m": 16, "n": 8192, "k": 8192, "dtype": "fp16", "sparsity": 0.8,
            "sparsity_pattern": "unstructured"}
TILE = (32, 32) if interpreting() else (64, 64)     # (BK, BN) of the compressed format


def scenario(m: int, n: int, k: int, sparsity: float, dtype: str = "fp16") -> dict:
    return {"kind": "gemm", "m": m, "n": n, "k": k, "dtype": dtype, "sparsity": sparsity,
            "sparsity_pattern": "unstructured"}


def compress(w: torch.Tensor, tile: tuple[int, int] = TILE) -> dict:
    """Dense W[K,N] (zeros where pruned) -> the tiled compressed format (on W's device)."""
    bk, bn = tile
    K, N = w.shape
    tk, tn = triton.cdiv(K, bk), triton.cdiv(N, bn)
    if bk * bn > 32768:
        raise ValueError("compress: tile too large for int16 positions")
    wp = torch.zeros(tk * bk, tn * bn, dtype=w.dtype, device=w.device)
    wp[:K, :N] = w
    flat = wp.reshape(tk, bk, tn, bn).permute(0, 2, 1, 3).reshape(tk * tn, bk * bn)
    nz = flat != 0
    counts = nz.sum(dim=1)
    offsets = torch.zeros(tk * tn + 1, dtype=torch.int32, device=w.device)
    offsets[1:] = torch.cumsum(counts, 0)
    max_nnz = int(counts.max().item()) if counts.numel() else 0
    return {"values": flat[nz].contiguous(), "positions": nz.nonzero()[:, 1].to(torch.int16).contiguous(),
            "offsets": offsets, "shape": (K, N), "tile": (bk, bn),
            "max_nnz": max(16, triton.next_power_of_2(max(max_nnz, 1)))}


def decompress(c: dict) -> torch.Tensor:
    """Inverse of ``compress`` (for tests)."""
    (K, N), (bk, bn) = c["shape"], c["tile"]
    tk, tn = triton.cdiv(K, bk), triton.cdiv(N, bn)
    flat = torch.zeros(tk * tn, bk * bn, dtype=c["values"].dtype, device=c["values"].device)
    tiles = torch.repeat_interleave(torch.arange(tk * tn, device=flat.device), torch.diff(c["offsets"]).long())
    flat[tiles, c["positions"].long()] = c["values"]
    return flat.reshape(tk, tn, bk, bn).permute(0, 2, 1, 3).reshape(tk * bk, tn * bn)[:K, :N]


def _configs() -> list[triton.Config]:
    if interpreting():
        return [triton.Config({"BLOCK_M": 16})]
    return [triton.Config({"BLOCK_M": bm}, num_stages=s, num_warps=w)
            for bm, s, w in [(16, 3, 4), (32, 3, 4), (64, 3, 4), (128, 3, 8)]]


@triton.autotune(configs=_configs(), key=["M", "N", "K", "MAX_NNZ"])
@triton.jit
def _sparse_gemm_kernel(a_ptr, val_ptr, pos_ptr, off_ptr, c_ptr, M, N, K, tiles_n,
                        s_am, s_ak, s_cm, s_cn, UPCAST: tl.constexpr, MAX_NNZ: tl.constexpr,
                        BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr):
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    j = tl.arange(0, MAX_NNZ)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for tk in range(0, tl.cdiv(K, BLOCK_K)):
        kk = tk * BLOCK_K + rk
        a = tl.load(a_ptr + rm[:, None] * s_am + kk[None, :] * s_ak,
                    mask=(rm[:, None] < M) & (kk[None, :] < K), other=0.0)
        t = tk * tiles_n + pid_n
        start = tl.load(off_ptr + t)
        count = tl.load(off_ptr + t + 1) - start
        live = j < count
        pos = tl.load(pos_ptr + start + j, mask=live, other=0).to(tl.int32)
        vals = tl.load(val_ptr + start + j, mask=live, other=0.0)
        occupied = tl.histogram(pos, BLOCK_K * BLOCK_N, mask=live)
        rank = tl.minimum(tl.cumsum(occupied, 0) - occupied, MAX_NNZ - 1)
        dense = tl.where(occupied > 0, tl.gather(vals, rank, 0), 0.0)
        w = tl.reshape(dense, (BLOCK_K, BLOCK_N)).to(a.dtype)
        acc = mma(a, w, acc, UPCAST)
    tl.store(c_ptr + rm[:, None] * s_cm + rn[None, :] * s_cn, acc.to(c_ptr.dtype.element_ty),
             mask=(rm[:, None] < M) & (rn[None, :] < N))


def matmul(a: torch.Tensor, c: dict, out: torch.Tensor | None = None) -> torch.Tensor:
    """A[M,K] @ W with W in the compressed format from ``compress`` (values in A's dtype)."""
    (K, N), (bk, bn) = c["shape"], c["tile"]
    M = a.shape[0]
    if a.shape[1] != K or c["values"].dtype != a.dtype:
        raise ValueError("sparse matmul: A's K and dtype must match the compressed W")
    if out is None:
        out = torch.empty((M, N), dtype=a.dtype, device=a.device)
    tiles_n = triton.cdiv(N, bn)
    grid = lambda meta: (tiles_n, triton.cdiv(M, meta["BLOCK_M"]))  # noqa: E731
    _sparse_gemm_kernel[grid](a, c["values"], c["positions"], c["offsets"], out, M, N, K, tiles_n,
                              a.stride(0), a.stride(1), out.stride(0), out.stride(1),
                              UPCAST=upcast_dot(a.dtype), MAX_NNZ=c["max_nnz"], BLOCK_K=bk, BLOCK_N=bn)
    return out


def reference(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (a.float() @ w.float()).to(a.dtype)


def random_sparse(k: int, n: int, sparsity: float, dtype=torch.float16, dev: str | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Normal weights with a uniformly random fraction ``sparsity`` set to zero."""
    at = "cpu" if generator is not None else (dev or device())
    w = torch.randn(k, n, generator=generator, device=at)
    keep = torch.rand(k, n, generator=generator, device=at) >= sparsity
    return (w * keep).to(dtype).to(dev or device())


SPARSITY = (0.5, 0.7, 0.8, 0.9)
SHAPES_QUICK = [(16, 8192, 8192)]
SHAPES = [(m, n, k) for m in (8, 16, 32, 64, 256) for (n, k) in ((8192, 8192), (36864, 9216))]


def cases(quick: bool = False) -> list[Case]:
    out = []
    for s in ((0.8,) if quick else SPARSITY):
        for m, n, k in (SHAPES_QUICK if quick else SHAPES):
            def mk(m=m, n=n, k=k, s=s):          # a fresh W per input set, so rotation covers the weights
                return torch.randn(m, k, dtype=torch.float16, device=device()), compress(random_sparse(k, n, s))
            wbytes = (1 - s) * n * k * 4
            out.append(Case("triton.sparse_gemm", "sparse_gemm", scenario(m, n, k, s), mk, matmul,
                            flops=2.0 * m * n * k, bytes=wbytes + 2.0 * (m * k + m * n),
                            metrics=("time_s", "tflops"),
                            notes="flops counted dense (2mnk), as Flash-LLM reports", extra={"weight_bytes": wbytes}))
    return out
