"""Discrete-event evaluation of a task graph (simpy).

One simpy process per stream walks that stream's tasks in order: it waits for each task's
dependencies, then for its shared resource (a ``simpy.Resource``: PCIe, NVMe, NIC, CPU ...)
when it names one, then holds for the task's duration. So overlap comes from streams running
side by side, and contention from streams queueing for the same resource; nothing is assumed.
Without shared resources the result equals ``analytical.list_schedule`` exactly (tests hold it).
"""
from __future__ import annotations

import simpy

from sim.engine.graph import Graph, Timeline


class DeadlockError(RuntimeError):
    """The graph's dependencies and stream orders form a cycle: some task can never start."""


def simulate(graph: Graph) -> Timeline:
    env = simpy.Environment()
    tasks = graph.tasks
    n = len(tasks)
    done = [env.event() for _ in range(n)]
    start = [0.0] * n
    end = [0.0] * n
    resources = {name: simpy.Resource(env, capacity=graph.capacities.get(name, 1))
                 for name in {t.resource for t in tasks if t.resource}}

    def run_stream(ids):
        for i in ids:
            t = tasks[i]
            for d in t.deps:
                ev = done[d]
                if not ev.triggered:     # already finished: no need to yield (keeps the event count low)
                    yield ev
            if t.resource is not None:
                req = resources[t.resource].request()
                yield req
                start[i] = env.now
                if t.duration > 0:
                    yield env.timeout(t.duration)
                resources[t.resource].release(req)
            else:
                start[i] = env.now
                if t.duration > 0:
                    yield env.timeout(t.duration)
            end[i] = env.now
            done[i].succeed()

    for ids in graph.streams().values():
        env.process(run_stream(ids))
    env.run()
    stuck = [tasks[i].name for i in range(n) if not done[i].triggered]
    if stuck:
        raise DeadlockError(f"{len(stuck)} tasks never ran (cyclic dependencies), first: {stuck[:3]}")
    return Timeline(graph, start, end)
