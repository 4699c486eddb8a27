"""Pricing one forward step of an inference replica: ``StepModel`` builds a step's ops (layer GEMMs,
attention, TP all-reduces, embedding and LM head, PP sends) from ``sim.techniques.layers`` and
prices them with ``sim.cost.cost``; ``Agg`` sums the priced ops by bound and by op kind.

The static, speculative, offloaded and serving predictors all price steps here, so one batch
composition always costs the same whichever predictor asks. Host overheads (eager dispatch, the
framework's per-step work) are declared here because a step is where they are paid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from sim.cost.efficiency import eff, param
from sim.ops import DTYPE_BYTES, Attention, Collective, Elementwise, Gemm
from sim.techniques import kv_cache
from sim.techniques.inference_plan import Plan, gemm_op


# ---- declared parameters ----------------------------------------------------------------------
param("infer_eager_dispatch_s", 1.0e-5,
      "host time to dispatch one kernel from an eager (not graph-captured) framework step",
      "PyTorch eager dispatch + cudaLaunchKernel is ~5-20 us per op on server CPUs (gpt-fast blog, "
      "PyTorch 2023: eager Llama-7B decode is CPU-bound; CUDA graphs remove the per-kernel host cost)",
      lo=1e-6, hi=1e-4)
param("infer_step_overhead_s", 1.0e-4,
      "host work per forward step that the GPU waits on: scheduling, sampling, host-device sync",
      "physical reasoning: one device-to-host sync of the sampled ids (~10-20 us) plus a Python/C++ "
      "scheduler iteration; order 0.1 ms for gpt-fast/TensorRT-LLM loops (vLLM v0.6.0 blog: older "
      "Python schedulers spent ms per step, hidden since by multi-step scheduling)",
      lo=0.0, hi=0.05)


# ---- pricing ----------------------------------------------------------------------------------
def dequant_passes(mode: str, packed_bytes: float, n: float, out_b: float, dev, name: str) -> list:
    """Kernels that expand ``n`` packed low-bit values (``packed_bytes`` with their scales) into a
    16-bit copy of ``out_b`` bytes per value, before a 16-bit GEMM or attention reads it.

    unfused: one CUDA kernel reads the packed bytes and writes the copy (``dequant_ops_per_weight``
    ALU ops per value): the older GPTQ/AutoGPTQ path.
    torch: FlexGen's ``TorchCompressedDevice.decompress`` (compression.py), six PyTorch elementwise
    kernels over the whole tensor: high nibbles (``packed >> 4``) and low nibbles (``packed & 0xF``)
    each into a uint8 temporary and then scattered into every other element of the 16-bit buffer,
    then ``div_(scale)`` and ``add_(min)`` in place. Strided stores are counted at the width of the
    buffer they dirty (every DRAM sector of it is written), so per value 6 B are read and 9 B written
    on top of the packed bytes' share."""
    if mode == "unfused":
        return [Elementwise(bytes_read=packed_bytes, bytes_written=n * out_b,
                            flops=n * eff(dev, "dequant_ops_per_weight"), name=name)]
    nib = n / 2                                          # each nibble pass makes one uint8 per pair of values
    return [Elementwise(packed_bytes, nib, flops=nib, name=f"{name}_shift"),
            Elementwise(nib, n * out_b, name=f"{name}_scatter_hi"),
            Elementwise(packed_bytes, nib, flops=nib, name=f"{name}_mask"),
            Elementwise(nib, n * out_b, name=f"{name}_scatter_lo"),
            Elementwise(n * out_b, n * out_b, flops=n, name=f"{name}_div_scale"),
            Elementwise(n * out_b, n * out_b, flops=n, name=f"{name}_add_min")]


@dataclass
class Agg:
    """Priced ops summed: time, FLOPs, kernel count, time per bound resource and per op kind."""
    time: float = 0.0
    flops: float = 0.0
    kernels: int = 0
    bounds: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)

    def add(self, other: "Agg", k: float = 1.0) -> "Agg":
        self.time += k * other.time
        self.flops += k * other.flops
        self.kernels += int(round(k * other.kernels))
        for src, dst in ((other.bounds, self.bounds), (other.parts, self.parts)):
            for key, v in src.items():
                dst[key] = dst.get(key, 0.0) + k * v
        return self

    def scaled(self, k: float) -> "Agg":
        return Agg().add(self, k)


def dominant_bound(bounds: dict) -> str:
    """The resource that took the most time (``bounds``: time per bound resource)."""
    return max(bounds, key=bounds.get) if bounds else "none"


def price(ops, system) -> Agg:
    from sim.cost import cost
    a = Agg()
    for op in ops:
        c = cost(op, system)
        a.time += c.time_s
        a.flops += c.flops
        a.kernels += 1
        a.bounds[c.bound] = a.bounds.get(c.bound, 0.0) + c.time_s
        kind = op.op if isinstance(op, Collective) else type(op).__name__.lower()
        a.parts[kind] = a.parts.get(kind, 0.0) + c.time_s
    return a


