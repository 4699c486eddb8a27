"""The two engines over one task graph: closed forms where no contention exists, contention in the DES."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import analytical, chrome_trace, des, pipeline
from sim.engine.graph import Graph


def test_chain_equals_sum():
    g = Graph()
    durs = [0.5, 1.25, 0.0, 2.0, 0.75]
    prev = None
    for k, d in enumerate(durs):
        prev = g.add(f"t{k}", f"s{k % 2}", d, [prev] if prev is not None else [])
    assert des.simulate(g).makespan == pytest.approx(sum(durs))
    assert analytical.list_schedule(g).makespan == pytest.approx(analytical.chain_time(durs))


@settings(max_examples=25, deadline=None)
@given(p=st.integers(1, 8), m=st.integers(1, 24), f=st.floats(0.1, 3.0), ratio=st.floats(0.5, 3.0),
       schedule=st.sampled_from(["gpipe", "1f1b"]))
def test_gpipe_1f1b_bubble_closed_form(p, m, f, ratio, schedule):
    """Uniform stages, free communication: makespan (m+p-1)(f+b), bubble (p-1)/(m+p-1) (GPipe; Narayanan 2021)."""
    b = f * ratio
    g = Graph()
    pipeline.build(g, schedule, p, m, 1, lambda i, j, c: f, lambda i, j, c: b)
    tl = des.simulate(g)
    assert tl.makespan == pytest.approx((m + p - 1) * (f + b), rel=1e-9)
    assert 1 - m * (f + b) / tl.makespan == pytest.approx(pipeline.bubble_fraction(schedule, p, m), abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(p=st.integers(2, 6), groups=st.integers(1, 4), v=st.integers(2, 4), f=st.floats(0.1, 2.0))
def test_interleaved_bubble_closed_form(p, groups, v, f):
    """Interleaved 1F1B with v chunks: bubble (p-1)/(v*m+p-1) (Narayanan et al. 2021, section 2.2)."""
    m, b = p * groups, 2 * f
    g = Graph()
    pipeline.build(g, "interleaved", p, m, v, lambda i, j, c: f / v, lambda i, j, c: b / v)
    tl = des.simulate(g)
    assert tl.makespan == pytest.approx(m * (f + b) + (p - 1) * (f + b) / v, rel=1e-9)
    assert 1 - m * (f + b) / tl.makespan == pytest.approx(pipeline.bubble_fraction("interleaved", p, m, v), abs=1e-9)


def test_closed_form_pipeline_time_matches_des_for_uniform_stages():
    for sched, p, m, v in [("1f1b", 4, 16, 1), ("interleaved", 4, 8, 2), ("gpipe", 3, 5, 1)]:
        g = Graph()
        pipeline.build(g, sched, p, m, v, lambda i, j, c: 1.0 / v, lambda i, j, c: 2.0 / v)
        s = 3.0
        assert des.simulate(g).makespan == pytest.approx(float(analytical.pipeline_time(m, p, v, p * s, s)))


def test_1f1b_keeps_at_most_p_minus_i_microbatches_in_flight():
    p, m = 4, 10
    for i in range(p):
        inflight = peak = 0
        for kind, _, _ in pipeline.stage_order("1f1b", p, m, 1, i):
            inflight += 1 if kind == "F" else -1
            peak = max(peak, inflight)
        assert peak == min(p - i, m)


def test_list_schedule_equals_des_without_shared_resources():
    g = Graph()
    pipeline.build(g, "1f1b", 3, 6, 1, lambda i, j, c: 1.0 + 0.1 * i, lambda i, j, c: 2.0 - 0.2 * j / 6)
    for i in range(3):
        g.add("reduce", f"gpu{i}/comm", 0.7, [len(g) - 1])
    a, d = analytical.list_schedule(g), des.simulate(g)
    assert a.start == pytest.approx(d.start) and a.end == pytest.approx(d.end)


def test_shared_resource_serialises_streams():
    """Two copy streams on one PCIe link take turns: contention the closed form does not see."""
    g = Graph()
    for k in range(3):
        g.add(f"h2d{k}", "gpu0/h2d", 1.0, resource="pcie")
        g.add(f"d2h{k}", "gpu0/d2h", 1.0, resource="pcie")
    assert analytical.list_schedule(g).makespan == pytest.approx(3.0)
    assert des.simulate(g).makespan == pytest.approx(6.0)
    g.capacities["pcie"] = 2                      # a duplex link: both directions at once
    assert des.simulate(g).makespan == pytest.approx(3.0)


def test_overlap_exposed_matches_des_bucketed_reduction():
    """k buckets of c seconds, one ready every delta seconds, on one comm stream."""
    for k, c, delta in [(4, 1.0, 2.0), (4, 3.0, 1.0), (1, 2.0, 5.0), (7, 1.5, 1.5)]:
        g = Graph()
        pieces = [g.add(f"B/{q}", "gpu0/compute", delta) for q in range(k)]
        for q in range(k):
            g.add(f"ar{q}", "gpu0/comm", c, [pieces[q]])
        assert des.simulate(g).makespan - k * delta == pytest.approx(float(analytical.overlap_exposed(k, c, delta)))


def test_cycle_is_reported():
    g = Graph()
    a = g.add("a", "s0", 1.0)
    b = g.add("b", "s1", 1.0, [a])
    g.depend(a, b)
    with pytest.raises(des.DeadlockError):
        des.simulate(g)
    with pytest.raises(RuntimeError):
        analytical.list_schedule(g)


def test_negative_duration_rejected():
    with pytest.raises(ValueError):
        Graph().add("x", "s", -1.0)


def test_chrome_trace_is_perfetto_json(tmp_path):
    g = Graph()
    pipeline.build(g, "1f1b", 2, 2, 1, lambda i, j, c: 0.001, lambda i, j, c: 0.002)
    g.add("allreduce", "gpu0/comm", 0.0005, [len(g) - 1], phase="comm")
    tl = des.simulate(g)
    path = chrome_trace.write(tl, tmp_path / "t.json")
    data = json.loads(path.read_text())
    xs = [e for e in data["traceEvents"] if e["ph"] == "X"]
    assert len(xs) == len(g)
    for e, t in zip(xs, g.tasks):
        assert e["ts"] == pytest.approx(tl.start[t.id] * 1e6) and e["dur"] == pytest.approx(t.duration * 1e6)
        assert e["pid"] == t.pid
    names = {(e["pid"], e["args"]["name"]) for e in data["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    assert (0, "compute") in names and (0, "comm") in names and (1, "compute") in names


def test_interleaved_needs_divisible_microbatches():
    with pytest.raises(ValueError):
        pipeline.build(Graph(), "interleaved", 4, 6, 2, lambda *a: 1.0, lambda *a: 1.0)
