"""Request-level serving simulation: arrivals, continuous batching, a paged KV pool, preemption.

A heap-based discrete-event loop (simpy's generality is not needed: each replica is one server
whose next event is the end of its current step, and arrivals are known up front, so a heap of
replica wake-up times is the whole event list; this keeps 10,000 requests at a few seconds).
The loop knows nothing of models or GPUs: a ``step_time(n_decode, decode_ctx_mean, prefills)``
callable prices each iteration (``sim.techniques.inference`` builds it from the cost model).

Scheduling follows vLLM (Kwon et al. 2023, "Efficient Memory Management for Large Language
Model Serving with PagedAttention"):
- ``prefill_first`` (vLLM v0): when requests wait and fit, run a prefill-only step that admits
  as many as the token budget, the sequence cap and the free pages allow; otherwise decode.
- ``chunked`` (Sarathi-Serve, Agrawal et al. 2024; vLLM v1): every step decodes all running
  sequences and fills the rest of the token budget with prefill chunks (stall-free batching).
KV pages are allocated as tokens arrive; when a decode token finds no free page the most
recently admitted sequence is preempted by recomputation (its pages freed, its prompt plus the
tokens it generated re-prefilled later), vLLM's default. Admission keeps a watermark of free
pages (vLLM: 1%) so that running sequences can grow.

Metrics (vLLM's benchmark definitions): TTFT = first token time - arrival; TPOT = (finish -
first token) / (output tokens - 1); latency = finish - arrival; throughput = output tokens over
the makespan (first arrival to last finish). Deterministic for a seed: lengths and arrivals come
from ``numpy.random.default_rng(seed)`` and ties break by request id.
"""
from __future__ import annotations

import csv
import heapq
import math
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

WATERMARK = 0.01          # vLLM BlockSpaceManager default watermark (fraction of pages kept free)


class Request:
    __slots__ = ("id", "arrival", "prompt", "gen", "done_prefill", "target", "generated", "blocks", "first",
                 "finish", "replica", "preempted")

    def __init__(self, rid: int, arrival: float, prompt: int, gen: int):
        self.id, self.arrival, self.prompt, self.gen = rid, arrival, int(prompt), int(gen)
        self.done_prefill = 0          # tokens of the (re)prefill target whose KV exists
        self.target = self.prompt      # tokens the current (re)prefill must cover
        self.generated = 0
        self.blocks = 0
        self.first = None
        self.finish = None
        self.replica = -1
        self.preempted = 0

    @property
    def context(self) -> int:
        """Cached tokens once this decode step appends the last generated token's K and V."""
        return self.prompt + self.generated

    @property
    def decoding(self) -> bool:
        return self.done_prefill >= self.target


def _lengths(rng, n: int, mean: float, dist: str, cv: float) -> np.ndarray:
    if dist == "fixed" or mean <= 1:
        x = np.full(n, mean)
    elif dist == "exponential":
        x = rng.exponential(mean, n)
    elif dist == "uniform":
        half = math.sqrt(3) * cv * mean
        x = rng.uniform(mean - half, mean + half, n)
    elif dist == "normal":
        x = rng.normal(mean, cv * mean, n)
    else:
        raise ValueError(f"unknown length distribution '{dist}'")
    return np.maximum(1, np.rint(x)).astype(int)


def make_requests(n: int, rate_per_s: float | None, prompt_mean: float, gen_mean: float,
                  dist: str = "fixed", cv: float = 0.3, seed: int = 0) -> list[Request]:
    """Poisson arrivals at ``rate_per_s`` (all at t=0 when None) with lengths drawn around the means."""
    # independent streams: the same seed draws the same lengths whatever the arrival rate
    r_arr, r_prompt, r_gen = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    if rate_per_s is None or math.isinf(rate_per_s):
        t = np.zeros(n)
    else:
        t = np.cumsum(r_arr.exponential(1.0 / rate_per_s, n))
        t -= t[0]
    p = _lengths(r_prompt, n, prompt_mean, dist, cv)
    g = _lengths(r_gen, n, gen_mean, dist, cv)
    return [Request(i, float(t[i]), p[i], g[i]) for i in range(n)]


