"""Low-bit weight formats: int4 (8 codes per int32) and FP6 e3m2 (4 codes per 3 bytes).

Pure numpy/torch, no Triton: the packers the kernels' inputs are built with, and the
unpackers and decoders their references use.

int4: per-group symmetric codes q in [0, 15] with w = (q - 8) * scale, one fp16 scale per
``group_size`` consecutive weights along K of one output column (the GPTQ/AWQ layout:
weights W[K, N], codes packed along K, code k at bits 4*(k % 8) of word k // 8).

FP6 e3m2 (FP6-LLM's format): 1 sign, 3 exponent, 2 mantissa bits, exponent bias 3, no
infinities or NaNs: value = (-1)^s * 2^(e-3) * (1 + m/4) for e > 0 and (-1)^s * 2^-2 * (m/4)
for e = 0 (subnormals); largest magnitude 28. One fp16 scale per output column. Four codes
v0..v3 form the 24-bit word v0 | v1<<6 | v2<<12 | v3<<18, stored little-endian as 3 bytes.
"""
from __future__ import annotations

import numpy as np

FP6_MAX = 28.0


# ------------------------------------------------------------------ int4

def pack_int4(q: np.ndarray) -> np.ndarray:
    """codes uint8 [K, N] (0..15, K % 8 == 0) -> int32 [K // 8, N]."""
    q = np.asarray(q, dtype=np.uint32)
    if q.shape[0] % 8 or q.max(initial=0) > 15:
        raise ValueError("pack_int4: need K % 8 == 0 and codes in 0..15")
    q = q.reshape(q.shape[0] // 8, 8, *q.shape[1:])
    word = np.zeros(q.shape[:1] + q.shape[2:], dtype=np.uint32)
    for i in range(8):
        word |= q[:, i] << np.uint32(4 * i)
    return word.view(np.int32)


def unpack_int4(packed: np.ndarray) -> np.ndarray:
    """int32 [K // 8, N] -> codes uint8 [K, N]."""
    w = np.asarray(packed).view(np.uint32)
    q = np.stack([(w >> np.uint32(4 * i)) & np.uint32(0xF) for i in range(8)], axis=1)
    return q.reshape(w.shape[0] * 8, *w.shape[1:]).astype(np.uint8)


def quantize_int4(w: np.ndarray, group_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """W[K, N] float -> (packed int32 [K//8, N], fp16 scales [K//group_size, N])."""
    w = np.asarray(w, dtype=np.float32)
    K, N = w.shape
    if K % group_size or group_size % 8:
        raise ValueError("quantize_int4: K must be a multiple of group_size, itself a multiple of 8")
    g = w.reshape(K // group_size, group_size, N)
    scale = (np.abs(g).max(axis=1) / 7.0).astype(np.float16)
    s = np.where(scale == 0, np.float16(1), scale).astype(np.float32)[:, None, :]
    q = np.clip(np.rint(g / s) + 8, 0, 15).astype(np.uint8).reshape(K, N)
    return pack_int4(q), scale


def dequantize_int4(packed: np.ndarray, scales: np.ndarray, group_size: int = 128) -> np.ndarray:
    """Weights (fp32 [K, N]) the kernel computes with: (q - 8) * scale of the code's group."""
    q = unpack_int4(packed).astype(np.float32) - 8.0
    return q * np.repeat(np.asarray(scales, np.float32), group_size, axis=0)


# ------------------------------------------------------------------ FP6 e3m2

def fp6_value(code) -> np.ndarray:
    """Closed-form value of e3m2 codes (0..63)."""
    c = np.asarray(code, dtype=np.int64)
    s, e, m = (c >> 5) & 1, (c >> 2) & 7, c & 3
    mag = np.where(e == 0, 2.0 ** -2 * (m / 4.0), 2.0 ** (e - 3.0) * (1.0 + m / 4.0))
    return np.where(s == 1, -mag, mag)


FP6_TABLE = fp6_value(np.arange(64))


def fp6_encode(x) -> np.ndarray:
    """Round floats to the nearest e3m2 code (saturating at +-28; ties to the smaller magnitude)."""
    x = np.asarray(x, dtype=np.float64)
    mags = FP6_TABLE[:32]                      # codes 0..31: non-negative, increasing
    a = np.minimum(np.abs(x), FP6_MAX)
    hi = np.clip(np.searchsorted(mags, a), 1, 31)
    lo = hi - 1
    code = np.where(np.abs(mags[hi] - a) < np.abs(a - mags[lo]), hi, lo)
    return (code | np.where(np.signbit(x) & (code > 0), 32, 0)).astype(np.uint8)


def pack_fp6(codes: np.ndarray) -> np.ndarray:
    """codes uint8 [K, N] (K % 4 == 0) -> uint8 [3 * K // 4, N]."""
    c = np.asarray(codes, dtype=np.uint32)
    if c.shape[0] % 4 or c.max(initial=0) > 63:
        raise ValueError("pack_fp6: need K % 4 == 0 and codes in 0..63")
    c = c.reshape(c.shape[0] // 4, 4, *c.shape[1:])
    word = c[:, 0] | (c[:, 1] << 6) | (c[:, 2] << 12) | (c[:, 3] << 18)
    out = np.stack([(word >> (8 * i)) & 0xFF for i in range(3)], axis=1)
    return out.reshape(out.shape[0] * 3, *out.shape[2:]).astype(np.uint8)


def unpack_fp6(packed: np.ndarray) -> np.ndarray:
    """uint8 [3 * K // 4, N] -> codes uint8 [K, N]."""
    b = np.asarray(packed, dtype=np.uint32)
    b = b.reshape(b.shape[0] // 3, 3, *b.shape[1:])
    word = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    c = np.stack([(word >> (6 * i)) & 0x3F for i in range(4)], axis=1)
    return c.reshape(c.shape[0] * 4, *c.shape[2:]).astype(np.uint8)


def quantize_fp6(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """W[K, N] float -> (packed uint8 [3K/4, N], fp16 per-column scales [N])."""
    w = np.asarray(w, dtype=np.float32)
    scale = (np.abs(w).max(axis=0) / FP6_MAX).astype(np.float16)
    s = np.where(scale == 0, np.float16(1), scale).astype(np.float32)
    return pack_fp6(fp6_encode(w / s)), scale


def dequantize_fp6(packed: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Weights (fp32 [K, N]) the kernel computes with."""
    return FP6_TABLE[unpack_fp6(packed)].astype(np.float32) * np.asarray(scales, np.float32)[None, :]
