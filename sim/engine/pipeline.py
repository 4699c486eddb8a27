"""Pipeline-parallel schedules: the order each stage runs its forward and backward passes.

Three schedules, as Megatron-LM runs them (Narayanan et al., SC'21, section 2.2):
- ``gpipe``: every micro-batch forward, then every backward (Huang et al. 2019);
- ``1f1b``: p-i-1 warm-up forwards on stage i, then one forward / one backward alternating,
  then the remaining backwards (PipeDream-Flush);
- ``interleaved``: each stage holds ``v`` model chunks (virtual stages c*p+i); micro-batches
  move through the chunks in groups of p, with the warm-up length of Megatron's
  ``forward_backward_pipelining_with_interleaving``.
With uniform stage times and no communication the makespans are (m+p-1)(f+b) for gpipe and
1f1b and m(f+b) + (p-1)(f+b)/v for interleaved: bubble fractions (p-1)/(m+p-1) and
(p-1)/(v*m+p-1). ``build`` adds the schedule to a task graph; tests check those closed forms
against the discrete-event run.
"""
from __future__ import annotations

from typing import Callable, Sequence

from sim.engine.graph import Graph

SCHEDULES = ("gpipe", "1f1b", "interleaved")


def stage_order(schedule: str, p: int, m: int, v: int, i: int) -> list[tuple[str, int, int]]:
    """Order of (kind 'F'|'B', micro-batch, chunk) on stage ``i`` of ``p``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown pipeline schedule {schedule!r}; expected one of {SCHEDULES}")
    if schedule != "interleaved" and v != 1:
        raise ValueError(f"schedule {schedule!r} has one model chunk per stage; got v={v}")
    if schedule == "gpipe":
        return [("F", j, 0) for j in range(m)] + [("B", j, 0) for j in range(m)]
    if v == 1:     # 1f1b (interleaved with one chunk is the same schedule)
        w = min(p - i - 1, m)
        order = [("F", j, 0) for j in range(w)]
        for k in range(m - w):
            order += [("F", w + k, 0), ("B", k, 0)]
        order += [("B", j, 0) for j in range(m - w, m)]
        return order
    total = m * v
    if m == p:
        warm = total
    else:
        warm = min((p - i - 1) * 2 + (v - 1) * p, total)

    def ident(k, forward):
        in_group = k % (p * v)
        c = in_group // p
        if not forward:
            c = v - c - 1
        return (k // (p * v)) * p + k % p, c

    order = [("F", *ident(k, True)) for k in range(warm)]
    for k in range(total - warm):
        order.append(("F", *ident(warm + k, True)))
        order.append(("B", *ident(k, False)))
    order += [("B", *ident(k, False)) for k in range(total - warm, total)]
    return order


def build(graph: Graph, schedule: str, p: int, m: int, v: int,
          fwd: Callable[[int, int, int], float] | Sequence, bwd: Callable[[int, int, int], float] | Sequence,
          stream: str = "gpu{i}/compute", split_last: Sequence[int] | None = None) -> dict:
    """Add the schedule's compute tasks to ``graph``.

    ``fwd(i, j, c)`` / ``bwd(i, j, c)`` give the duration of micro-batch j's forward/backward on
    chunk c of stage i (or a [stage][chunk] table). Returns ``{('F'|'B', i, j, c): task id}``.
    Cross-stage dependencies: F(i,j,c) after F(i-1,j,c) (or F(p-1,j,c-1) on stage 0);
    B(i,j,c) after B(i+1,j,c) (or B(0,j,c+1) on the last stage, or its own last forward).
    ``split_last[i] = k`` emits stage i's final task as k equal consecutive pieces (so gradient
    buckets can depend on part of it); their ids are under ``('pieces', i)``.
    """
    if schedule == "interleaved" and v > 1 and m % p:
        raise ValueError(f"interleaved schedule needs micro-batches ({m}) divisible by stages ({p})")
    f = fwd if callable(fwd) else (lambda i, j, c: fwd[i][c])
    b = bwd if callable(bwd) else (lambda i, j, c: bwd[i][c])
    ids: dict = {}
    first: dict = {}
    for i in range(p):
        s = stream.format(i=i)
        order = stage_order(schedule, p, m, v, i)
        for n, (kind, j, c) in enumerate(order):
            dur = f(i, j, c) if kind == "F" else b(i, j, c)
            phase = "fwd" if kind == "F" else "bwd"
            k = split_last[i] if (split_last is not None and n == len(order) - 1) else 1
            pieces = [graph.add(f"{kind}{j}.{c}" + (f"/{q}" if k > 1 else ""), s, dur / k, phase=phase, pid=i,
                                meta={"mb": j, "chunk": c, "stage": i}) for q in range(k)]
            first[(kind, i, j, c)] = pieces[0]
            ids[(kind, i, j, c)] = pieces[-1]
            if n == len(order) - 1:
                ids[("pieces", i)] = pieces
    for key, tid in list(first.items()):
        kind, i, j, c = key
        if kind == "F":
            prev = ids[("F", i - 1, j, c)] if i > 0 else (ids[("F", p - 1, j, c - 1)] if c > 0 else None)
        else:
            if i < p - 1:
                prev = ids[("B", i + 1, j, c)]
            elif c < v - 1:
                prev = ids[("B", 0, j, c + 1)]
            else:
                prev = ids[("F", p - 1, j, v - 1)]
            graph.depend(tid, ids[("F", i, j, c)])
        if prev is not None:
            graph.depend(tid, prev)
    return ids


def bubble_fraction(schedule: str, p, m, v=1):
    """Closed-form idle share of a pipeline with uniform stages and free communication."""
    v = v if schedule == "interleaved" else 1
    return (p - 1) / (v * m + p - 1)
