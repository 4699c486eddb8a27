"""Measure the host-side cost of eager PyTorch per kernel: the source of ``host_dispatch_s``.

A GPT-2 style layer (LayerNorm, QKV, naive attention with mask and dropout, output projection,
bias-dropout-residual, GELU MLP) is run forward and backward at tiny sizes, so the arithmetic is
negligible and the time is the framework's: Python module calls, autograd, the dispatcher and
the allocator. Run on the CPU it has no CUDA launch (+~2-5 us per kernel on a GPU) but runs the
tiny kernels inline (~1 us). Prints the time per layer and per kernel (kernels counted by the
profiler). Usage: python benchmarks/probe_eager_dispatch.py
"""
from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile
from torch.utils.checkpoint import checkpoint

H, A, S, B = 64, 4, 16, 1


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(H), nn.LayerNorm(H)
        self.qkv, self.proj = nn.Linear(H, 3 * H), nn.Linear(H, H)
        self.up, self.down = nn.Linear(H, 4 * H), nn.Linear(4 * H, H)

    def forward(self, x):
        q, k, v = self.qkv(self.ln1(x)).view(S, B * A, 3 * H // A).transpose(0, 1).split(H // A, dim=-1)
        scores = torch.baddbmm(torch.empty(B * A, S, S), q, k.transpose(1, 2), beta=0.0, alpha=0.125)
        p = F.dropout(F.softmax(scores.masked_fill(torch.ones(S, S, dtype=torch.bool).triu(1), -1e4), -1), 0.1)
        ctx = torch.bmm(p, v).transpose(0, 1).contiguous().view(S, B, H)
        x = x + F.dropout(self.proj(ctx), 0.1)
        return x + F.dropout(self.down(F.gelu(self.up(self.ln2(x)))), 0.1)


def modelled_kernels(recompute: bool) -> tuple[int, ...]:
    """Kernels per layer the training model charges host time for (same layer, naive attention, dropout)."""
    from sim.models import load_model
    from sim.techniques.layers import layer_forward_ops
    from sim.techniques.step import eager_kernels
    m = load_model({"layers": 1, "hidden": H, "heads": A, "ffn": 4 * H, "vocab": 1000, "norm": "layernorm",
                    "bias": "all", "position_embedding": "learned", "seq_len": S})
    n_f, n_b = eager_kernels(layer_forward_ops(m, B, S, S, attn_impl="naive", dtype="fp16"), 2, True, True, m)
    return (n_f, n_f, n_b) if recompute else (n_f, n_b)


def main(layers: int = 12, reps: int = 30) -> None:
    torch.set_num_threads(1)
    stack = nn.ModuleList(Layer() for _ in range(layers))
    x0 = torch.randn(S, B, H, requires_grad=True)

    def step(ckpt):
        x = x0
        for layer in stack:
            x = checkpoint(layer, x, use_reentrant=True) if ckpt else layer(x)   # Megatron's reentrant kind
        x.sum().backward()

    for ckpt in (False, True):
        for _ in range(5):
            step(ckpt)
        t = time.perf_counter()
        for _ in range(reps):
            step(ckpt)
        per_layer = (time.perf_counter() - t) / reps / layers
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step(ckpt)
        # an op counts once: its parent is not another aten op (forward: the Python caller; backward:
        # the autograd engine's node)
        kernels = sum(1 for e in prof.events() if e.name.startswith("aten::")
                      and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")))
        kernels = max(kernels, 1) / layers
        modelled = sum(modelled_kernels(ckpt))
        print(f"recompute={'full' if ckpt else 'none'}: {per_layer * 1e3:.3f} ms per layer forward+backward, "
              f"~{kernels:.0f} top-level ops per layer ({per_layer / kernels * 1e6:.1f} us each), "
              f"{modelled} kernels as sim.techniques.step counts them ({per_layer / modelled * 1e6:.1f} us each)")


if __name__ == "__main__":
    main()