def _grid(x: float, rel: int = 32) -> tuple[int, int, float]:
    """Bracketing points of a geometric grid (exact up to ``rel``), and the weight of the upper one."""
    if x <= rel:
        return int(x), int(x), 0.0
    step = 2 ** (math.floor(math.log2(x)) - int(math.log2(rel)))
    lo = int(x // step * step)
    hi = lo + step
    return lo, hi, (x - lo) / step


class StepModel:
    """Time of one forward step of one replica for a given batch composition.

    ``approx=True`` (serving) interpolates memoised costs on a geometric grid of token counts and
    contexts (<= 1/32 relative spacing) so that thousands of steps cost microseconds each."""

    def __init__(self, plan: Plan, offload=None, approx: bool = False):
        self.p, self.off, self.approx = plan, offload, approx
        self._dense: dict = {}
        self._attn: dict = {}
        self._head: dict = {}

    # -- per-layer pieces ------------------------------------------------------------------
    def _gemm(self, op) -> list:
        """The op as the plan runs it. With ``dequant`` unfused/torch the low-bit weights are first
        expanded to a 16-bit copy by separate bandwidth-bound kernels (``dequant_passes``), then
        a 16-bit GEMM reads that copy; fused kernels dequantise inside the GEMM (``Gemm.dequant_overlap``
        says how much of that CUDA-core work hides under the MMA and loads)."""
        g = gemm_op(self.p, op)
        if self.p.dequant == "fused" or not isinstance(g, Gemm) or g.w_dtype is None or g is op:
            return [g]
        from sim.cost.gemm import weight_format
        dev = self.p.system.device
        packed = weight_format(g, dev).bytes * g.batch
        n_w = g.k * g.n * g.batch
        deq = dequant_passes(self.p.dequant, packed, n_w, DTYPE_BYTES[self.p.act], dev, f"{op.name}_dequant")
        return deq + [replace(g, dtype=self.p.act, w_dtype=None, group_size=op.group_size, dequant_overlap=None)]

    def layer_dense(self, tokens: int) -> Agg:
        """Non-attention ops of one layer on ``tokens`` tokens, plus its two TP all-reduces."""
        if tokens in self._dense:
            return self._dense[tokens]
        from sim.techniques.layers import layer_forward_ops
        p = self.p
        ops = []
        for o in layer_forward_ops(p.model, 1, tokens, tokens, p.tp, p.act, None, None, p.attn_impl):
            if not isinstance(o, Attention):
                ops += self._gemm(o)
        if p.tp > 1:
            ar = Collective("all_reduce", tokens * p.model.hidden * DTYPE_BYTES[p.act], p.tp, name="tp_all_reduce")
            ops += [ar, ar]
        self._dense[tokens] = a = price(ops, p.system)
        return a

    def layer_attn(self, batch: int, seq_q: int, seq_kv: int) -> Agg:
        """Attention of one layer: ``batch`` sequences of ``seq_q`` new tokens over ``seq_kv`` keys.

        A decode kernel without GQA awareness (``kv_head_sharing: false``) streams its group's K/V
        once per query head: priced as attention with as many KV heads as query heads. A quantised
        cache with ``dequant`` unfused/torch is first expanded to 16 bits (the cached tokens only;
        the step's own K/V are fresh), then attention reads the 16-bit copy."""
        p = self.p
        if p.kv_budget:
            seq_kv = min(seq_kv, p.kv_budget + seq_q)
        key = (batch, seq_q, seq_kv)
        if key in self._attn:
            return self._attn[key]
        m = p.model
        kv_dtype = None if p.kv_dtype in ("fp16", "bf16") else p.kv_dtype
        heads = m.heads // p.tp
        kv_heads = max(1, m.n_kv_heads // p.tp)
        if not p.kv_head_sharing and seq_q == 1:
            kv_heads = heads
        ops = []
        cached = seq_kv - seq_q
        if kv_dtype and p.dequant != "fused":
            if cached > 0:
                n = 2.0 * batch * cached * kv_heads * m.d_head
                wl = p.wl
                packed = n * kv_cache.kv_elem_bytes(kv_dtype, wl.kv_group_size if wl else 128)
                ops += dequant_passes(p.dequant, packed, n, DTYPE_BYTES[p.act], p.system.device, "kv_dequant")
            kv_dtype = None
        ops.append(Attention(batch=batch, heads=heads, kv_heads=kv_heads, seq_q=seq_q, seq_kv=seq_kv,
                             head_dim=m.d_head, causal=seq_q > 1, dtype=p.act, impl=p.attn_impl,
                             kv_dtype=kv_dtype, name="attn"))
        self._attn[key] = a = price(ops, p.system)
        return a

    def head(self, tokens_in: int, tokens_out: int) -> Agg:
        """Embedding of the step's tokens (+ its all-reduce) and the LM head + sampling for the
        sequences that emit a token."""
        key = (tokens_in, tokens_out)
        if key in self._head:
            return self._head[key]
        from sim.techniques.layers import embedding_ops, lm_head_ops
        p = self.p
        ops = embedding_ops(p.model, tokens_in, p.tp, p.act)
        if p.tp > 1:
            ops.append(Collective("all_reduce", tokens_in * p.model.hidden * DTYPE_BYTES[p.act], p.tp, name="embed_all_reduce"))
        if tokens_out > 0:
            ops += lm_head_ops(p.model, tokens_out, p.tp, p.act, loss=False)
        self._head[key] = a = price(ops, p.system)
        return a

    def pp_send(self, tokens: int) -> Agg:
        if self.p.pp == 1:
            return Agg()
        return price([Collective("send_recv", tokens * self.p.model.hidden * DTYPE_BYTES[self.p.act], 2,
                                 name="pp_send")], self.p.system)

    # -- interpolated lookups (serving) -----------------------------------------------------
    def _dense_t(self, tokens: int) -> Agg:
        if not self.approx:
            return self.layer_dense(tokens)
        lo, hi, w = _grid(tokens)
        if w == 0.0:
            return self.layer_dense(lo)
        return self.layer_dense(lo).scaled(1 - w).add(self.layer_dense(hi), w)

    def _attn_t(self, batch: int, seq_q: int, seq_kv: float) -> Agg:
        if not self.approx:
            return self.layer_attn(batch, seq_q, int(round(seq_kv)))
        blo, bhi, bw = _grid(batch)
        klo, khi, kw = _grid(seq_kv)
        out = Agg()
        for b, wb in ((blo, 1 - bw), (bhi, bw)):
            for k, wk in ((klo, 1 - kw), (khi, kw)):
                if wb * wk > 0:
                    out.add(self.layer_attn(b, seq_q, max(k, seq_q)), wb * wk * batch / b)
        return out

    # -- one step --------------------------------------------------------------------------
    def step(self, n_decode: int = 0, decode_ctx: float = 0.0, prefills=(), seq_q_decode: int = 1,
             graphs: bool | None = None) -> Agg:
        """One forward of the model: ``n_decode`` sequences each adding ``seq_q_decode`` tokens over
        ``decode_ctx`` cached tokens (mean), and prefill chunks ``[(count, q, kv), ...]`` (count
        sequences of q new tokens over kv keys). Returns the step's Agg (time includes overheads)."""
        p = self.p
        tokens = n_decode * seq_q_decode + sum(c * q for c, q, _ in prefills)
        if tokens == 0:
            return Agg()
        nb = p.wl.micro_batches if p.wl is not None else 1
        if nb > 1:              # FlexGen's GPU batches: each layer's work once per micro-batch
            layer = Agg().add(self._dense_t(-(-tokens // nb)), nb)
            if n_decode:
                layer.add(self._attn_t(-(-n_decode // nb), seq_q_decode, decode_ctx), nb)
            for c, q, kv in prefills:
                layer.add(self._attn_t(-(-c // nb), q, kv), nb)
        else:
            layer = Agg().add(self._dense_t(tokens))
            if n_decode:
                layer.add(self._attn_t(n_decode, seq_q_decode, decode_ctx))
            for c, q, kv in prefills:
                layer.add(self._attn_t(c, q, kv))
        out_tokens = n_decode * seq_q_decode + sum(c for c, _, _ in prefills)
        stage = self._stage(layer, n_decode, decode_ctx, prefills)
        gpu = stage.scaled(p.pp).add(self.pp_send(tokens), p.pp - 1).add(self.head(tokens, out_tokens))
        graphs = (p.cuda_graphs and not prefills) if graphs is None else graphs
        dev = p.system.device
        host = 0.0 if graphs else gpu.kernels * eff(dev, "infer_eager_dispatch_s")
        if host > gpu.time:
            gpu.bounds["host_dispatch"] = gpu.bounds.get("host_dispatch", 0.0) + host - gpu.time
            gpu.parts["host_dispatch"] = host - gpu.time
            gpu.time = host
        ovh = eff(dev, "infer_step_overhead_s")
        gpu.time += ovh
        gpu.parts["step_overhead"] = gpu.parts.get("step_overhead", 0.0) + ovh
        gpu.bounds["step_overhead"] = gpu.bounds.get("step_overhead", 0.0) + ovh
        return gpu

    def _stage(self, layer: Agg, n_decode, decode_ctx, prefills) -> Agg:
        """All layers of one pipeline stage; with offload, overlapped with the per-layer fetch."""
        L = self.p.layers_local
        if self.off is None:
            return layer.scaled(L)
        return self.off.stage(layer, L, n_decode, decode_ctx, prefills)
