"""The training kind's batch path (``evaluate_many`` / ``evaluate_table``, numpy arrays) against the scalar
path (``sim.scenario.predict``, one configuration at a time): the same numbers to 1e-9 relative, the same
``fits`` and ``bound``, the same error for a configuration that is not valid. Samples cover every knob of
the kind; rows the arrays do not take (bad types, failed rules, ``engine: des``) must come back exactly
as ``predict`` gives them."""
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.errors import InputError
from sim.scenario import predict
from sim.techniques.training import evaluate_many
from sim.techniques.training_batch import evaluate_table

GPT = {"layers": 8, "hidden": 512, "heads": 8, "ffn": 2048, "vocab": 1000, "norm": "layernorm", "bias": "all",
       "position_embedding": "learned", "seq_len": 512}
MOE = {**GPT, "experts": 4, "top_k": 2, "vocab": 1003, "tied_embeddings": True}
LLAMA = {"layers": 6, "hidden": 512, "heads": 8, "kv_heads": 2, "ffn": 1376, "vocab": 1000, "gated_mlp": True,
         "seq_len": 512}
BIG = {"layers": 32, "hidden": 4096, "heads": 32, "ffn": 16384, "vocab": 50304, "seq_len": 2048}   # 6.6B: fits
# only sharded or offloaded on 24-80 GB
NUMERIC = ("iteration_time_s", "tokens_per_s", "tflops_per_gpu", "hfu_tflops_per_gpu", "mfu", "hfu",
           "bubble_fraction", "exposed_comm_s", "memory_hbm_gb", "memory_host_gb", "memory_nvme_gb")


def random_scenario(R: random.Random) -> dict:
    """A training scenario with every knob drawn; many are invalid on purpose (the kind must reject
    them the same way on both paths)."""
    gpus = R.choice([1, 2, 4, 8, 16])
    model = R.choice([GPT, MOE, LLAMA, BIG])
    tp, pp, sp = R.choice([1, 2, 4]), R.choice([1, 2, 4]), R.choice([1, 1, 2])
    if tp * pp * sp > gpus:
        tp, pp, sp = 1, 1, 1
    dp = gpus // (tp * pp * sp)
    mb = R.choice([1, 2, 4])
    par = {"tp": tp, "pp": pp, "sp": sp, "zero": R.choice([0, 0, 1, 2, 3]) if pp == 1 else R.choice([0, 1]),
           "schedule": R.choice(["1f1b", "gpipe", "interleaved"]), "sp_mode": R.choice(["ulysses", "ring"]),
           "sequence_parallel": R.random() < .5, "ep": R.choice([1, 2]) if model is MOE else 1,
           "overlap_grad_reduce": R.random() < .7, "tp_comm_overlap": R.random() < .3,
           "overlap_param_gather": R.random() < .3}
    if R.random() < .5:
        par["dp"] = dp
    if par["schedule"] == "interleaved":
        par["virtual_stages"] = R.choice([1, 2])
    wl = {"kind": "training", "global_batch": mb * dp * R.choice([1, 2, 4, 8]), "micro_batch": mb,
          "seq_len": R.choice([256, 512, 1024]), "precision": R.choice(["bf16", "fp16", "fp32", "fp8", "tf32"]),
          "parallel": par, "recompute": R.choice(["none", "selective", "full"]),
          "optimizer": R.choice(["adam", "adam", "sgd", "zo"]),
          "attn_impl": R.choice(["naive", "megatron", "flash2", "flash3"]),
          "cross_entropy": R.choice(["fused", "megatron"]), "dropout": R.choice([0.0, 0.1])}
    if R.random() < .35:
        wl["offload"] = {"optimizer": R.choice(["none", "cpu", "nvme"]),
                         "params": R.choice(["none", "cpu", "nvme"]) if par["zero"] == 3 else "none",
                         "activations": R.choice(["none", "none", "cpu", "nvme"]),
                         "delayed_param_update": R.random() < .3, "overlap_optimizer_step": R.random() < .3}
    sc = {"hardware": R.choice(["A100-SXM4-80GB", "H100-SXM5-80GB", "RTX-4090"]),
          "cluster": {"gpus": gpus, "gpus_per_node": min(gpus, 8)}, "model": model, "workload": wl,
          "parameters": R.choice(["spec", "calibrated"])}
    if R.random() < .1:
        sc["whatif"] = {"hbm_bandwidth": 2.0, "network": 0.5}
    return sc


def reference(sc: dict) -> dict:
    try:
        p = predict(sc)
    except InputError as e:
        return {"error": str(e)}
    return {**{k: p.metrics[k] for k in NUMERIC}, "fits": bool(p.fits), "bound": p.bound, "error": ""}


