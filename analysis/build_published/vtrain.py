"""vTrain rows (vtrain_single_node.csv, one Megatron-DeepSpeed node of 8 A100) -> ``training``
scenarios: 1440 single-node layouts sharing one set of assumptions, written once in
``VTRAIN_NOTES`` rather than per row.
"""
from __future__ import annotations

from .common import cluster, gpt_model
from .training import MEGATRON_KERNELS, MEGATRON_KERNELS_NOTE

VTRAIN_NOTES = ("vTrain single-node ground truth (Megatron-DeepSpeed, one node of 8 A100 with NVLink); "
                "A100 memory size not stated, A100-SXM4-80GB assumed; Megatron GPT with vocab 50257, 4h MLP, "
                "learned positions, tied output; fp16 mixed precision; activation checkpointing on (full recompute); 1F1B; "
                "gradient all-reduce not overlapped with backward (bucketing off); " + MEGATRON_KERNELS_NOTE +
                " (vTrain's model code src/model/gpt_modeling.py: baddbmm, FusedScaleMaskSoftmax, dropout 0.1; no "
                "FlashAttention in its configs); vocabulary unpadded, split vocab_size // tp per rank as vTrain's "
                "ShardedGptEmbeddings/ShardedGptLogit do (50257, 25128, 12564, 6282 rows), so the model's vocab is "
                "tp * (50257 // tp); Megatron's 128*tp padding would align every split, while the measured "
                "per-sequence LM-head cost is low only at tp 2, the one split that is a multiple of 8")


def map_vtrain(r: dict, n: int):
    gpus, gb, mb, hidden, heads, layers, seq, tp, dp, pp = (int(r[c]) for c in VTRAIN_COLS)
    wl = {"kind": "training", "global_batch": gb, "micro_batch": mb, "seq_len": seq, "precision": "fp16",
          "parallel": {"tp": tp, "pp": pp, "dp": dp, "schedule": "1f1b", "zero": 0, "overlap_grad_reduce": False},
          "recompute": "full", **MEGATRON_KERNELS}
    scen = {"hardware": "A100-SXM4-80GB", "host": "DGX-A100", "cluster": cluster(gpus),
            "model": gpt_model(layers, hidden, heads, tp * (VTRAIN_VOCAB // tp), seq),
            "workload": wl}
    return f"V{n:04d}", "training_single_node", scen, "iteration_time_s", float(r["iteration time (ms)"]) * 1e-3


VTRAIN_VOCAB = 50257
VTRAIN_COLS = ("# GPUs", "global batch", "micro batch", "hidden size", "attention heads", "# layers",
               "sequence length", "tensor parallelism", "data parallelism", "pipeline parallelism")
