"""End-to-end training rows -> ``training`` scenarios: Megatron-LM 2021 (PTD-P on Selene),
Megatron-Core on DGX H100, and the FlashAttention repo's GPT-3 runs. Each records the layout,
schedule, recompute and kernel choices the source's code defaults imply, since the rows state
only part of a run's configuration.
"""
from __future__ import annotations

import re

from .common import cluster, gpt_model

# (megatron/arguments.py: --attention-dropout 0.1, --hidden-dropout 0.1, masked-softmax fusion on,
# fp16_lm_cross_entropy off): core attention with the fused scale-mask-softmax kernel, dropout 0.1,
# the vocab-parallel cross entropy on output.float().
MEGATRON_KERNELS = {"attn_impl": "megatron", "dropout": 0.1, "cross_entropy": "megatron"}
MEGATRON_KERNELS_NOTE = ("Megatron argument defaults: core attention (baddbmm, fused scale-mask-softmax, bmm; "
                         "attn_impl megatron), attention and hidden dropout 0.1, vocab-parallel cross entropy in "
                         "fp32 (cross_entropy megatron)")

MEGATRON_2021_ZOO = {"76B": "megatron-76b", "145B": "megatron-145b", "310B": "megatron-310b",
                     "530B": "megatron-530b", "1T": "megatron-1t"}


def megatron_2021(r, notes):
    size = re.match(r"GPT (\w+) ", r["model"]).group(1)
    layers = int(re.search(r"(\d+) layers", r["model"]).group(1))
    mp = int(re.search(r"=(\d+);", r["parallelism"]).group(1))
    dp = int(re.search(r"DP=(\d+)", r["parallelism"]).group(1))
    tp, pp = 8, mp // 8
    per_stage = layers // pp
    v = min(d for d in range(2, per_stage + 1) if per_stage % d == 0)
    notes += [f"TP 8 x PP {pp} (the row gives TP x PP = {mp}; TP 8 per Narayanan et al. 2021 Table 1)",
              f"interleaved schedule with {v} virtual stages assumed (smallest split of the {per_stage} "
              "layers per stage); micro-batch size not in the row, 1 assumed",
              "full activation recomputation (counted in the row's TFLOP/s: hardware FLOPs)",
              "Megatron-LM 2021 reduced data-parallel gradients after the backward pass (no overlap)",
              "Selene: DGX A100 nodes, one 200 Gb/s HDR InfiniBand adapter per GPU; vocab 51200, seq 2048",
              MEGATRON_KERNELS_NOTE + " (the 2021 code predates FlashAttention)"]
    wl = {"kind": "training", "global_batch": int(r["global_batch"]), "micro_batch": 1,
          "seq_len": int(r["seq_len"]), "precision": "fp16",
          "parallel": {"tp": tp, "pp": pp, "dp": dp, "schedule": "interleaved", "virtual_stages": v,
                       "zero": 0, "overlap_grad_reduce": False},
          "recompute": "full", **MEGATRON_KERNELS}
    scen = {"hardware": "A100-SXM4-80GB", "host": "DGX-A100", "cluster": cluster(int(r["num_gpus"]), 200),
            "model": MEGATRON_2021_ZOO[size], "workload": wl}
    return "training", scen, None, "hfu_tflops_per_gpu", float(r["value"])


def megatron_core(r, notes):
    m = re.search(r"hidden (\d+), (\d+) layers, (\d+) heads", r["model"])
    hidden, layers, heads = (int(x) for x in m.groups())
    par = dict(re.findall(r"(TP|PP|DP)=(\d+)", r["parallelism"]))
    notes += ["model inline from the row: vocab 131072 (README); Megatron GPT block assumed (4h GeLU MLP, "
              "MHA, LayerNorm, biases, learned positions, tied output)",
              "precision bf16 assumed (README does not state it); micro-batch size not stated, 1 assumed",
              "recompute not stated, none assumed",
              "README: --overlap-grad-reduce --overlap-param-gather and --tp-comm-overlap; Megatron-LM's "
              "argument checks accept --overlap-param-gather only with --use-distributed-optimizer (zero 1) and "
              "--tp-comm-overlap only with --sequence-parallel (on when tp > 1)",
              "dropout and loss fusion not stated: Megatron-LM argument defaults (--attention-dropout and "
              "--hidden-dropout 0.1; --cross-entropy-loss-fusion off, so the vocab-parallel cross entropy runs "
              "on logits.float(): cross_entropy megatron); attention: Transformer Engine's fused kernel, taken "
              "as flash2",
              "gradients accumulated and reduce-scattered in fp32: megatron/training/arguments.py sets "
              "accumulate_allreduce_grads_in_fp32 for bf16 (grad_reduce_in_fp32)",
              "pipeline schedule not stated, 1F1B assumed; DGX H100: 400 Gb/s NDR per GPU",
              "metric: model FLOPs per GPU (MFU numerator), no recompute counted"]
    tp = int(par["TP"])
    wl = {"kind": "training", "global_batch": int(r["global_batch"]), "micro_batch": 1,
          "seq_len": int(r["seq_len"]), "precision": "bf16",
          "parallel": {"tp": tp, "pp": int(par["PP"]), "dp": int(par["DP"]), "schedule": "1f1b",
                       "zero": 1, "overlap_grad_reduce": True, "overlap_param_gather": True,
                       "tp_comm_overlap": True, "sequence_parallel": tp > 1, "grad_reduce_in_fp32": True},
          "recompute": "none", "dropout": 0.1, "cross_entropy": "megatron"}
    scen = {"hardware": "H100-SXM5-80GB", "host": "DGX-H100", "cluster": cluster(int(r["num_gpus"]), 400),
            "model": gpt_model(layers, hidden, heads, 131072, 4096), "workload": wl}
    return "training", scen, None, "tflops_per_gpu", float(r["value"])


