"""Offloaded inference: weights and/or KV cache in host DRAM or on NVMe, streamed layer by layer.

ZeRO-Inference / DeepSpeed Inference and FlexGen keep what fits in HBM and stream the rest over
PCIe once per forward step, fetching layer i+1 while layer i computes. With per-layer compute C
and per-layer fetch X over L layers, one pass takes

    prefetch:     X + (L - 1) * max(C, X) + C         (fill, steady state, drain)
    no prefetch:  L * (C + X)

so the pass is compute-bound once C >= X: with weights streamed, C grows with the tokens of the
step and X does not, which gives the minimum batch for compute-bound offloaded inference
(``min_tokens_compute_bound``; the DeepSpeed Inference 84 TFLOP/s on one A6000 claim).

A fetch has legs through a staging buffer: the source (NVMe read, shared by all GPUs of the
host), and each GPU's own PCIe link; ``offload_staging_overlap`` says how much of the shorter leg
hides under the longer (DeepSpeed stages a whole layer, so by default none; GPUDirect Storage
skips the buffer). With several replicas and ``partitioned_fetch``
each GPU fetches 1/n of the layer and an NVLink all-gather assembles it (ZeRO-Inference's
multi-GPU mode): the source leg is paid once, not n times. Offloaded KV (FlexGen, the
long-context analysis' swap case, TriForce's offloading baseline) streams the non-resident part
of each layer's cache every decode step; ``kv_fetch_tokens`` caps the tokens read per sequence
(sparse fetch as in ShadowKV). Costs come from ``sim.cost`` (Transfer, Collective); nothing here
holds a bandwidth.
"""
from __future__ import annotations

from sim.cost.efficiency import eff, param
from sim.ops import Collective, Transfer
from sim.techniques.inference import Agg, Plan, price

param("offload_staging_overlap", 0.0,
      "fraction of the shorter leg of an NVMe -> host -> GPU layer fetch hidden under the longer one "
      "(0: a layer is read into the pinned buffer, then copied to the GPU; 1: chunk-pipelined legs)",
      "DeepSpeed ZeRO-Inference's parameter swapper reads each parameter from NVMe into a pinned host "
      "buffer (libaio) and only then issues the host-to-device copy, so within a layer the legs are "
      "sequential (DeepSpeed partitioned_param_swapper); prefetch overlaps whole layers, not legs",
      lo=0.0, hi=1.0)

_SRC = {"cpu": "host", "nvme": "nvme"}


