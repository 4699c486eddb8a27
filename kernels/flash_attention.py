"""FlashAttention-2-style forward pass: softmax(Q K^T / sqrt(d)) V, tiled, with an online
softmax so the S x S score matrix never reaches HBM. Causal or not; grouped-query attention
(``kv_heads`` < ``heads``: query head h reads KV head h // (heads / kv_heads)).

Measures the gpusim ``attention`` workload (pass fwd, impl flash2). FLOPs follow the
FlashAttention convention: 4 * batch * heads * seq_q * seq_kv * head_dim, times the attended
share 1 - seq_q / (2 seq_kv) when causal (1/2 for seq_q = seq_kv).
Causal masking aligns the last query with the last key (query i sees keys j <= i + seq_kv - seq_q).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from kernels.common import device, interpreting, mma, upcast_dot
from kernels.timing import Case

SCENARIO = {"kind": "attention", "batch": 4, "heads": 32, "kv_heads": 32, "seq_q": 4096, "seq_kv": 4096,
            "head_dim": 128, "causal": True, "dtype": "fp16", "pass": "fwd", "impl": "flash2"}


def scenario(batch, heads, kv_heads, seq_q, seq_kv, head_dim, causal, dtype="fp16") -> dict:
    return {"kind": "attention", "batch": batch, "heads": heads, "kv_heads": kv_heads, "seq_q": seq_q,
            "seq_kv": seq_kv, "head_dim": head_dim, "causal": causal, "dtype": dtype, "pass": "fwd",
            "impl": "flash2"}


def flops(batch, heads, seq_q, seq_kv, head_dim, causal) -> float:
    f = 4.0 * batch * heads * seq_q * seq_kv * head_dim
    return f * (1.0 - seq_q / (2.0 * seq_kv)) if causal else f


def _configs() -> list[triton.Config]:
    if interpreting():
        return [triton.Config({"BLOCK_M": 16, "BLOCK_N": 16})]
    return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_stages=s, num_warps=w)
            for bm, bn, s, w in [(128, 64, 3, 8), (128, 128, 2, 8), (128, 32, 4, 4), (64, 64, 4, 4),
                                 (64, 32, 3, 4)]]


@triton.autotune(configs=_configs(), key=["SQ", "SKV", "D", "CAUSAL"])
@triton.jit
def _fwd_kernel(q_ptr, k_ptr, v_ptr, o_ptr, qk_scale, SQ, SKV, H, GROUP,
                sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sob, soh, sos,
                D: tl.constexpr, CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    hk = h // GROUP
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rd = tl.arange(0, D)
    rn0 = tl.arange(0, BLOCK_N)
    q = tl.load(q_ptr + b * sqb + h * sqh + rm[:, None] * sqs + rd[None, :], mask=rm[:, None] < SQ, other=0.0)
    k_base = k_ptr + b * skb + hk * skh
    v_base = v_ptr + b * svb + hk * svh
    m_i = tl.full((BLOCK_M,), float("-inf"), tl.float32)
    l_i = tl.zeros((BLOCK_M,), tl.float32)
    acc = tl.zeros((BLOCK_M, D), tl.float32)
    shift = SKV - SQ
    hi = SKV
    if CAUSAL:
        hi = tl.minimum(SKV, (pid_m + 1) * BLOCK_M + shift)
    for n0 in range(0, hi, BLOCK_N):
        rn = n0 + rn0
        kt = tl.load(k_base + rd[:, None] + rn[None, :] * sks, mask=rn[None, :] < SKV, other=0.0)
        s = mma(q, kt, tl.zeros((BLOCK_M, BLOCK_N), tl.float32), UPCAST) * qk_scale
        valid = rn[None, :] < SKV
        if CAUSAL:
            valid = valid & (rn[None, :] <= rm[:, None] + shift)
        s = tl.where(valid, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_base + rn[:, None] * svs + rd[None, :], mask=rn[:, None] < SKV, other=0.0)
        acc = mma(p.to(v.dtype), v, acc * alpha[:, None], UPCAST)
        m_i = m_new
    out = acc / l_i[:, None]
    tl.store(o_ptr + b * sob + h * soh + rm[:, None] * sos + rd[None, :], out.to(o_ptr.dtype.element_ty),
             mask=rm[:, None] < SQ)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
              out: torch.Tensor | None = None) -> torch.Tensor:
    """q [B, H, Sq, D]; k, v [B, Hkv, Skv, D] (last dim contiguous); returns [B, H, Sq, D]."""
    B, H, SQ, D = q.shape
    HKV, SKV = k.shape[1], k.shape[2]
    if H % HKV or D not in (16, 32, 64, 128, 256) or (causal and SQ > SKV):
        raise ValueError("attention: need heads % kv_heads == 0, head_dim a power of 2 in 16..256, "
                         "and seq_q <= seq_kv when causal")
    if not (q.stride(-1) == k.stride(-1) == v.stride(-1) == 1):
        raise ValueError("attention: the head dimension must be contiguous")
    if out is None:
        out = torch.empty_like(q)
    scale = 1.0 / math.sqrt(D) * 1.4426950408889634        # log2(e): the kernel uses exp2
    grid = lambda meta: (triton.cdiv(SQ, meta["BLOCK_M"]), B * H)  # noqa: E731
    _fwd_kernel[grid](q, k, v, out, scale, SQ, SKV, H, H // HKV,
                      q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
                      v.stride(0), v.stride(1), v.stride(2), out.stride(0), out.stride(1), out.stride(2),
                      D=D, CAUSAL=causal, UPCAST=upcast_dot(q.dtype))
    return out


def reference(q, k, v, causal: bool = False) -> torch.Tensor:
    """Plain attention in fp32 with K/V heads repeated for GQA."""
    H, HKV, SQ, SKV = q.shape[1], k.shape[1], q.shape[2], k.shape[2]
    kf = k.float().repeat_interleave(H // HKV, dim=1)
    vf = v.float().repeat_interleave(H // HKV, dim=1)
    s = q.float() @ kf.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        i = torch.arange(SQ, device=q.device)[:, None]
        j = torch.arange(SKV, device=q.device)[None, :]
        s = s.masked_fill(j > i + (SKV - SQ), float("-inf"))
    return (torch.softmax(s, dim=-1) @ vf).to(q.dtype)


def make_inputs(batch, heads, kv_heads, seq_q, seq_kv, head_dim, dtype=torch.float16, dev=None, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    dev = dev or device()
    at = "cpu" if g is not None else dev
    mk = lambda h, s: torch.randn(batch, h, s, head_dim, generator=g, device=at, dtype=dtype).to(dev)  # noqa: E731
    return mk(heads, seq_q), mk(kv_heads, seq_kv), mk(kv_heads, seq_kv)


# (batch, heads, kv_heads, seq, head_dim): FlashAttention-2's benchmark grid (16k tokens per batch,
# hidden 2048), plus GQA shapes of Llama-2-70B / Llama-3-8B per GPU
SHAPES_QUICK = [(4, 16, 16, 4096, 128)]
SHAPES = ([(16384 // s, 2048 // d, 2048 // d, s, d) for d in (64, 128) for s in (512, 1024, 2048, 4096, 8192, 16384)]
          + [(4, 64, 8, 4096, 128), (1, 32, 8, 8192, 128)])


def cases(quick: bool = False) -> list[Case]:
    out = []
    for dt, tdt in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        for causal in (False, True):
            for b, h, hk, s, d in (SHAPES_QUICK if quick else SHAPES):
                mk = lambda b=b, h=h, hk=hk, s=s, d=d, tdt=tdt: make_inputs(b, h, hk, s, s, d, tdt)  # noqa: E731
                fn = lambda q, k, v, c=causal: attention(q, k, v, c)  # noqa: E731
                out.append(Case("triton.flash_attention", "attention", scenario(b, h, hk, s, s, d, causal, dt),
                                mk, fn, flops=flops(b, h, s, s, d, causal), metrics=("time_s", "tflops")))
    return out