def load_trace(path: str) -> list[Request]:
    """Requests from a CSV with columns arrival_s, prompt_len, gen_len (one request per row)."""
    out = []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            out.append(Request(i, float(row["arrival_s"]), int(row["prompt_len"]), int(row["gen_len"])))
    out.sort(key=lambda r: (r.arrival, r.id))
    for i, r in enumerate(out):
        r.id = i
    return out


@dataclass
class Replica:
    idx: int
    blocks_free: int
    waiting: deque = field(default_factory=deque)
    running: list = field(default_factory=list)   # admission order (last = first to preempt)
    busy_until: float = 0.0
    steps: int = 0
    busy_s: float = 0.0
    batch_sum: int = 0

    def outstanding(self) -> int:
        return len(self.waiting) + len(self.running)


@dataclass
class ServingResult:
    requests: list
    makespan_s: float
    steps: int
    preemptions: int
    rejected: int
    busy_s: float
    mean_batch: float

    def _arr(self, attr):
        return np.array([getattr(r, attr) for r in self.requests if r.finish is not None], dtype=float)

    def metrics(self) -> dict:
        done = [r for r in self.requests if r.finish is not None]
        if not done:
            return {"requests_done": 0}
        ttft = np.array([r.first - r.arrival for r in done])
        lat = np.array([r.finish - r.arrival for r in done])
        tpot = np.array([(r.finish - r.first) / (r.gen - 1) for r in done if r.gen > 1] or [0.0])
        out_tokens = sum(r.gen for r in done)
        m = {"requests_done": len(done), "rejected": self.rejected, "preemptions": self.preemptions,
             "tokens_per_s": out_tokens / self.makespan_s, "requests_per_s": len(done) / self.makespan_s,
             "ttft_s": float(ttft.mean()), "tpot_s": float(tpot.mean()), "latency_s": float(lat.mean()),
             "makespan_s": self.makespan_s, "steps": self.steps, "mean_batch": self.mean_batch}
        for name, a in (("ttft", ttft), ("tpot", tpot), ("latency", lat)):
            for q in (50, 90, 99):
                m[f"{name}_p{q}_s"] = float(np.percentile(a, q))
        return m