# FlashAttention repo GPT-3 runs: batches from training/configs/experiment/pile/*.yaml
# (gpt3s-flash, gpt3l-flash, gpt3xl-flash) at 80 GB per GPU; dims are the zoo's GPT-3 entries.
FA_GPT = {"GPT3-125M": ((12, 768, 12), 32, 256, 0, "gpt3s-flash"),
          "GPT3-760M": ((24, 1536, 16), 16, 256, 1, "gpt3l-flash"),
          "GPT3-1.3B": ((24, 2048, 16), 8, 512, 1, "gpt3xl-flash")}
FA_VOCAB = 50264          # GPT-2's 50257 padded to pad_vocab_size_multiple: 8 (gpt3s-flash.yaml)
FA_VOCAB_FORMULA = 50257  # GPT-2's vocabulary in the README's FLOP count (50264 differs by 1e-4)


def fa_flops_per_token(layers: int, hidden: int, seq: int = 2048, vocab: int = FA_VOCAB_FORMULA) -> float:
    """Model FLOPs per token as the FlashAttention README counts them: the Megatron-LM paper's formula
    (Narayanan et al. 2021, section 5.1) for a step with recomputation, 96 B s l h^2 (1 + s/6h + V/16lh),
    scaled by 3/4 (training/README.md 'Training speed'); per token, B s = 1."""
    return 72.0 * layers * hidden ** 2 * (1 + seq / (6 * hidden) + vocab / (16 * layers * hidden))


def fa_gpt(r, notes):
    (layers, hidden, heads), mb, gb, zero, cfg = FA_GPT[r["model"]]
    tok = float(r["value"]) * 1e12 * 8 / fa_flops_per_token(layers, hidden)
    notes += [f"config training/configs/experiment/pile/{cfg}.yaml of Dao-AILab/flash-attention: per-GPU batch "
              f"{mb} (80 GB GPUs), global batch {gb}, ZeRO stage {zero}, seq 2048, bf16",
              f"model: {layers} layers, hidden {hidden}, {heads} heads (the config's n_layer/n_embd/n_head); "
              f"vocab 50257 padded to {FA_VOCAB} (pad_vocab_size_multiple: 8)",
              "dropout 0.1: transformers.GPT2Config defaults (resid/embd/attn_pdrop 0.1), not overridden by the "
              "configs; FlashAttention drops inside its kernel, fused_dropout_add_ln the hidden states",
              f"metric: the row's TFLOP/s per GPU use the README's convention, Narayanan et al. 2021's "
              f"96 B s l h^2 (1 + s/6h + V/16lh) x 3/4, whose LM head is 3/4 of the model's 6 B s h V; compared "
              f"as tokens/s = value x 8 GPUs / (72 s l h^2 (1 + s/6h + V/16lh)) per sequence token "
              f"({tok / 1e3:.0f}k; the README's own table: 1310k, 245k, 169k tokens/s for 125M, 760M, 1.3B)",
              "FlashAttention (v1) kernels: the figure predates FlashAttention-2 (Dao 2023, Table 1 gives the same "
              "GPT3-1.3B 2k run as 189 TFLOP/s with FlashAttention and 196 with FlashAttention-2; its 'without "
              "FlashAttention' GPT3-2.7B 149 is this figure's Megatron-LM bar, E0034)",
              "fused kernels (fused dense, fused MLP, apex cross entropy), no activation checkpointing"]
    wl = {"kind": "training", "global_batch": gb, "micro_batch": mb, "seq_len": 2048, "precision": "bf16",
          "parallel": {"tp": 1, "pp": 1, "dp": 8, "zero": zero}, "recompute": "none", "dropout": 0.1,
          "attn_impl": "flash1"}
    scen = {"hardware": "A100-SXM4-80GB", "host": "DGX-A100", "cluster": cluster(8),
            "model": gpt_model(layers, hidden, heads, FA_VOCAB, 2048), "workload": wl}
    return "training", scen, None, "tokens_per_s", tok
