"""The serving DES on synthetic step times: closed forms for a single server, conservation of
tokens, KV-pool limits and preemption, determinism for a seed, Poisson arrivals."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sim.engine import serving as S


def const(tau):
    return lambda n_dec, ctx, chunks: tau


def run(reqs, step=const(0.01), **kw):
    args = dict(max_seqs=64, max_batched_tokens=4096, kv_blocks=10_000, block_size=16, scheduler="chunked")
    args.update(kw)
    return S.simulate(reqs, step, **args)


@pytest.mark.parametrize("scheduler", ["chunked", "prefill_first"])
def test_single_request_closed_form(scheduler):
    # one prefill step makes the first token, then gen-1 decode steps of tau each
    tau, gen = 0.02, 10
    r = S.Request(0, 0.0, 100, gen)
    res = run([r], const(tau), scheduler=scheduler)
    assert r.first == pytest.approx(tau)
    assert r.finish == pytest.approx(gen * tau)
    m = res.metrics()
    assert m["ttft_s"] == pytest.approx(tau)
    assert m["tpot_s"] == pytest.approx(tau)
    assert m["tokens_per_s"] == pytest.approx(gen / (gen * tau))


def test_one_sequence_at_a_time_is_sequential():
    # max_seqs=1: requests are served one after another, makespan = n * gen * tau
    n, gen, tau = 5, 4, 0.01
    reqs = [S.Request(i, 0.0, 32, gen) for i in range(n)]
    res = run(reqs, const(tau), max_seqs=1)
    assert res.makespan_s == pytest.approx(n * gen * tau)
    assert [r.id for r in sorted(reqs, key=lambda r: r.finish)] == list(range(n))   # FCFS


def test_batching_amortises_the_step():
    # all at once with room for all: every step serves everyone; makespan = gen * tau
    n, gen, tau = 32, 8, 0.01
    res = run([S.Request(i, 0.0, 16, gen) for i in range(n)], const(tau), max_seqs=n)
    assert res.makespan_s == pytest.approx(gen * tau)
    assert res.metrics()["tokens_per_s"] == pytest.approx(n / tau)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 1000), blocks=st.integers(40, 400),
       sched=st.sampled_from(["chunked", "prefill_first"]), budget=st.integers(64, 2048))
def test_every_token_is_generated_once_and_pages_are_returned(n, seed, blocks, sched, budget):
    reqs = S.make_requests(n, 20.0, 60, 20, "exponential", seed=seed)
    res = run(reqs, lambda nd, c, ch: 1e-3 + 1e-5 * (nd + sum(a * q for a, q, _ in ch)),
              kv_blocks=blocks, scheduler=sched, max_batched_tokens=budget)
    done = [r for r in reqs if r.finish is not None]
    assert len(done) + res.rejected == n
    for r in done:
        assert r.generated == r.gen
        assert r.arrival <= r.first <= r.finish
        assert r.blocks == 0
    m = res.metrics()
    if done:
        assert m["ttft_p50_s"] <= m["ttft_p90_s"] <= m["ttft_p99_s"]
        assert m["latency_p50_s"] <= m["latency_p99_s"]


def test_a_small_kv_pool_forces_preemption_but_everything_finishes():
    reqs = [S.Request(i, 0.0, 64, 200) for i in range(16)]
    res = run(reqs, kv_blocks=120, max_seqs=16)          # 16 x (64+200)/16 = 264 pages wanted, 120 exist
    assert res.preemptions > 0
    assert all(r.generated == r.gen for r in reqs)


def test_a_request_larger_than_the_pool_is_rejected():
    res = run([S.Request(0, 0.0, 10_000, 10), S.Request(1, 0.0, 10, 10)], kv_blocks=100)
    assert res.rejected == 1
    assert res.metrics()["requests_done"] == 1


def test_deterministic_for_a_seed():
    def go(seed):
        reqs = S.make_requests(300, 30.0, 200, 100, "exponential", seed=seed)
        return run(reqs, lambda nd, c, ch: 2e-3 + 1e-6 * nd * c + 2e-5 * sum(a * q for a, q, _ in ch),
                   kv_blocks=1500).metrics()
    assert go(7) == go(7)
    assert go(7) != go(8)


def test_poisson_arrivals_have_the_requested_rate():
    reqs = S.make_requests(20_000, 5.0, 10, 10, seed=3)
    gaps = np.diff([r.arrival for r in reqs])
    assert gaps.mean() == pytest.approx(1 / 5.0, rel=0.03)
    assert gaps.std() == pytest.approx(1 / 5.0, rel=0.05)          # exponential: std = mean


def test_length_distributions_keep_their_mean():
    for dist in ("fixed", "exponential", "uniform", "normal"):
        reqs = S.make_requests(20_000, None, 300, 100, dist, cv=0.3, seed=1)
        assert np.mean([r.prompt for r in reqs]) == pytest.approx(300, rel=0.03)
        assert all(r.arrival == 0.0 for r in reqs[:5])


def test_light_load_ttft_is_one_prefill_step():
    # arrivals far apart: nobody queues, TTFT = the prefill step
    reqs = S.make_requests(50, 0.5, 100, 5, seed=0)
    m = run(reqs, const(0.01)).metrics()
    assert m["ttft_p50_s"] == pytest.approx(0.01)
    assert m["ttft_p99_s"] <= 0.01 + 0.01            # at worst it waits for one step in flight


def test_replicas_share_a_saturating_load():
    def go(k):
        reqs = [S.Request(i, 0.0, 32, 50) for i in range(64)]
        return run(reqs, const(0.01), max_seqs=8, replicas=k).metrics()["tokens_per_s"]
    assert go(2) == pytest.approx(2 * go(1), rel=0.02)


def test_trace_file(tmp_path):
    p = tmp_path / "trace.csv"
    p.write_text("arrival_s,prompt_len,gen_len\n0.5,10,3\n0.0,20,2\n")
    reqs = S.load_trace(str(p))
    assert [(r.arrival, r.prompt, r.gen) for r in reqs] == [(0.0, 20, 2), (0.5, 10, 3)]
    res = run(reqs)
    assert res.metrics()["requests_done"] == 2


def test_lengths_do_not_depend_on_the_arrival_rate():
    a = S.make_requests(100, None, 200, 100, "exponential", seed=5)
    b = S.make_requests(100, 3.0, 200, 100, "exponential", seed=5)
    assert [(r.prompt, r.gen) for r in a] == [(r.prompt, r.gen) for r in b]
