"""Host-side probes that run on any machine and measure what the host model prices:
DRAM bandwidth (``HostSpec.dram_Bps``), the CPU Adam step of ZeRO-Offload (``HostOp``),
file write/read bandwidth (``nvme_write_Bps`` / ``nvme_read_Bps``) and, with a GPU, pinned and
pageable host<->GPU copies (the PCIe link).

Each probe returns measurements as dicts {family, kernel, workload, values{metric: (value, unit)},
notes}; ``analysis.bench`` turns them into trace rows. Workloads: a copy is a ``transfer`` host ->
host (``bytes`` = bytes copied; GB/s = bytes copied per second, half the STREAM figure, which
counts read plus write); scale, triad and the Adam step are ``host_op`` workloads (``flops``,
``bytes`` = bytes read plus written, as ``sim.ops.HostOp``); file I/O is a ``transfer`` between
host and nvme (the disk under the probe's directory, whatever it is: see the notes). Sizes are modest by default (256 MB
arrays, 512 MB files, each probe a few seconds) and every size is a keyword argument.
"""
from __future__ import annotations

import mmap
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from kernels.timing import wall_bench

MB = 2 ** 20


def _m(family, kernel, workload, values, notes=""):
    return {"family": family, "kernel": kernel, "workload": workload, "values": values, "notes": notes}


# ------------------------------------------------------------------ DRAM bandwidth

_NUMBA = {}


def _numba_kernels():
    """Parallel STREAM loops, compiled once (numba) so one pass runs over all cores."""
    if not _NUMBA:
        import numba

        @numba.njit(parallel=True, fastmath=True, cache=True)
        def copy(a, b):
            for i in numba.prange(a.size):
                a[i] = b[i]

        @numba.njit(parallel=True, fastmath=True, cache=True)
        def scale(a, b, s):
            for i in numba.prange(a.size):
                a[i] = s * b[i]

        @numba.njit(parallel=True, fastmath=True, cache=True)
        def triad(a, b, c, s):
            for i in numba.prange(a.size):
                a[i] = b[i] + s * c[i]
        _NUMBA.update(copy=copy, scale=scale, triad=triad, threads=numba.get_num_threads())
    return _NUMBA


def host_memory(array_mb: int = 256, rep_s: float = 0.6) -> list[dict]:
    """STREAM copy/scale (numpy, one thread) and copy/scale/triad (numba, all threads) on float64
    arrays of ``array_mb`` each, far larger than CPU caches. The notes give the STREAM figure
    (bytes read plus written: copy/scale 16 B per element, triad 24 B) for every probe."""
    n = array_mb * MB // 8
    rng = np.random.default_rng(0)
    a, b, c = (rng.random(n) + 0.5 for _ in range(3))       # non-zero, and every page touched
    s = 3.0
    out = []

    def record(kernel, op, arrays, t, threads):
        if op == "copy":
            wl = {"kind": "transfer", "src": "host", "dst": "host", "bytes": float(8 * n)}
        else:
            wl = {"kind": "host_op", "op": op, "flops": float(n if op == "scale" else 2 * n),
                  "bytes": float(arrays * 8 * n)}
        out.append(_m("host_memory", kernel, wl, {"time_s": (t, "s"), "gbps": (wl["bytes"] / t / 1e9, "GB/s")},
                      f"{array_mb} MB float64 arrays; {threads} thread(s); STREAM GB/s (read+write) = "
                      f"{arrays * 8 * n / t / 1e9:.3g}"))

    record("numpy.copyto", "copy", 2, wall_bench(lambda: np.copyto(a, b), rep_s=rep_s, max_runs=50), 1)
    record("numpy.multiply", "scale", 2, wall_bench(lambda: np.multiply(b, s, out=a), rep_s=rep_s, max_runs=50), 1)
    try:
        k = _numba_kernels()
    except ImportError:
        return out
    record("numba.copy", "copy", 2, wall_bench(lambda: k["copy"](a, b), rep_s=rep_s, max_runs=50), k["threads"])
    record("numba.scale", "scale", 2, wall_bench(lambda: k["scale"](a, b, s), rep_s=rep_s, max_runs=50), k["threads"])
    record("numba.triad", "triad", 3, wall_bench(lambda: k["triad"](a, b, c, s), rep_s=rep_s, max_runs=50), k["threads"])
    return out


# ------------------------------------------------------------------ CPU Adam

ADAM_BYTES_PER_PARAM = 28     # read param, grad, exp_avg, exp_avg_sq (16 B); write param, exp_avg, exp_avg_sq (12 B)
ADAM_FLOPS_PER_PARAM = 13     # m: 3, v: 4, sqrt/div/add: 3, update: 3 (sqrt and div counted as one each)


def cpu_adam(params: int = 2 ** 26, steps: int = 3) -> list[dict]:
    """torch.optim.Adam on one fp32 parameter vector on the CPU, as ZeRO-Offload runs the
    optimizer on the host: params/s and GB/s touched (28 B per parameter). The default
    (for-loop) and, where torch has it, fused implementations. DeepSpeed's CPU Adam is
    AVX-vectorised and fused, so it runs faster than both."""
    import torch
    out = []
    for impl in ("default", "fused"):
        p = torch.nn.Parameter(torch.randn(params))
        p.grad = torch.randn(params)
        try:
            opt = torch.optim.Adam([p], lr=1e-3, **({"fused": True} if impl == "fused" else {}))
            opt.step()                                       # allocates state; not timed
        except (RuntimeError, TypeError, ValueError):
            continue
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            opt.step()
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        wl = {"kind": "host_op", "op": "adam", "flops": float(ADAM_FLOPS_PER_PARAM * params),
              "bytes": float(ADAM_BYTES_PER_PARAM * params)}
        out.append(_m("cpu_adam", f"torch.optim.Adam({impl})", wl,
                      {"time_s": (t, "s"), "gbps": (ADAM_BYTES_PER_PARAM * params / t / 1e9, "GB/s")},
                      f"{params} fp32 params, {params / t:.4g} params/s; torch {torch.__version__}; "
                      f"{torch.get_num_threads()} threads"))
        del opt, p
    return out


