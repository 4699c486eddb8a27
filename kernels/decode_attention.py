"""Decode attention (one new query token per sequence) over a paged KV cache, with the cache
in fp16 or quantised to int4 / int2 with per-group scales, dequantised in the kernel.

Cache layout (vLLM-style pages): ``k_cache[num_blocks, page, kv_heads, D]`` (fp16) or the
packed codes ``[num_blocks, page, kv_heads, D * bits / 8]`` (uint8, code i of a byte at bits
i*bits), with fp16 ``scale`` and ``zero`` ``[num_blocks, page, kv_heads, D // group]``:
x = code * scale + zero (asymmetric, as KIVI). ``block_table[b, j]`` is the physical page of
sequence b's j-th page; ``seq_lens[b]`` its cached tokens.

One program serves one (sequence, KV head) and all query heads of its GQA group, so each KV
byte is read from HBM once; the group's queries are padded to 16 rows for ``tl.dot``.

Measures the gpusim ``attention`` workload with seq_q = 1, impl paged, kv_dtype fp16/int4/int2:
the time is the KV bytes over the achievable HBM bandwidth plus per-page and launch overheads.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from kernels.common import device, interpreting
from kernels.timing import Case

SCENARIO = {"kind": "attention", "batch": 16, "heads": 32, "kv_heads": 32, "seq_q": 1, "seq_kv": 2048,
            "head_dim": 128, "causal": False, "dtype": "fp16", "pass": "fwd", "impl": "paged", "kv_dtype": "fp16"}
BITS = {"fp16": 16, "int4": 4, "int2": 2}


def scenario(batch, heads, kv_heads, seq_kv, head_dim, kv_dtype="fp16") -> dict:
    """seq_q = 1 attends every cached token, so no causal mask (and no causal FLOP halving)."""
    return {"kind": "attention", "batch": batch, "heads": heads, "kv_heads": kv_heads, "seq_q": 1,
            "seq_kv": seq_kv, "head_dim": head_dim, "causal": False, "dtype": "fp16", "pass": "fwd",
            "impl": "paged", "kv_dtype": kv_dtype}


# ------------------------------------------------------------ quantised KV (torch, any device)

def quantize_kv(x: torch.Tensor, bits: int, group: int):
    """x[..., D] -> (codes packed in uint8 [..., D*bits/8], scale, zero [..., D/group] fp16)."""
    D = x.shape[-1]
    g = x.float().reshape(*x.shape[:-1], D // group, group)
    lo, hi = g.amin(-1), g.amax(-1)
    levels = 2 ** bits - 1
    scale = ((hi - lo) / levels).half()
    zero = lo.half()
    s = torch.where(scale == 0, torch.ones_like(scale), scale).float()
    q = torch.clamp(torch.round((g - zero.float()[..., None]) / s[..., None]), 0, levels).to(torch.int32)
    q = q.reshape(*x.shape[:-1], D // (8 // bits), 8 // bits)
    packed = torch.zeros(q.shape[:-1], dtype=torch.int32, device=x.device)
    for i in range(8 // bits):
        packed |= q[..., i] << (i * bits)
    return packed.to(torch.uint8), scale, zero


def unpack_kv(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """uint8 [..., D*bits/8] -> int codes [..., D]."""
    p = packed.to(torch.int32)
    q = torch.stack([(p >> (i * bits)) & (2 ** bits - 1) for i in range(8 // bits)], dim=-1)
    return q.reshape(*packed.shape[:-1], packed.shape[-1] * (8 // bits))


def dequantize_kv(packed, scale, zero, bits: int, group: int) -> torch.Tensor:
    """fp32 values the kernel computes with (before its rounding to fp16)."""
    q = unpack_kv(packed, bits).float()
    rep = lambda t: t.float().repeat_interleave(group, dim=-1)  # noqa: E731
    return q * rep(scale) + rep(zero)


def paginate(x: torch.Tensor, seq_lens: torch.Tensor, page: int, generator=None):
    """Per-sequence tensors x[B, S_max, ...] -> (pages [num_blocks, page, ...], block_table [B, max_pages])
    with the pages of all sequences shuffled, as an allocator leaves them."""
    B, S = x.shape[:2]
    per = triton.cdiv(S, page)
    n = B * per
    perm = torch.randperm(n, generator=generator).to(x.device)
    pages = torch.zeros((n, page) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
    xp = torch.zeros((B, per * page) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
    xp[:, :S] = x
    table = perm.reshape(B, per).to(torch.int32)
    pages[table.reshape(-1).long()] = xp.reshape((B * per, page) + tuple(x.shape[2:]))
    return pages, table


# ------------------------------------------------------------ kernel

@triton.jit
def _load_kv(c_ptr, s_ptr, z_ptr, row, t_ok, rd, HKV, hk, D: tl.constexpr, BITS: tl.constexpr,
             GROUP: tl.constexpr):
    """[PAGE, D] fp16 tile of page slots ``row`` (token-major) for KV head hk."""
    if BITS == 16:
        x = tl.load(c_ptr + (row[:, None] * HKV + hk) * D + rd[None, :], mask=t_ok[:, None], other=0.0)
    else:
        byte = tl.load(c_ptr + (row[:, None] * HKV + hk) * (D * BITS // 8) + (rd // (8 // BITS))[None, :],
                       mask=t_ok[:, None], other=0).to(tl.int32)
        code = (byte >> ((rd % (8 // BITS)) * BITS)[None, :]) & ((1 << BITS) - 1)
        sidx = (row[:, None] * HKV + hk) * (D // GROUP) + (rd // GROUP)[None, :]
        sc = tl.load(s_ptr + sidx, mask=t_ok[:, None], other=0.0).to(tl.float32)
        zr = tl.load(z_ptr + sidx, mask=t_ok[:, None], other=0.0).to(tl.float32)
        x = (code.to(tl.float32) * sc + zr).to(tl.float16)
    return x


@triton.jit
def _decode_kernel(q_ptr, k_ptr, ks_ptr, kz_ptr, v_ptr, vs_ptr, vz_ptr, table_ptr, lens_ptr, o_ptr,
                   qk_scale, H, HKV, max_pages,
                   D: tl.constexpr, PAGE: tl.constexpr, GROUP_Q: tl.constexpr, QROWS: tl.constexpr,
                   BITS: tl.constexpr, QGROUP: tl.constexpr):
    b = tl.program_id(0)
    hk = tl.program_id(1)
    rq = tl.arange(0, QROWS)
    rd = tl.arange(0, D)
    rp = tl.arange(0, PAGE)
    heads = hk * GROUP_Q + rq
    q_ok = rq < GROUP_Q
    q = tl.load(q_ptr + (b * H + heads)[:, None] * D + rd[None, :], mask=q_ok[:, None], other=0.0)
    seq_len = tl.load(lens_ptr + b)
    m_i = tl.full((QROWS,), float("-inf"), tl.float32)
    l_i = tl.zeros((QROWS,), tl.float32)
    acc = tl.zeros((QROWS, D), tl.float32)
    for j in range(0, tl.cdiv(seq_len, PAGE)):
        page = tl.load(table_ptr + b * max_pages + j)
        t_ok = j * PAGE + rp < seq_len
        row = page * PAGE + rp
        k = _load_kv(k_ptr, ks_ptr, kz_ptr, row, t_ok, rd, HKV, hk, D, BITS, QGROUP)
        s = tl.dot(q, tl.trans(k)) * qk_scale
        s = tl.where(t_ok[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = _load_kv(v_ptr, vs_ptr, vz_ptr, row, t_ok, rd, HKV, hk, D, BITS, QGROUP)
        acc = tl.dot(p.to(tl.float16), v, acc * alpha[:, None])
        m_i = m_new
    out = acc / l_i[:, None]
    tl.store(o_ptr + (b * H + heads)[:, None] * D + rd[None, :], out.to(o_ptr.dtype.element_ty),
             mask=q_ok[:, None])


def decode(q, k_cache, v_cache, block_table, seq_lens, kv_dtype="fp16", k_scale=None, k_zero=None,
           v_scale=None, v_zero=None, group: int = 32, out=None):
    """q [B, H, D] fp16; caches as in the module doc; returns [B, H, D] fp16."""
    B, H, D = q.shape
    page, HKV = k_cache.shape[1], k_cache.shape[2]
    bits = BITS[kv_dtype]
    if H % HKV or q.dtype != torch.float16 or page < 16 or D < 16 or (bits < 16 and D % group):
        raise ValueError("decode: fp16 q, heads % kv_heads == 0, page >= 16, head_dim >= 16 divisible by group")
    if out is None:
        out = torch.empty_like(q)
    if bits == 16:
        k_scale = k_zero = v_scale = v_zero = k_cache            # unused placeholders
    g = H // HKV
    _decode_kernel[(B, HKV)](q.contiguous(), k_cache, k_scale, k_zero, v_cache, v_scale, v_zero,
                             block_table, seq_lens, out, 1.4426950408889634 / math.sqrt(D), H, HKV,
                             block_table.shape[1], D=D, PAGE=page, GROUP_Q=g, QROWS=max(16, triton.next_power_of_2(g)),
                             BITS=bits, QGROUP=group if bits < 16 else 1,
                             num_warps=4 if interpreting() else (4 if D <= 64 else 8))
    return out


def reference(q, k, v, seq_lens) -> torch.Tensor:
    """q [B, H, D]; k, v [B, S_max, Hkv, D] (already dequantised, fp16); fp32 attention over
    each sequence's first seq_lens[b] tokens."""
    B, H, D = q.shape
    outs = []
    for b in range(B):
        n = int(seq_lens[b])
        kb = k[b, :n].float().transpose(0, 1).repeat_interleave(H // k.shape[2], 0)    # [H, n, D]
        vb = v[b, :n].float().transpose(0, 1).repeat_interleave(H // k.shape[2], 0)
        s = (kb @ q[b].float()[:, :, None])[..., 0] / math.sqrt(D)                    # [H, n]
        outs.append((torch.softmax(s, -1)[:, None, :] @ vb)[:, 0])
    return torch.stack(outs).to(q.dtype)


def make_inputs(batch, heads, kv_heads, seq_lens, head_dim, kv_dtype="fp16", page=16, group=32,
                dev=None, seed=None):
    """(decode() kwargs, dense fp16 K and V [B, S_max, Hkv, D] as the kernel sees them). The same
    seed shuffles the pages of K, V and their scales, so one block table serves all of them."""
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    dev = dev or device()
    at = "cpu" if g is not None else dev
    lens = torch.as_tensor(seq_lens, dtype=torch.int32)
    S = int(lens.max())
    q = torch.randn(batch, heads, head_dim, generator=g, device=at).half().to(dev)
    k = torch.randn(batch, S, kv_heads, head_dim, generator=g, device=at).half().to(dev)
    v = torch.randn(batch, S, kv_heads, head_dim, generator=g, device=at).half().to(dev)
    kw = {"kv_dtype": kv_dtype, "group": group}
    bits = BITS[kv_dtype]
    if bits < 16:
        kp, ks, kz = quantize_kv(k, bits, group)
        vp, vs, vz = quantize_kv(v, bits, group)
        k = dequantize_kv(kp, ks, kz, bits, group).half()
        v = dequantize_kv(vp, vs, vz, bits, group).half()
        for name, t in (("k_cache", kp), ("k_scale", ks), ("k_zero", kz), ("v_cache", vp), ("v_scale", vs),
                        ("v_zero", vz)):
            kw[name], table = paginate(t, lens, page, torch.Generator().manual_seed(seed or 0))
    else:
        for name, t in (("k_cache", k), ("v_cache", v)):
            kw[name], table = paginate(t, lens, page, torch.Generator().manual_seed(seed or 0))
    kw.update(q=q, block_table=table.to(dev), seq_lens=lens.to(dev))
    return kw, k, v


def kv_bytes(batch, kv_heads, seq_kv, head_dim, kv_dtype, group=32) -> float:
    """Bytes of K and V a decode step must read (codes plus fp16 scale and zero per group)."""
    bits = BITS[kv_dtype]
    per_tok = kv_heads * head_dim * bits / 8 + (kv_heads * head_dim // group * 4 if bits < 16 else 0)
    return 2.0 * batch * seq_kv * per_tok


# (batch, heads, kv_heads, seq_kv, head_dim): FlashInfer's decode grid (Llama-2-7B heads) and a GQA model
SHAPES_QUICK = [(16, 32, 32, 2048, 128), (1, 32, 32, 16384, 128)]
SHAPES = ([(b, 32, 32, s, 128) for b in (1, 16, 64) for s in (256, 1024, 2048, 16384) if b * s <= 262144]
          + [(1, 32, 32, 65536, 128), (32, 64, 8, 4096, 128)])


def cases(quick: bool = False) -> list[Case]:
    out = []
    for kvd in ("fp16", "int4", "int2"):
        for b, h, hk, s, d in (SHAPES_QUICK if quick else SHAPES):
            def mk(b=b, h=h, hk=hk, s=s, d=d, kvd=kvd):
                kw, _, _ = make_inputs(b, h, hk, [s] * b, d, kvd)
                return (kw,)
            out.append(Case("triton.decode_attention", "decode_attention", scenario(b, h, hk, s, d, kvd), mk,
                            lambda kw: decode(**kw), flops=4.0 * b * h * s * d,
                            bytes=kv_bytes(b, hk, s, d, kvd) + 4.0 * b * h * d,
                            metrics=("time_s", "tflops", "hbm_utilization"),
                            notes="hbm_utilization = (K/V codes + scales + q + out bytes) / time / spec HBM "
                                  "bandwidth; group 32, page 16"))
    return out
