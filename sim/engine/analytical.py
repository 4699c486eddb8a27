"""The analytical engine: closed forms, vectorised with numpy, plus a one-pass graph schedule.

Two things live here:
- ``list_schedule(graph)``: every task starts when its stream is free and its dependencies are
  done, ignoring shared resources (no contention). One topological pass; the discrete-event
  engine gives the same times whenever no two streams queue for one resource.
- closed forms for a training iteration (``pipeline_time``, ``overlap_exposed``,
  ``iteration_time``), written with numpy broadcasting so a sweep evaluates thousands of
  configurations in one call (see ``sim.techniques.training.evaluate_many``).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from sim.engine.graph import Graph, Timeline


def list_schedule(graph: Graph) -> Timeline:
    tasks = graph.tasks
    n = len(tasks)
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    last_on: dict[str, int] = {}
    prev_on = [-1] * n
    for t in tasks:
        p = last_on.get(t.stream)
        if p is not None:
            prev_on[t.id] = p
            succ[p].append(t.id)
            indeg[t.id] += 1
        last_on[t.stream] = t.id
        for d in t.deps:
            succ[d].append(t.id)
            indeg[t.id] += 1
    start = [0.0] * n
    end = [0.0] * n
    ready = deque(i for i in range(n) if indeg[i] == 0)
    seen = 0
    while ready:
        i = ready.popleft()
        seen += 1
        t = tasks[i]
        s = end[prev_on[i]] if prev_on[i] >= 0 else 0.0
        for d in t.deps:
            if end[d] > s:
                s = end[d]
        start[i] = s
        end[i] = s + t.duration
        for k in succ[i]:
            indeg[k] -= 1
            if indeg[k] == 0:
                ready.append(k)
    if seen != n:
        raise RuntimeError(f"{n - seen} tasks are on a dependency cycle")
    return Timeline(graph, start, end)


def chain_time(durations) -> float:
    """A chain of dependent tasks takes the sum of its durations."""
    return float(np.sum(durations))


def pipeline_time(m, p, v, s_sum, s_max):
    """Makespan of the pipelined forward+backward of all micro-batches.

    ``s_sum``/``s_max``: sum and maximum over stages of one micro-batch's forward+backward time
    on a stage (all its chunks). Uniform stages S give m*S + (p-1)*S/v: (m+p-1)*S for gpipe/1f1b
    (v=1) and the interleaved form of Narayanan et al. 2021; unequal stages pay the slowest
    stage m times and the others once each (fill and drain), divided by v when interleaved.
    """
    m, v, s_sum, s_max = (np.asarray(x, dtype=float) for x in (m, v, s_sum, s_max))
    return m * s_max + (s_sum - s_max) / v


def overlap_exposed(k, c, delta):
    """Exposed tail of k equal communication chunks (c seconds each) issued every ``delta`` seconds
    while compute runs, on one in-order comm stream: the recursion f_k = max(f_{k-1}, r_k) + c gives
    max(c, k*c - (k-1)*delta) after the last chunk is ready (c when compute hides all but the last)."""
    k, c, delta = (np.asarray(x, dtype=float) for x in (k, c, delta))
    return np.where(k > 0, np.maximum(c, k * c - (k - 1) * delta), 0.0)


def bubble(m, p, v=1):
    m, p, v = (np.asarray(x, dtype=float) for x in (m, p, v))
    return (p - 1) / (v * m + p - 1)


def training_iteration(m, v, s_sum, s_max, dp_term, sync, step_term, overhead):
    """Iteration time of the pipelined path, for arrays of configurations (numpy broadcasting).

    m micro-batches; v chunks per stage; s_sum/s_max: sum/max over stages of one micro-batch's
    forward+backward; dp_term: max over stages of (gradient-reduction tail - how much earlier that
    stage's last backward ends than stage 0's), >= 0; sync: global collectives before the step;
    step_term: slowest stage's optimizer + exposed parameter all-gather; overhead: per iteration.
    Returns (iteration time, pipeline time).
    """
    t_pipe = pipeline_time(m, None, v, s_sum, s_max)
    total = t_pipe + np.asarray(dp_term, float) + np.asarray(sync, float) + np.asarray(step_term, float) \
        + np.asarray(overhead, float)
    return total, t_pipe
