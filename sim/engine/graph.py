"""The task graph: what one training iteration (or any workload) is made of, before timing.

A task is a piece of work with a known duration (priced by ``sim.cost``) that runs on one
*stream*: an in-order executor such as a GPU's compute stream, its communication stream, a
copy engine or the host CPU. Tasks on one stream run in the order they were added (as kernels
on one CUDA stream do); a task also waits for its ``deps`` (tasks on other streams). A task may
further name a shared ``resource`` (a PCIe switch, the node's NVMe array, a NIC): tasks of
different streams that name the same resource take turns on it, which is where contention
comes from. Both engines read this one structure: ``sim.engine.analytical.list_schedule``
(no contention, one pass) and ``sim.engine.des.simulate`` (simpy, contention included).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Task:
    id: int
    name: str
    stream: str                 # in-order executor, e.g. "gpu0/compute", "gpu0/comm", "cpu"
    duration: float             # seconds
    deps: list[int]             # ids of tasks that must finish first
    resource: str | None = None  # shared capacity-limited resource contended across streams
    phase: str = ""             # fwd | bwd | recompute | optimizer | comm | p2p | offload | overhead
    pid: int = 0                # process id in a trace: the GPU (pipeline stage) it runs on
    flops: float = 0.0
    meta: dict | None = None    # micro-batch, chunk, layer ... (for traces and tests)


@dataclass
class Graph:
    tasks: list[Task] = field(default_factory=list)
    capacities: dict[str, int] = field(default_factory=dict)   # resource -> concurrent users (default 1)

    def add(self, name: str, stream: str, duration: float, deps=(), *, resource: str | None = None,
            phase: str = "", pid: int = 0, flops: float = 0.0, meta: dict | None = None) -> int:
        """Append a task (it runs after every task already on its stream); return its id."""
        if duration < 0 or duration != duration:
            raise ValueError(f"task '{name}': duration must be >= 0 s, got {duration}")
        tid = len(self.tasks)
        self.tasks.append(Task(tid, name, stream, float(duration), list(deps), resource, phase, pid, flops, meta))
        return tid

    def depend(self, tid: int, *deps: int) -> None:
        """Add dependencies to an existing task (schedules are easier to build in two passes)."""
        self.tasks[tid].deps.extend(d for d in deps if d is not None)

    def streams(self) -> dict[str, list[int]]:
        """Task ids per stream, in execution order."""
        out: dict[str, list[int]] = {}
        for t in self.tasks:
            out.setdefault(t.stream, []).append(t.id)
        return out

    def __len__(self) -> int:
        return len(self.tasks)

    def total(self, phase: str | None = None, stream_prefix: str = "") -> float:
        """Sum of durations (of one phase / streams starting with a prefix): busy time, not makespan."""
        return sum(t.duration for t in self.tasks
                   if (phase is None or t.phase == phase) and t.stream.startswith(stream_prefix))


@dataclass
class Timeline:
    """When each task ran. ``start[i]``/``end[i]`` are seconds from the start of the graph."""
    graph: Graph
    start: list[float]
    end: list[float]

    @property
    def makespan(self) -> float:
        return max(self.end, default=0.0)

    def busy(self, stream: str) -> float:
        return sum(t.duration for t in self.graph.tasks if t.stream == stream)

    def stream_end(self, stream: str) -> float:
        return max((self.end[t.id] for t in self.graph.tasks if t.stream == stream), default=0.0)
