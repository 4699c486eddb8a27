"""Vendor-library kernels timed the same way as ours: cuBLAS via ``torch.matmul`` per dtype,
cuBLASLt fp8 via ``torch._scaled_mm``, ``scaled_dot_product_attention`` (PyTorch picks its
FlashAttention-2 backend for fp16/bf16), and NCCL all-reduce through ``torch.distributed``
across the GPUs of this machine (one process per GPU; skipped with fewer than two).

GPU only: they are what a tuned library reaches, the ceiling the Triton kernels and the
model's efficiencies are held against.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile

import torch

from kernels import flash_attention, gemm
from kernels.common import FP8, fp8_supported
from kernels.timing import Case

SCENARIO = gemm.SCENARIO


def _matmul(dtype: str):
    tf32 = dtype == "tf32"

    def fn(a, b):
        old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        try:
            return torch.matmul(a, b)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old
    return fn


def _mm_inputs(m, n, k, dtype):
    t = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    return torch.randn(m, k, device="cuda", dtype=t), torch.randn(k, n, device="cuda", dtype=t)


def _fp8_inputs(m, n, k):
    a = torch.randn(m, k, device="cuda").to(FP8)
    b = torch.randn(n, k, device="cuda").to(FP8).t()        # column-major B, as cuBLASLt fp8 needs
    one = torch.ones((), device="cuda")
    return a, b, one, one.clone()


def _scaled_mm(a, b, sa, sb):
    return torch._scaled_mm(a, b, scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16)


def _sdpa(causal):
    import torch.nn.functional as F

    def fn(q, k, v):
        if k.shape[1] != q.shape[1]:
            try:
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
            except TypeError:                                  # torch < 2.5: expand the KV heads
                r = q.shape[1] // k.shape[1]
                k, v = k.repeat_interleave(r, 1), v.repeat_interleave(r, 1)
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return fn


def cases(quick: bool = False) -> list[Case]:
    out = []
    shapes = gemm.SHAPES_QUICK if quick else gemm.SHAPES
    for dt in ("fp32", "tf32", "fp16", "bf16"):
        for m, n, k in shapes:
            out.append(Case(f"torch.matmul.{dt}", "gemm", gemm.scenario(m, n, k, dt),
                            lambda m=m, n=n, k=k, dt=dt: _mm_inputs(m, n, k, dt), _matmul(dt),
                            flops=2.0 * m * n * k, metrics=("time_s", "tflops")))
    if fp8_supported() and hasattr(torch, "_scaled_mm"):
        for m, n, k in shapes:
            if m % 16 or n % 16 or k % 16:
                continue
            out.append(Case("torch._scaled_mm.fp8", "gemm", gemm.scenario(m, n, k, "fp8"),
                            lambda m=m, n=n, k=k: _fp8_inputs(m, n, k), _scaled_mm,
                            flops=2.0 * m * n * k, metrics=("time_s", "tflops"),
                            notes="e4m3 inputs, unit scales, bf16 output"))
    for dt, tdt in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        for causal in (False, True):
            for b, h, hk, s, d in (flash_attention.SHAPES_QUICK if quick else flash_attention.SHAPES):
                out.append(Case("torch.sdpa", "attention", flash_attention.scenario(b, h, hk, s, s, d, causal, dt),
                                lambda b=b, h=h, hk=hk, s=s, d=d, tdt=tdt: flash_attention.make_inputs(
                                    b, h, hk, s, s, d, tdt, "cuda"),
                                _sdpa(causal), flops=flash_attention.flops(b, h, s, s, d, causal),
                                metrics=("time_s", "tflops"),
                                notes="backend chosen by PyTorch (flash for fp16/bf16 where supported)"))
    return out


# ------------------------------------------------------------------ NCCL all-reduce

ALLREDUCE_BYTES_QUICK = [2 ** 20, 2 ** 26, 2 ** 30]
ALLREDUCE_BYTES = [2 ** p for p in range(10, 33, 2)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _allreduce_worker(rank, world, port, sizes, path, iters):
    import torch.distributed as dist
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    results = []
    for size in sizes:
        x = torch.randn(size // 4, device="cuda")
        for _ in range(5):
            dist.all_reduce(x)
        torch.cuda.synchronize()
        dist.barrier()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            dist.all_reduce(x)
        end.record()
        torch.cuda.synchronize()
        results.append({"bytes": size, "time_s": start.elapsed_time(end) / 1e3 / iters})
    if rank == 0:
        with open(path, "w") as f:
            json.dump(results, f)
    dist.destroy_process_group()


def allreduce(quick: bool = False, iters: int = 20) -> list[dict]:
    """Measured all-reduce (fp32, sum) per buffer size across all local GPUs, nccl-tests style:
    each a dict with workload, time_s, algbw_gbps = bytes/time and busbw_gbps = algbw*2(n-1)/n.
    Empty with fewer than two GPUs."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n < 2:
        return []
    import torch.multiprocessing as mp
    sizes = ALLREDUCE_BYTES_QUICK if quick else ALLREDUCE_BYTES
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        mp.spawn(_allreduce_worker, args=(n, _free_port(), sizes, path, iters), nprocs=n, join=True)
        with open(path) as f:
            res = json.load(f)
    finally:
        os.unlink(path)
    out = []
    for r in res:
        alg = r["bytes"] / r["time_s"] / 1e9
        out.append({"workload": {"kind": "collective", "op": "all_reduce", "bytes": r["bytes"], "gpus": n},
                    "time_s": r["time_s"], "algbw_gbps": alg, "busbw_gbps": alg * 2 * (n - 1) / n})
    return out