def simulate(requests: list[Request], step_time, *, max_seqs: int, max_batched_tokens: int,
             kv_blocks: int, block_size: int, scheduler: str = "chunked", replicas: int = 1) -> ServingResult:
    """Run the requests to completion on ``replicas`` identical replicas (join-shortest-queue)."""
    if scheduler not in ("chunked", "prefill_first"):
        raise ValueError(f"unknown scheduler '{scheduler}'")
    bs = block_size
    reps = [Replica(i, kv_blocks) for i in range(replicas)]
    watermark = int(WATERMARK * kv_blocks)
    pending = deque(sorted(requests, key=lambda r: (r.arrival, r.id)))
    heap = [(0.0, i) for i in range(replicas)]
    heapq.heapify(heap)
    counts = {"preempt": 0, "reject": 0, "steps": 0, "batch": 0}
    busy = 0.0
    last_finish = 0.0

    def dispatch(now: float):
        while pending and pending[0].arrival <= now:
            r = pending.popleft()
            if -(-(r.prompt + r.gen) // bs) > kv_blocks - watermark:
                counts["reject"] += 1           # can never fit: vLLM refuses it too
                continue
            rep = min(reps, key=lambda x: (x.outstanding(), x.idx))
            r.replica = rep.idx
            rep.waiting.append(r)

    while heap:
        now, i = heapq.heappop(heap)
        dispatch(now)
        rep = reps[i]
        decode, prefill = [], {}
        if rep.running or rep.waiting:
            if scheduler == "prefill_first":
                _admit(rep, prefill, max_batched_tokens, max_seqs, bs, watermark, chunk=False)
                if not prefill:
                    decode = _grow_decodes(rep, bs, counts)
            else:
                decode = _grow_decodes(rep, bs, counts)
                left = max_batched_tokens - len(decode)
                for r in rep.running:            # continue partial prefills (admission order)
                    if left <= 0:
                        break
                    if r.decoding:
                        continue
                    q = min(left, r.target - r.done_prefill)
                    if not _grow(rep, r, r.done_prefill + q, bs):
                        break
                    prefill[r] = q
                    left -= q
                _admit(rep, prefill, left, max_seqs, bs, watermark, chunk=True)
        if not decode and not prefill:           # idle, or waiting requests that cannot start yet
            if pending:
                heapq.heappush(heap, (max(now, pending[0].arrival), i))
            elif rep.running or rep.waiting:     # stuck: nothing will ever free pages
                counts["reject"] += len(rep.waiting)
                rep.waiting.clear()
            continue
        n_dec = len(decode)
        ctx = sum(r.prompt + r.generated for r in decode) / n_dec if n_dec else 0.0
        groups = Counter((q, r.done_prefill + q) for r, q in prefill.items())
        dt = step_time(n_dec, ctx, [(c, q, kv) for (q, kv), c in sorted(groups.items())])
        end = now + dt
        counts["steps"] += 1
        counts["batch"] += n_dec + len(prefill)
        busy += dt
        for r in decode:
            r.generated += 1
        for r, q in prefill.items():
            r.done_prefill += q
            if r.done_prefill >= r.target:       # the (re)prefill samples the next token
                r.generated += 1
                if r.first is None:
                    r.first = end
        if any(r.generated >= r.gen for r in decode) or prefill:
            keep = []
            for r in rep.running:
                if r.decoding and r.generated >= r.gen:
                    r.finish = end
                    rep.blocks_free += r.blocks
                    r.blocks = 0
                    last_finish = max(last_finish, end)
                else:
                    keep.append(r)
            rep.running = keep
        heapq.heappush(heap, (end, i))
    first_arrival = min((r.arrival for r in requests), default=0.0)
    makespan = max(last_finish - first_arrival, 1e-12)
    return ServingResult(requests, makespan, counts["steps"], counts["preempt"], counts["reject"], busy,
                         counts["batch"] / max(counts["steps"], 1))


def _grow_decodes(rep: Replica, bs: int, counts: dict) -> list:
    """Give each decoding sequence the page its next token needs; when none is free, preempt the
    most recently admitted sequence (which may be the one asking)."""
    out, gone = [], set()
    for r in list(rep.running):
        if r.id in gone or not r.decoding:
            continue
        need = -(-r.context // bs) - r.blocks
        if need > 0:
            while need > rep.blocks_free:
                victim = rep.running[-1]
                _preempt(rep, victim)
                counts["preempt"] += 1
                gone.add(victim.id)
                if victim is r:
                    break
            if r.id in gone:
                continue
            rep.blocks_free -= need
            r.blocks += need
        out.append(r)
    return [r for r in out if r.id not in gone] if gone else out


def _preempt(rep: Replica, r: Request) -> None:
    """Recompute preemption: free the pages and re-queue at the front; the prompt and the tokens
    generated so far are re-prefilled later (vLLM's PreemptionMode.RECOMPUTE)."""
    rep.running.remove(r)
    rep.blocks_free += r.blocks
    r.blocks = 0
    r.done_prefill = 0
    r.preempted += 1
    rep.waiting.appendleft(r)


def _grow(rep: Replica, r: Request, tokens: int, bs: int) -> bool:
    need = -(-tokens // bs) - r.blocks
    if need <= 0:
        return True
    if need > rep.blocks_free:
        return False
    rep.blocks_free -= need
    r.blocks += need
    return True


def _admit(rep: Replica, prefill: dict, left: int, max_seqs: int, bs: int, watermark: int, chunk: bool) -> None:
    """Admit waiting requests in arrival order while the token budget, the sequence cap and the
    free pages (above the watermark) allow; without chunking a prompt goes whole (the first one
    even when it alone exceeds the budget, as vLLM's max_num_batched_tokens >= max_model_len)."""
    while rep.waiting and left > 0 and len(rep.running) < max_seqs:
        r = rep.waiting[0]
        r.target = r.prompt + r.generated
        q = min(left, r.target) if chunk else r.target
        if not chunk and q > left and prefill:
            break
        need = -(-q // bs)
        if rep.blocks_free - need < watermark:
            break
        rep.waiting.popleft()
        rep.blocks_free -= need
        r.blocks = need
        r.done_prefill = 0
        rep.running.append(r)
        prefill[r] = q
        left -= q
