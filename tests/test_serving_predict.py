"""Serving through ``gpusim predict`` (workload with ``arrival``): metrics, determinism, the
light-load limit equal to the static predictor, saturation, the KV pool and its preemptions."""
import pytest

from sim.errors import InputError
from sim.scenario import predict


def serve(arrival, hw="A100-SXM4-80GB", model="llama-2-7b", whatif=None, **wl):
    wl = {"kind": "inference", "batch": 64, "prompt_len": 256, "gen_len": 64, "arrival": arrival, **wl}
    s = {"hardware": hw, "model": model, "workload": wl}
    if whatif:
        s["whatif"] = whatif
    return predict(s)


def test_reports_percentiles_and_throughput():
    p = serve({"rate_per_s": 10, "requests": 200, "length_dist": "exponential"})
    m = p.metrics
    for k in ("ttft", "tpot", "latency"):
        assert m[f"{k}_p50_s"] <= m[f"{k}_p90_s"] <= m[f"{k}_p99_s"]
    assert m["requests_done"] == 200
    assert m["tokens_per_s"] > 0 and m["requests_per_s"] == pytest.approx(200 / m["makespan_s"])
    assert p.time_s == m["makespan_s"] and p.fits


def test_deterministic_for_a_seed():
    a = serve({"rate_per_s": 20, "requests": 150, "length_dist": "exponential", "seed": 3}).metrics
    b = serve({"rate_per_s": 20, "requests": 150, "length_dist": "exponential", "seed": 3}).metrics
    c = serve({"rate_per_s": 20, "requests": 150, "length_dist": "exponential", "seed": 4}).metrics
    assert a == b and a != c


def test_light_load_matches_the_static_single_request():
    # one request at a time: TTFT = one prefill, TPOT = one decode step (interpolated costs within 2%)
    static = predict({"hardware": "A100-SXM4-80GB", "model": "llama-2-7b",
                      "workload": {"kind": "inference", "batch": 1, "prompt_len": 256, "gen_len": 64}}).metrics
    m = serve({"rate_per_s": 0.2, "requests": 20, "seed": 1}).metrics
    assert m["ttft_p50_s"] == pytest.approx(static["ttft_s"], rel=0.02)
    assert m["tpot_p50_s"] == pytest.approx(static["tpot_s"], rel=0.02)


def test_throughput_saturates_and_queueing_grows_ttft():
    lo = serve({"rate_per_s": 2, "requests": 200}).metrics
    hi = serve({"rate_per_s": 1000, "requests": 200}).metrics
    assert hi["tokens_per_s"] > 5 * lo["tokens_per_s"]
    assert hi["ttft_p90_s"] > 5 * lo["ttft_p90_s"]
    assert hi["mean_batch"] > lo["mean_batch"]


def test_a_small_kv_pool_preempts():
    m = serve({"requests": 300}, batch=256, prompt_len=1024, gen_len=512,
              whatif={"hbm_capacity": 0.25}).metrics           # 20 GB: 13.5 GB of weights leave ~6 GB of KV
    assert m["preemptions"] > 0 and m["requests_done"] == 300


def test_prefill_first_gives_lower_ttft_chunked_lower_tpot_tail():
    a = {"rate_per_s": 12, "requests": 300, "length_dist": "exponential", "seed": 2}
    pf = serve({**a, "scheduler": "prefill_first"}, batch=128).metrics
    ch = serve({**a, "scheduler": "chunked", "max_batched_tokens": 512}, batch=128).metrics
    assert ch["tpot_p99_s"] < pf["tpot_p99_s"]                 # Sarathi-Serve: no decode stalls behind prefills


def test_trace_file(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("arrival_s,prompt_len,gen_len\n" + "".join(f"{i * 0.1},{100 + i},{10}\n" for i in range(30)))
    m = serve({"trace": str(f)}).metrics
    assert m["requests_done"] == 30


def test_serving_with_speculation_is_refused():
    with pytest.raises(InputError, match="arrival"):
        serve({"requests": 10}, speculative={"draft_model": "gpt3-125m", "k": 3, "acceptance": 0.5})
