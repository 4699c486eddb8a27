"""Timing and machine identity for measured traces.

``bench`` times a callable the way the validation needs: on a GPU with
``triton.testing.do_bench`` (warm-up, then the median of many runs) while cycling through
several input sets whose total size is larger than the L2 cache, so each run reads its
operands from HBM as a real layer would, not from a cache left warm by the previous run.
Inputs come from ``torch.randn`` (never zeros: zero operands let some hardware skip work and
power down). Without a GPU the same call times host code with a wall clock.

``fingerprint`` records what a measurement depends on (GPU, clocks, driver, CUDA, torch,
Triton; the CPU and memory of a CPU-only host), and ``fingerprint_id`` names the machine's
folder in ``traces/measured/``.
"""
from __future__ import annotations

import hashlib
import math
import os
import platform
import re
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kernels.common import on_gpu


@dataclass
class Case:
    """One timed run of one kernel on one shape, and the gpusim workload it measures.

    ``flops`` counts 2 per multiply-add (attention per the FlashAttention convention);
    ``bytes`` is the data the kernel must move at minimum (read + written), for GB/s.
    """
    kernel: str
    family: str
    workload: dict
    make_inputs: Callable[[], tuple]
    fn: Callable[..., Any]
    flops: float = 0.0
    bytes: float = 0.0
    metrics: tuple[str, ...] = ("time_s",)
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def values(self, time_s: float, hbm_Bps: float | None = None) -> dict[str, tuple[float, str]]:
        """metric -> (value, unit) for a measured time; hbm_utilization needs the spec bandwidth."""
        out = {"time_s": (time_s, "s")}
        if self.flops:
            out["tflops"] = (self.flops / time_s / 1e12, "TFLOP/s")
        if self.bytes:
            out["gbps"] = (self.bytes / time_s / 1e9, "GB/s")
            if hbm_Bps:
                out["hbm_utilization"] = (self.bytes / time_s / hbm_Bps, "fraction")
        return {m: out[m] for m in self.metrics if m in out}


def _nbytes(obj) -> int:
    import torch
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(_nbytes(o) for o in obj.values())
    return 0


def rotation_count(set_bytes: int, l2_bytes: int, free_bytes: int, max_sets: int = 64) -> int:
    """Input sets to cycle through: enough that together they exceed twice the L2, while
    fitting in half the free memory (at least one set)."""
    if set_bytes <= 0:
        return 1
    want = math.ceil(2 * l2_bytes / set_bytes) + 1
    room = max(1, int(0.5 * free_bytes // set_bytes))
    return max(1, min(want, room, max_sets))


def bench(fn: Callable, make_inputs: Callable[[], tuple] | None = None, *, warmup_ms: float = 25,
          rep_ms: float = 100) -> float:
    """Median seconds per call of ``fn(*inputs)``.

    On a GPU, ``make_inputs()`` is called several times (``rotation_count``) and the calls
    cycle through the sets. Without a GPU, host code is timed by wall clock (median of runs
    filling ``rep_ms`` after ``warmup_ms`` of warm-up).
    """
    sets = [make_inputs()] if make_inputs else [()]
    if on_gpu():
        import torch
        from triton.testing import do_bench
        free, _ = torch.cuda.mem_get_info()
        l2 = torch.cuda.get_device_properties(0).L2_cache_size
        n = rotation_count(_nbytes(sets[0]), l2, free)
        sets += [make_inputs() for _ in range(n - 1)]
        i = [0]

        def call():
            s = sets[i[0] % len(sets)]
            i[0] += 1
            return fn(*s)
        ms = do_bench(call, warmup=warmup_ms, rep=rep_ms, return_mode="median")
        return ms / 1e3
    return wall_bench(lambda: fn(*sets[0]), warmup_s=warmup_ms / 1e3, rep_s=rep_ms / 1e3)


def wall_bench(call: Callable[[], Any], warmup_s: float = 0.05, rep_s: float = 0.5,
               min_runs: int = 3, max_runs: int = 1000) -> float:
    """Median wall-clock seconds of ``call()`` (host code)."""
    t_end = time.perf_counter() + warmup_s
    call()
    while time.perf_counter() < t_end:
        call()
    times: list[float] = []
    t_stop = time.perf_counter() + rep_s
    while len(times) < min_runs or (time.perf_counter() < t_stop and len(times) < max_runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------- fingerprint

def _nvidia_smi() -> dict:
    q = "driver_version,clocks.max.sm,clocks.max.mem"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    parts = [p.strip() for p in out.split(",")]
    if len(parts) != 3:
        return {}
    return {"driver": parts[0], "sm_clock_max_mhz": parts[1], "mem_clock_max_mhz": parts[2]}


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _host_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def _versions() -> dict:
    out = {"python": platform.python_version(), "os": f"{platform.system()} {platform.release()}"}
    for mod in ("torch", "triton", "numpy", "numba"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001  (a missing optional library is recorded as absent)
            out[mod] = ""
    return out


# fields that identify a machine + software stack (clocks now, free memory etc. are left out)
_ID_FIELDS = ("gpu_name", "gpu_count", "sm_count", "gpu_memory_bytes", "compute_capability", "driver",
              "cuda", "cpu_model", "cpu_cores", "host_memory_bytes", "torch", "triton")


def slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")
    return re.sub(r"-+", "-", s)[:48] or "machine"


def fingerprint_id(fp: dict) -> str:
    """``<slug of the GPU name (or CPU model)>-<8 hex digits of a hash of the stack>``."""
    key = "|".join(f"{k}={fp.get(k, '')}" for k in _ID_FIELDS)
    name = fp.get("gpu_name") or fp.get("cpu_model") or "machine"
    return f"{slug(name)}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def fingerprint() -> dict:
    """What a measurement on this machine depends on, with its ``id``."""
    fp: dict[str, Any] = {"cpu_model": _cpu_model(), "cpu_cores": os.cpu_count() or 0,
                          "host_memory_bytes": _host_memory_bytes(), **_versions()}
    try:
        import torch
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            fp.update(kind="gpu", gpu_name=p.name, gpu_count=torch.cuda.device_count(),
                      sm_count=p.multi_processor_count, gpu_memory_bytes=p.total_memory,
                      l2_bytes=getattr(p, "L2_cache_size", 0),
                      compute_capability=f"{p.major}.{p.minor}", cuda=torch.version.cuda or "",
                      **_nvidia_smi())
        else:
            fp["kind"] = "cpu"
    except ImportError:
        fp["kind"] = "cpu"
    fp["id"] = fingerprint_id(fp)
    return fp