def assert_rows_equal(df, scenarios):
    for i, sc in enumerate(scenarios):
        ref, row = reference(sc), df.iloc[i]
        assert row["error"] == ref["error"], (i, sc)
        if ref["error"]:
            continue
        assert bool(row["fits"]) == ref["fits"] and row["bound"] == ref["bound"], (i, sc)
        for k in NUMERIC:
            assert row[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-300), (i, k, sc)


def test_batch_equals_predict_on_a_seeded_sample_covering_every_knob():
    R = random.Random(7)
    scs = [random_scenario(R) for _ in range(260)]
    df = evaluate_many(scs)
    assert len(df) == len(scs)
    valid = df["error"] == ""
    # the sample reaches every path and knob value on valid rows: pipelined and layerwise, each bound kind
    assert valid.sum() > 100 and (~valid).sum() > 20
    bounds = set(df.loc[valid, "bound"])
    assert {"pipeline_bubble", "offload_transfers", "host_optimizer"} <= bounds
    assert any(b.startswith("tensor_core") for b in bounds) and "hbm_bandwidth" in bounds
    assert df.loc[valid, "fits"].any() and not df.loc[valid, "fits"].all()
    assert_rows_equal(df, scs)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(1, 12))
def test_batch_equals_predict_on_random_batches(seed, n):
    R = random.Random(seed)
    scs = [random_scenario(R) for _ in range(n)]
    assert_rows_equal(evaluate_many(scs), scs)


def test_one_system_many_layouts_as_columns():
    """The search's form: one (hardware, cluster, model) and the layout knobs as columns."""
    top = {"hardware": "A100-SXM4-80GB", "cluster": {"gpus": 16, "gpus_per_node": 8}, "model": "gpt3-1.3b",
           "parameters": "spec"}
    base = {"kind": "training", "global_batch": 64, "seq_len": 2048, "precision": "bf16"}
    rows = []
    for tp in (1, 2, 4, 8):
        for pp in (1, 2, 4):
            for zero in (0, 1, 2, 3):
                for mb in (1, 2, 4):
                    for sched, v in (("1f1b", 1), ("interleaved", 2), ("gpipe", 1)):
                        for rc in ("none", "full"):
                            for off in ("none", "cpu"):
                                rows.append((tp, pp, 16 // (tp * pp), zero, mb, sched, v, rc, off))
    cols = dict(zip(("parallel.tp", "parallel.pp", "parallel.dp", "parallel.zero", "micro_batch", "parallel.schedule",
                     "parallel.virtual_stages", "recompute", "offload.optimizer"), map(np.array, zip(*rows))))
    df = evaluate_table(top, base, cols, len(rows))
    scs = [{**top, "workload": {**base, "micro_batch": int(r[4]), "recompute": r[7], "offload": {"optimizer": r[8]},
                                "parallel": {"tp": r[0], "pp": r[1], "dp": r[2], "zero": r[3], "schedule": r[5],
                                             "virtual_stages": r[6]}}} for r in rows]
    pick = random.Random(1).sample(range(len(rows)), 120)
    assert_rows_equal(df.iloc[pick].reset_index(drop=True), [scs[i] for i in pick])
    assert (df["error"] == "").sum() > 200


def test_rows_outside_the_arrays_come_back_as_predict_gives_them():
    """Wrong types, a missing required field, an unknown field, a failed cross-field rule, a layer shape
    whose pricing raises (FlashAttention-3 on an Ada GPU) and the discrete-event engine."""
    base = {"hardware": "A100-SXM4-80GB", "cluster": {"gpus": 8, "gpus_per_node": 8}, "model": GPT}
    wl = {"kind": "training", "global_batch": 16, "micro_batch": 2, "seq_len": 512, "precision": "bf16"}
    odd = [{**wl, "micro_batch": 2.5}, {**wl, "micro_batch": "2"}, {k: v for k, v in wl.items() if k != "precision"},
           {**wl, "recompute_mode": "full"}, {**wl, "parallel": {"tp": 2, "dp": 2}},
           {**wl, "parallel": {"sequence_parallel": 1}}, {**wl, "engine": "des", "parallel": {"pp": 2}},
           {**wl, "global_batch": 30}, wl]
    scs = [{**base, "workload": w} for w in odd]
    scs.append({**base, "hardware": "RTX-4090", "workload": {**wl, "attn_impl": "flash3"}})
    scs.append({**base, "hardware": "no-such-gpu", "workload": wl})
    df = evaluate_many(scs)
    assert (df["error"] != "").sum() >= 6
    assert_rows_equal(df, scs)


def test_memory_off_gives_the_same_times_without_memory_columns():
    R = random.Random(3)
    scs = [random_scenario(R) for _ in range(40)]
    full, fast = evaluate_many(scs), evaluate_many(scs, memory=False)
    assert "memory_hbm_gb" not in fast and "fits" not in fast
    ok = full["error"] == ""
    assert np.allclose(full.loc[ok, "iteration_time_s"], fast.loc[ok, "iteration_time_s"], rtol=1e-12)