class OffloadModel:
    def __init__(self, plan: Plan, cfg):
        self.p, self.cfg = plan, cfg
        self.w_frac_res = 1.0         # fraction of layer weights resident in HBM
        self.kv_frac_res = 1.0        # fraction of each sequence's KV resident in HBM
        self.fetchers = plan.replicas if (cfg.partitioned_fetch and cfg.weights != "none") else 1
        self._xcache: dict = {}
        self._mem = None

    # ---- placement -------------------------------------------------------------------------
    def place(self, batch: int, context: int, prefill_tokens: int) -> None:
        """Decide what stays in HBM: the given fractions, or with 'auto' the weights first (as much
        as fits next to the non-offloaded KV), then as much of the offloaded KV as still fits."""
        from sim.techniques.inference import reserved_bytes, weight_bytes, workspace_bytes
        p, c = self.p, self.cfg
        dev = p.system.device
        w = weight_bytes(p)
        kv = batch * p.kv.seq_bytes(context)
        ws = workspace_bytes(p, prefill_tokens, batch)
        avail = dev.hbm_bytes - reserved_bytes(p) - ws - w["embedding_and_head"]
        if c.weights != "none":
            avail -= 2 * w["per_layer"]                     # double buffer for the streamed layers
            need_kv = kv if c.kv_cache == "none" else 0.0
            if c.resident_weights == "auto":
                self.w_frac_res = min(1.0, max(0.0, (avail - need_kv) / w["layers"]))
            else:
                self.w_frac_res = c.resident_weights
        w_res = self.w_frac_res * w["layers"]
        if c.kv_cache != "none":
            if c.resident_kv == "auto":
                self.kv_frac_res = min(1.0, max(0.0, (avail - w_res) / kv)) if kv > 0 else 1.0
            else:
                self.kv_frac_res = c.resident_kv
        kv_res = self.kv_frac_res * kv
        hbm = w["embedding_and_head"] + w_res + kv_res + ws + reserved_bytes(p)
        if c.weights != "none":
            hbm += 2 * w["per_layer"]
        off_w = (1 - self.w_frac_res) * w["layers"]
        off_kv = (kv - kv_res) * p.replicas
        host = (off_w if c.weights == "cpu" else 0.0) + (off_kv if c.kv_cache == "cpu" else 0.0)
        nvme = (off_w if c.weights == "nvme" else 0.0) + (off_kv if c.kv_cache == "nvme" else 0.0)
        use = {"weights_hbm": w["embedding_and_head"] + w_res, "weights_offloaded": off_w,
               "kv_cache_hbm": kv_res, "kv_cache_offloaded": kv - kv_res, "activations": ws,
               "reserved": reserved_bytes(p), "stream_buffers": hbm - w["embedding_and_head"] - w_res - kv_res - ws - reserved_bytes(p),
               "resident_weight_fraction": self.w_frac_res, "resident_kv_fraction": self.kv_frac_res}
        host_dev = p.system.host
        fits = hbm <= dev.hbm_bytes and host <= host_dev.dram_bytes and nvme <= host_dev.nvme_bytes
        self._mem = ({"hbm": hbm, "host": host, "nvme": nvme}, use, fits)
        self._w_layer = w["per_layer"]

    def memory(self, w, kv, ws, res):
        return self._mem

    # ---- per-layer fetch ---------------------------------------------------------------------
    def _fetch(self, src: str, per_gpu: float, total: float) -> Agg:
        """Time to bring ``per_gpu`` bytes to each GPU when all GPUs together read ``total`` bytes
        from ``src`` (cpu|nvme): the legs pipeline, so the slower one sets the time."""
        key = (src, round(per_gpu), round(total))
        if key in self._xcache:
            return self._xcache[key]
        sysm = self.p.system
        pcie = price([Transfer("host", "hbm", per_gpu, name="pcie_h2d")], sysm)
        if src != "nvme":
            self._xcache[key] = pcie
            return pcie
        nvme = price([Transfer("nvme", "host", total, name="nvme_read")], sysm)
        hi, lo = (pcie, nvme) if pcie.time >= nvme.time else (nvme, pcie)
        ov = 1.0 if self.cfg.gds else eff(sysm.device, "offload_staging_overlap")
        a = Agg().add(hi)
        a.time += (1 - ov) * lo.time              # the un-overlapped part of the shorter leg
        a.bounds[next(iter(lo.bounds))] = a.bounds.get(next(iter(lo.bounds)), 0.0) + (1 - ov) * lo.time
        self._xcache[key] = a
        return a

    def layer_fetch(self, n_decode: int, decode_ctx: float, prefills) -> Agg:
        """Fetch time of one layer's non-resident weights and KV for one step."""
        p, c = self.p, self.cfg
        out = Agg()
        if c.weights != "none" and self.w_frac_res < 1.0:
            wl = self._w_layer * (1 - self.w_frac_res)
            n = self.fetchers
            out.add(self._fetch(_SRC[c.weights], wl / n, wl))
            if n > 1:
                out.add(price([Collective("all_gather", wl, n, name="offload_all_gather")], p.system))
        if c.kv_cache != "none" and self.kv_frac_res < 1.0 and n_decode:
            per_tok_layer = p.kv.bytes_per_token / p.kv.shards / p.layers_local
            ctx = decode_ctx if c.kv_fetch_tokens is None else min(decode_ctx, c.kv_fetch_tokens)
            if p.kv_budget:
                ctx = min(ctx, p.kv_budget)
            kv_b = n_decode * ctx * (1 - self.kv_frac_res) * per_tok_layer
            out.add(self._fetch(_SRC[c.kv_cache], kv_b, kv_b * p.replicas))
        return out

    def stage(self, layer: Agg, L: int, n_decode, decode_ctx, prefills) -> Agg:
        """L layers with the fetch overlapped (prefetch) or serialised with compute."""
        X = self.layer_fetch(n_decode, decode_ctx, prefills)
        C = layer.time
        if X.time == 0.0:
            return layer.scaled(L)
        if self.cfg.prefetch:
            total = X.time + (L - 1) * max(C, X.time) + C
        else:
            total = L * (C + X.time)
        out = layer.scaled(L)
        extra = total - out.time
        bound = max(X.bounds, key=X.bounds.get) if X.bounds else "pcie"
        out.time = total
        out.bounds[bound] = out.bounds.get(bound, 0.0) + extra
        out.parts["offload_fetch_exposed"] = out.parts.get("offload_fetch_exposed", 0.0) + extra
        out.kernels += L * X.kernels
        return out

    def describe(self) -> dict:
        return {"weights": self.cfg.weights, "kv_cache": self.cfg.kv_cache, "prefetch": self.cfg.prefetch,
                "resident_weight_fraction": self.w_frac_res, "resident_kv_fraction": self.kv_frac_res,
                "fetchers": self.fetchers}


def min_tokens_compute_bound(plan: Plan, offload: OffloadModel, lo: int = 1, hi: int = 1 << 20) -> int:
    """Fewest tokens per forward step for which a layer's compute hides its weight fetch (C >= X):
    the batch at which streamed-weight inference turns compute-bound."""
    from sim.techniques.inference import StepModel
    sm = StepModel(plan)
    X = offload.layer_fetch(0, 0, ()).time

    def C(t):
        return sm.layer_dense(t).time + sm.layer_attn(t, 1, 1).time

    if C(hi) < X:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if C(mid) >= X else (mid, hi)
    return hi