# ------------------------------------------------------------------ storage

def _mount_of(path: Path) -> tuple[str, str]:
    """(filesystem type, device) of the mount holding ``path``."""
    best = ("", "", "")
    try:
        for line in open("/proc/mounts"):
            dev, mnt, fs = line.split()[:3]
            if str(path).startswith(mnt) and len(mnt) >= len(best[1]):
                best = (dev, mnt, fs)
    except OSError:
        pass
    return best[2], best[0]


def _open(path, flags, direct):
    return os.open(path, flags | (os.O_DIRECT if direct else 0), 0o600)


def _write_read(path: Path, total: int, chunk: int, direct: bool, max_s: float):
    buf = mmap.mmap(-1, chunk)                               # page-aligned, as O_DIRECT requires
    buf.write(os.urandom(chunk))                             # incompressible data
    fd = _open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, direct)
    written = 0
    try:
        t0 = time.perf_counter()
        while written < total and time.perf_counter() - t0 < max_s:
            written += os.write(fd, buf)
        os.fsync(fd)
        t_write = time.perf_counter() - t0
        if not direct:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)   # drop the now-clean pages
    finally:
        os.close(fd)
    fd = _open(path, os.O_RDONLY, direct)
    read = 0
    try:
        if not direct:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        t0 = time.perf_counter()
        while read < written:
            n = os.readv(fd, [buf])
            if n <= 0:
                break
            read += n
        t_read = time.perf_counter() - t0
    finally:
        os.close(fd)
        buf.close()
    return written, t_write, read, t_read


def storage(file_mb: int = 512, chunk_mb: int = 8, directory: str | None = None, max_s: float = 5.0) -> list[dict]:
    """Sequential write then read of a temporary file with O_DIRECT (bypassing the page cache).
    Where the filesystem refuses O_DIRECT (tmpfs, some overlays), falls back to buffered I/O with
    fsync after writing and POSIX_FADV_DONTNEED before reading, and says so in the notes. Writing
    stops after ``max_s`` seconds on a slow disk; the rows count the bytes actually moved."""
    d = Path(tempfile.mkdtemp(prefix="gpusim-io-", dir=directory))
    path = d / "probe.bin"
    fs, dev = _mount_of(d.resolve())
    try:
        try:
            res, method = _write_read(path, file_mb * MB, chunk_mb * MB, True, max_s), "O_DIRECT"
        except OSError:
            res = _write_read(path, file_mb * MB, chunk_mb * MB, False, max_s)
            method = "buffered+fsync+fadvise(DONTNEED) (O_DIRECT refused)"
    finally:
        path.unlink(missing_ok=True)
        d.rmdir()
    written, t_w, read, t_r = res
    note = f"{method}; {chunk_mb} MB requests; filesystem {fs or '?'} on {dev or '?'} ({d.parent})"
    return [
        _m("storage", "file.write", {"kind": "transfer", "src": "host", "dst": "nvme", "bytes": float(written)},
           {"time_s": (t_w, "s"), "gbps": (written / t_w / 1e9, "GB/s")}, note),
        _m("storage", "file.read", {"kind": "transfer", "src": "nvme", "dst": "host", "bytes": float(read)},
           {"time_s": (t_r, "s"), "gbps": (read / t_r / 1e9, "GB/s")}, note),
    ]


# ------------------------------------------------------------------ host <-> GPU

def pinned_copy(size_mb: int = 256) -> list[dict]:
    """Host->GPU and GPU->host copies from pinned and pageable memory (GPU only; [] without)."""
    import torch
    if not torch.cuda.is_available():
        return []
    from kernels.timing import bench
    n = size_mb * MB
    dev = torch.randn(n // 4, device="cuda")
    out = []
    for pinned in (True, False):
        host = torch.randn(n // 4).pin_memory() if pinned else torch.randn(n // 4)
        for src, dst, fn in (("host", "hbm", lambda: dev.copy_(host, non_blocking=True)),
                             ("hbm", "host", lambda: host.copy_(dev, non_blocking=True))):
            t = bench(fn)
            wl = {"kind": "transfer", "src": src, "dst": dst, "bytes": float(n), "pinned": pinned}
            out.append(_m("transfer", f"torch.copy_.{src}_to_{dst}.{'pinned' if pinned else 'pageable'}", wl,
                          {"time_s": (t, "s"), "gbps": (n / t / 1e9, "GB/s")}, f"{size_mb} MB"))
    return out


def run_all(quick: bool = False, storage_dir: str | None = None) -> list[dict]:
    """Every host probe (quick: smaller sizes)."""
    f = 4 if quick else 1
    return (host_memory(256 // f) + cpu_adam(2 ** 26 // f) + storage(512 // f, directory=storage_dir)
            + pinned_copy(256 // f))
