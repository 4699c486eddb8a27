"""Measure the host-side cost of eager PyTorch per kernel: the source of ``host_dispatch_s`` and
``recompute_host_overhead_s``.

A Megatron-LM style GPT layer (LayerNorm, QKV, naive attention with mask and dropout, output
projection, TorchScript-fused bias-dropout-add and bias-GeLU, autograd-function wrappers where the
tensor-parallel regions are) runs forward and backward at tiny sizes, so the arithmetic is
negligible and the time is the framework's: Python module calls, autograd, the dispatcher, the
allocator, TorchScript calls. On a CPU there is no CUDA launch (~2-5 us more per kernel on a GPU)
but the tiny kernels run inline (~1 us). Reports the least-disturbed (minimum) of several runs per
layer, and per kernel as ``sim.techniques.step`` counts kernels.
Usage: python benchmarks/probe_eager_dispatch.py
"""
from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

H, A, S, B = 64, 4, 16, 1


@torch.jit.script
def bias_dropout_add(x, bias, residual, prob: float):
    return residual + F.dropout(x + bias, p=prob, training=True)


@torch.jit.script
def bias_gelu(bias, y):
    x = bias + y
    return x * 0.5 * (1.0 + torch.tanh(0.79788456 * x * (1 + 0.044715 * x * x)))


class Region(torch.autograd.Function):
    """Stands for Megatron's copy-to / reduce-from tensor-parallel region functions (identity at tp=1)."""
    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, g):
        return g


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(H), nn.LayerNorm(H)
        self.qkv, self.proj = nn.Linear(H, 3 * H), nn.Linear(H, H, bias=False)
        self.up, self.down = nn.Linear(H, 4 * H, bias=False), nn.Linear(4 * H, H, bias=False)
        self.pb, self.ub, self.db = (nn.Parameter(torch.zeros(n)) for n in (H, 4 * H, H))

    def forward(self, x):
        q, k, v = self.qkv(Region.apply(self.ln1(x))).view(S, B * A, 3 * H // A).transpose(0, 1).split(H // A, -1)
        scores = torch.baddbmm(torch.empty(B * A, S, S), q, k.transpose(1, 2), beta=0.0, alpha=0.125)
        p = F.dropout(F.softmax(scores.masked_fill(torch.ones(S, S, dtype=torch.bool).triu(1), -1e4), -1), 0.1)
        ctx = torch.bmm(p, v).transpose(0, 1).contiguous().view(S, B, H)
        x = bias_dropout_add(Region.apply(self.proj(ctx)), self.pb, x, 0.1)
        u = bias_gelu(self.ub, self.up(Region.apply(self.ln2(x))))
        return bias_dropout_add(Region.apply(self.down(u)), self.db, x, 0.1)


def modelled_kernels(recompute: bool) -> int:
    """Kernels per layer the training model charges host time for (same layer)."""
    from sim.models import load_model
    from sim.techniques.layers import layer_forward_ops
    from sim.techniques.step import eager_kernels
    m = load_model({"layers": 1, "hidden": H, "heads": A, "ffn": 4 * H, "vocab": 1000, "norm": "layernorm",
                    "bias": "all", "position_embedding": "learned", "seq_len": S})
    n_f, n_b = eager_kernels(layer_forward_ops(m, B, S, S, attn_impl="naive", dtype="fp16"), 2, True, True, m)
    return 2 * n_f + n_b if recompute else n_f + n_b


def main(layers: int = 12, reps: int = 30, runs: int = 5) -> None:
    torch.set_num_threads(1)
    stack = nn.ModuleList(Layer() for _ in range(layers))
    x0 = torch.randn(S, B, H, requires_grad=True)

    def step(ckpt):
        x = x0
        for layer in stack:
            x = checkpoint(layer, x, use_reentrant=True) if ckpt else layer(x)   # Megatron's reentrant kind
        x.sum().backward()

    per = {}
    for ckpt in (False, True):
        for _ in range(10):
            step(ckpt)
        best = float("inf")
        for _ in range(runs):
            t = time.perf_counter()
            for _ in range(reps):
                step(ckpt)
            best = min(best, (time.perf_counter() - t) / reps / layers)
        per[ckpt] = best
        n = modelled_kernels(ckpt)
        print(f"recompute={'full' if ckpt else 'none'}: {best * 1e3:.3f} ms per layer forward+backward (min of "
              f"{runs} runs), {n} modelled kernels: {best / n * 1e6:.1f} us each")
    d = per[False] / modelled_kernels(False)
    n_f = modelled_kernels(True) - modelled_kernels(False)
    print(f"checkpoint overhead beyond re-issuing the forward's kernels: "
          f"{(per[True] - per[False] - n_f * d) * 1e3:.3f} ms per layer")


if __name__ == "__main__":
    main()
