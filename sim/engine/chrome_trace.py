"""Export a timeline to the Chrome trace event format (chrome://tracing, ui.perfetto.dev).

Each task becomes one complete event (``ph: 'X'``) with ``ts``/``dur`` in microseconds,
``pid`` = the GPU (pipeline stage) and ``tid`` = the stream ("compute", "comm", "h2d" ...);
metadata events name the processes and threads so Perfetto shows "GPU 3 / compute".
"""
from __future__ import annotations

import json
from pathlib import Path

from sim.engine.graph import Timeline


def to_events(tl: Timeline) -> list[dict]:
    tids: dict[str, int] = {}
    events: list[dict] = []
    pids: set[int] = set()
    for t in tl.graph.tasks:
        lane = t.stream.split("/", 1)[-1]
        key = f"{t.pid}:{lane}"
        if key not in tids:
            tids[key] = len(tids) + 1
            events.append({"ph": "M", "name": "thread_name", "pid": t.pid, "tid": tids[key],
                           "args": {"name": lane}})
        if t.pid not in pids:
            pids.add(t.pid)
            events.append({"ph": "M", "name": "process_name", "pid": t.pid, "tid": 0,
                           "args": {"name": f"GPU {t.pid}" if t.pid >= 0 else "host"}})
        args = {"phase": t.phase}
        if t.meta:
            args.update({k: v for k, v in t.meta.items() if isinstance(v, (int, float, str))})
        events.append({"ph": "X", "name": t.name, "cat": t.phase or "task", "pid": t.pid, "tid": tids[key],
                       "ts": tl.start[t.id] * 1e6, "dur": (tl.end[t.id] - tl.start[t.id]) * 1e6, "args": args})
    return events


def to_chrome_trace(tl: Timeline) -> dict:
    return {"traceEvents": to_events(tl), "displayTimeUnit": "ms"}


def write(tl: Timeline, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(to_chrome_trace(tl)))
    return path
