"""KV cache: bytes per token per storage format, paged allocation, and the batch/context limit
that HBM capacity sets.

Why a module of its own: most "x-times throughput at the same memory budget" claims of KV
compression (KIVI, KVQuant, Kitty, ShadowKV) come from a larger feasible batch, not a faster
kernel, so the capacity arithmetic has to be exact and shared by the static predictor and the
serving simulation.

Bytes per cached element of format ``f`` with quantisation group ``g`` elements:

    bits(f) / 8 + scale_bytes(f) / g

where ``scale_bytes`` is one fp16 scale plus one fp16 zero point per group for the integer
formats (asymmetric quantisation as in KIVI, KVQuant's per-vector scales, LMDeploy/vLLM int
KV), and 0 for fp16/bf16 and fp8 (a per-tensor scale, amortised to nothing). A full-precision
window of the most recent ``residual`` tokens (KIVI keeps 32-128 of them in fp16) is counted at
the unquantised size. Per-token bytes of all layers come from the model
(``ModelSpec.kv_bytes_per_token``: 2 x layers x kv_heads x head_dim x bytes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# storage bits per element and bytes of scale+zero per quantisation group
KV_FORMATS: dict[str, tuple[float, float]] = {
    "fp32": (32, 0.0), "fp16": (16, 0.0), "bf16": (16, 0.0),
    "fp8": (8, 0.0),                      # per-tensor scale (vLLM/TensorRT-LLM fp8 KV)
    "int8": (8, 4.0), "int4": (4, 4.0), "int3": (3, 4.0), "int2": (2, 4.0),
}
FULL_PRECISION = "fp16"


def kv_elem_bytes(dtype: str, group_size: int | None = None) -> float:
    """Bytes per cached K or V element including the amortised scales of its group.

    ``group_size=None`` means scales are amortised over so many elements that they vanish
    (per-channel key scales over the whole context, as KVQuant stores them)."""
    if dtype not in KV_FORMATS:
        raise ValueError(f"unknown KV dtype '{dtype}'; expected one of {sorted(KV_FORMATS)}")
    bits, scale = KV_FORMATS[dtype]
    per_group = 0.0 if (group_size is None or scale == 0.0) else scale / group_size
    return bits / 8 + per_group


@dataclass(frozen=True)
class KVLayout:
    """How one sequence's KV cache is stored, on one GPU of a TP x PP group."""
    bytes_per_token: float          # all layers of the whole model, quantised part (one GPU holds a share)
    full_bytes_per_token: float     # same at fp16 (residual window, swap of unquantised copies)
    residual: int = 0               # most recent tokens kept at full precision
    block_size: int = 16            # tokens per page (vLLM default 16)
    shards: float = 1.0             # GPUs the per-token bytes are divided over (tp_eff x pp)

    def seq_bytes(self, tokens: int) -> float:
        """Bytes one sequence of ``tokens`` cached tokens occupies on one GPU, in whole pages.

        Pages are allocated whole (internal fragmentation up to block_size - 1 tokens); the
        residual window sits in its own full-precision pages."""
        if tokens <= 0:
            return 0.0
        full = min(tokens, self.residual)
        quant = tokens - full
        pages = lambda n: math.ceil(n / self.block_size) * self.block_size  # noqa: E731
        return (pages(quant) * self.bytes_per_token + pages(full) * self.full_bytes_per_token) / self.shards

    def raw_seq_bytes(self, tokens: int) -> float:
        """Bytes without page rounding (the information content)."""
        full = min(tokens, self.residual)
        return ((tokens - full) * self.bytes_per_token + full * self.full_bytes_per_token) / self.shards

    def fragmentation(self, tokens: int) -> float:
        """Fraction of the allocated pages left empty."""
        alloc = self.seq_bytes(tokens)
        return 0.0 if alloc == 0 else 1.0 - self.raw_seq_bytes(tokens) / alloc


def kv_shards(model, tp: int, pp: int) -> float:
    """GPUs one token's KV is split over: KV heads split across TP ranks (a rank holds at least
    one head, so with kv_heads < tp heads are replicated), layers across PP stages."""
    return min(tp, model.n_kv_heads) * pp


def layout(model, dtype: str, tp: int = 1, pp: int = 1, group_size: int | None = 128,
           residual: int = 0, block_size: int = 16) -> KVLayout:
    """The KV layout of ``model`` with KV format ``dtype`` on a TP x PP group."""
    q = model.kv_bytes_per_token(kv_elem_bytes(dtype, group_size))
    f = model.kv_bytes_per_token(kv_elem_bytes(FULL_PRECISION))
    return KVLayout(q, f, residual, block_size, kv_shards(model, tp, pp))


def max_batch(free_bytes: float, lay: KVLayout, context: int) -> int:
    """Most sequences of ``context`` tokens whose pages fit in ``free_bytes`` of one GPU."""
    per = lay.seq_bytes(context)
    if per <= 0:
        return 10 ** 9
    return max(0, int(free_bytes // per))


def max_context(free_bytes: float, lay: KVLayout, batch: int = 1) -> int:
    """Longest context (tokens) ``batch`` sequences can each hold in ``free_bytes``."""
    if batch <= 0 or free_bytes <= 0:
        return 0
    per_seq = free_bytes / batch
    lo, hi = 0, 1
    while lay.seq_bytes(hi) <= per_seq:
        lo, hi = hi, hi * 2
        if hi > 10 ** 12:
            return hi
    while hi - lo > 1:                       # seq_bytes is monotone in tokens
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if lay.seq_bytes(mid) <= per_seq else (lo, mid)
    return lo


def blocks_total(free_bytes: float, lay: KVLayout) -> int:
    """Pages of the quantised format that fit in ``free_bytes`` (the serving KV pool)."""
    per_block = lay.block_size * lay.bytes_per_token / lay.shards
    return max(0, int(free_bytes // per_block)) if per_block > 0 else 10 ** 9
