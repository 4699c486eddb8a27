"""Training on B200 with the attention kernels Blackwell training runs: ``attn_impl: cudnn`` (Transformer
Engine's cuDNN fused attention) or ``flash4``, priced with FlashAttention-4's tcgen05 forward and
backward, against FA2's mma.sync; flash4 refused off Blackwell on the training field; the batch path
equal to predict for the new values."""
import pytest

from sim.errors import InputError
from sim.scenario import predict
from sim.techniques.training import evaluate_many

NUMERIC = ("iteration_time_s", "tokens_per_s", "tflops_per_gpu", "mfu", "hfu", "memory_hbm_gb")


def _sc(hw, impl, gpus=8, seq=4096, model="llama-2-7b", tp=1, mb=1, gb=32):
    return {"hardware": hw, "cluster": {"gpus": gpus, "gpus_per_node": min(gpus, 8)}, "model": model,
            "workload": {"kind": "training", "global_batch": gb, "micro_batch": mb, "seq_len": seq,
                         "precision": "bf16", "parallel": {"tp": tp, "zero": 1}, "attn_impl": impl}}


@pytest.mark.parametrize("seq", [2048, 8192])
def test_b200_training_with_cudnn_attention_faster_than_with_flash2(seq):
    """The model FLOPs are the same; only the attention kernels change, and tcgen05 at the full rate
    beats mma.sync at its Hopper-era per-SM rate in both directions."""
    c, f = predict(_sc("B200", "cudnn", seq=seq)), predict(_sc("B200", "flash2", seq=seq))
    assert c.time_s < f.time_s
    assert c.metrics["mfu"] > f.metrics["mfu"]
    # the attention's share: the difference is at most the flash2 attention time itself
    assert f.time_s - c.time_s < f.time_s


def test_cudnn_and_flash4_are_the_same_price_on_b200():
    assert predict(_sc("B200", "cudnn")).time_s == predict(_sc("B200", "flash4")).time_s


def test_cudnn_off_blackwell_is_priced_as_before():
    """On Hopper cuDNN is the FA3 design, elsewhere FA2: the training price is that of those values."""
    assert predict(_sc("H100-SXM5-80GB", "cudnn")).time_s == predict(_sc("H100-SXM5-80GB", "flash3")).time_s
    assert predict(_sc("A100-SXM4-80GB", "cudnn")).time_s == predict(_sc("A100-SXM4-80GB", "flash2")).time_s


@pytest.mark.parametrize("hw", ["H100-SXM5-80GB", "A100-SXM4-80GB"])
def test_flash4_refused_off_blackwell_naming_the_training_field(hw):
    with pytest.raises(InputError) as e:
        predict(_sc(hw, "flash4"))
    assert e.value.field == "workload.attn_impl" and "flash4" in str(e.value)


def test_batch_path_equals_predict_for_the_new_values():
    scs = [_sc("B200", "cudnn"), _sc("B200", "flash4", seq=2048, mb=2), _sc("B200", "cudnn", tp=2, gb=16),
           _sc("H100-SXM5-80GB", "cudnn"), _sc("H100-SXM5-80GB", "flash4"), _sc("A100-SXM4-80GB", "cudnn"),
           _sc("B200", "flash2")]
    df = evaluate_many(scs)
    for i, sc in enumerate(scs):
        row = df.iloc[i]
        try:
            p = predict(sc)
        except InputError as e:
            assert row["error"] == str(e), (i, sc)
            continue
        assert row["error"] == "" and row["bound"] == p.bound and bool(row["fits"]) == bool(p.fits), (i, sc)
        for k in NUMERIC:
            assert row[k] == pytest.approx(p.metrics[k], rel=1e-9), (i, k)
