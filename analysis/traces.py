"""The trace store: one schema for published numbers (CSV) and measured kernel runs (Parquet).

A trace row is one number held against one prediction: a full scenario for
``sim.scenario.predict``, the metric it is compared with and the value in that metric's unit,
plus its provenance (source and locator for cited numbers; the machine fingerprint for runs).
Every file is checked on load so that a bad row fails loudly with the file, row number, row id
and column, instead of silently skewing the error table. Measured rows are only ever added by
``append_measured``, which writes a new part file atomically (temp name, fsync, rename), so a
crash mid-write leaves the store exactly as it was. The schema is documented in traces/README.md.
"""
from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from sim.errors import InputError

TRACES = Path(__file__).resolve().parent.parent / "traces"
PUBLISHED = TRACES / "published"
MEASURED = TRACES / "measured"

COLUMNS = ["id", "family", "hardware", "scenario", "baseline_scenario", "metric", "value", "unit",
           "source", "source_locator", "confidence", "notes", "fingerprint"]

# metric -> the unit its value is stored in. A metric not listed here is a typo until it is added
# (with its unit) here and in traces/README.md.
METRIC_UNITS = {
    "tflops": "TFLOP/s",                 # kernel FLOPs / time (gemm: 2mnk; attention: FlashAttention rule)
    "gbps": "GB/s",                      # bytes read + written / time, 1 GB = 1e9 B
    "algbw_gbps": "GB/s",                # nccl-tests algorithm bandwidth
    "busbw_gbps": "GB/s",                # nccl-tests bus bandwidth
    "hbm_utilization": "fraction",       # bytes read / time / spec HBM bandwidth
    "time_s": "s",
    "iteration_time_s": "s",
    "ttft_s": "s",
    "tpot_s": "s",
    "latency_s": "s",
    "tokens_per_s": "tokens/s",          # generated tokens per second, all sequences, all GPUs
    "tflops_per_gpu": "TFLOP/s",         # model FLOPs (no recompute) per GPU per second
    "hfu_tflops_per_gpu": "TFLOP/s",     # hardware FLOPs (recompute counted) per GPU per second
    "mfu": "fraction",
    "hfu": "fraction",
    "speedup": "x",                      # baseline_scenario time / scenario time
}

_FAMILY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
FINGERPRINT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
PARQUET_META_KEY = b"gpusim.fingerprint"


# ---- checking ---------------------------------------------------------------------------------

def _json_mapping(text: str, where: str, column: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(where, column, f"not valid JSON ({e.msg} at char {e.pos})") from None
    if not isinstance(data, dict):
        raise InputError(where, column, f"expected a JSON object (a scenario), got {type(data).__name__}")
    if "hardware" not in data:
        raise InputError(where, column, "scenario has no 'hardware'")
    wl = data.get("workload")
    if not isinstance(wl, dict) or not isinstance(wl.get("kind"), str):
        raise InputError(where, column, "scenario has no 'workload' mapping with a 'kind'")
    return data


def check_row(row: Mapping, where: str, measured: bool) -> dict:
    """Check one row against the schema; return it with ``value`` as a float.

    ``where`` names the file and row; the InputError adds the column and what was expected.
    """
    out = {}
    for col in COLUMNS:
        v = row.get(col, "")
        if v is None or (isinstance(v, float) and math.isnan(v)):
            v = ""
        out[col] = v if col == "value" else str(v)
    for col in ("id", "family", "hardware", "scenario", "metric", "unit", "source", "source_locator",
                "confidence"):
        if not out[col].strip():
            raise InputError(where, col, "empty; every row needs one")
    if not _ID_RE.match(out["id"]):
        raise InputError(where, "id", f"got {out['id']!r}; expected letters, digits and . _ : -")
    if not _FAMILY_RE.match(out["family"]):
        raise InputError(where, "family", f"got {out['family']!r}; expected a lower-case name like 'gemm'")
    scen = _json_mapping(out["scenario"], where, "scenario")
    if isinstance(scen["hardware"], str) and scen["hardware"] != out["hardware"]:
        raise InputError(where, "hardware", f"got {out['hardware']!r} but the scenario names "
                                            f"{scen['hardware']!r}; they must agree")
    metric = out["metric"]
    if metric not in METRIC_UNITS:
        raise InputError(where, "metric", f"got {metric!r}; expected one of {sorted(METRIC_UNITS)}")
    if out["unit"] != METRIC_UNITS[metric]:
        raise InputError(where, "unit", f"got {out['unit']!r}; metric {metric!r} is stored in "
                                        f"{METRIC_UNITS[metric]!r}")
    if metric == "speedup":
        if not out["baseline_scenario"].strip():
            raise InputError(where, "baseline_scenario", "empty; a 'speedup' row needs its baseline scenario")
        _json_mapping(out["baseline_scenario"], where, "baseline_scenario")
    elif out["baseline_scenario"].strip():
        raise InputError(where, "baseline_scenario", f"only 'speedup' rows have a baseline; metric is {metric!r}")
    try:
        value = float(out["value"])
    except (TypeError, ValueError):
        raise InputError(where, "value", f"got {out['value']!r}; expected a number") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(where, "value", f"got {value!r}; expected a finite number > 0")
    out["value"] = value
    fp = out["fingerprint"].strip()
    if measured and not FINGERPRINT_RE.match(fp):
        raise InputError(where, "fingerprint", f"got {fp!r}; a measured row needs its machine fingerprint id")
    if not measured and fp:
        raise InputError(where, "fingerprint", f"got {fp!r}; published rows have none (leave it empty)")
    return out


def _check_frame(df: pd.DataFrame, path: Path, measured: bool) -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InputError(str(path), missing[0], f"missing column; the schema has {COLUMNS}")
    extra = [c for c in df.columns if c not in COLUMNS]
    if extra:
        raise InputError(str(path), extra[0], f"unknown column; the schema has {COLUMNS}")
    rows = []
    for n, rec in enumerate(df.to_dict("records"), start=1):
        where = f"{path}: row {n} (id {str(rec.get('id', '')).strip() or '?'})"
        rows.append(check_row(rec, where, measured))
    out = pd.DataFrame(rows, columns=COLUMNS)
    _check_unique(out, str(path))
    return out


def _check_unique(df: pd.DataFrame, where: str) -> None:
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        raise InputError(where, "id", f"id {dup.iloc[0]!r} appears more than once; ids are unique in the store")


# ---- published (CSV) ----------------------------------------------------------------------------

def read_published_csv(path: Path) -> pd.DataFrame:
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InputError(str(path), "<file>", f"not a readable CSV ({str(e).splitlines()[0]})") from None
    except pd.errors.EmptyDataError:
        raise InputError(str(path), "<file>", "empty file; expected a header row") from None
    return _check_frame(df, path, measured=False)


def load_published(directory: Path | str = PUBLISHED) -> pd.DataFrame:
    """All published rows (every *.csv in the folder), checked; an empty frame when none."""
    frames = [read_published_csv(p) for p in sorted(Path(directory).glob("*.csv"))]
    return _concat(frames, str(directory))


# ---- measured (Parquet parts) -----------------------------------------------------------------------

def _fp_id(fingerprint) -> tuple[str, dict]:
    if isinstance(fingerprint, Mapping):
        meta = {str(k): v for k, v in fingerprint.items()}
        fid = str(meta.get("id", ""))
    else:
        fid, meta = str(fingerprint), {"id": str(fingerprint)}
    if not FINGERPRINT_RE.match(fid):
        raise InputError("fingerprint", "id", f"got {fid!r}; expected letters, digits and . _ -")
    return fid, meta


def _is_part(p: Path) -> bool:
    """Finished part files only: temp files start with '.' and end in '.tmp'."""
    return p.is_file() and p.suffix == ".parquet" and not p.name.startswith(".")


def read_measured_part(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq
    path = Path(path)
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a torn or foreign file
        raise InputError(str(path), "<file>", f"not a readable Parquet file ({str(e).splitlines()[0]})") from None
    meta = table.schema.metadata or {}
    if PARQUET_META_KEY not in meta:
        raise InputError(str(path), "<metadata>", f"no '{PARQUET_META_KEY.decode()}' metadata; "
                                                  "write measured parts with append_measured()")
    try:
        fp = json.loads(meta[PARQUET_META_KEY])
    except json.JSONDecodeError:
        raise InputError(str(path), "<metadata>", "fingerprint metadata is not JSON") from None
    folder = path.parent.name
    if fp.get("id") != folder:
        raise InputError(str(path), "<metadata>", f"fingerprint id {fp.get('id')!r} does not match its "
                                                  f"folder {folder!r}")
    df = _check_frame(table.to_pandas(), path, measured=True)
    bad = df.index[df["fingerprint"] != folder]
    if len(bad):
        i = int(bad[0])
        raise InputError(f"{path}: row {i + 1} (id {df['id'].iloc[i]})", "fingerprint",
                         f"got {df['fingerprint'].iloc[i]!r}; expected the folder's id {folder!r}")
    return df


def load_measured(directory: Path | str = MEASURED) -> pd.DataFrame:
    """All measured rows: every finished part under <directory>/<fingerprint>/ (temp files skipped)."""
    root = Path(directory)
    parts = sorted(p for d in sorted(root.iterdir()) if d.is_dir() for p in d.iterdir() if _is_part(p)) \
        if root.exists() else []
    return _concat([read_measured_part(p) for p in parts], str(root))


def fingerprint_metadata(directory: Path | str = MEASURED) -> dict[str, dict]:
    """fingerprint id -> its metadata (GPU name, driver, library versions), from the part files."""
    import pyarrow.parquet as pq
    out = {}
    root = Path(directory)
    if root.exists():
        for d in sorted(root.iterdir()):
            for p in sorted(d.iterdir()) if d.is_dir() else []:
                if _is_part(p):
                    out[d.name] = json.loads(pq.read_schema(p).metadata[PARQUET_META_KEY])
    return out


def append_measured(rows: Iterable[Mapping], fingerprint, directory: Path | str = MEASURED) -> Path:
    """Add measured rows as one new part file; never touches existing parts.

    ``fingerprint`` is the machine id or a mapping with 'id' and any details (GPU name, driver,
    torch, triton), stored as the part's metadata. Rows missing ``id`` get one; ``fingerprint``,
    ``source`` ('gpusim bench') and ``confidence`` ('measured') default. The write goes to a
    temp name in the same folder, is fsynced, then renamed over: readers see the whole part or none.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    fid, meta = _fp_id(fingerprint)
    folder = Path(directory) / fid
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    stem = f"part-{stamp}-{uuid.uuid4().hex[:8]}"
    checked = []
    for i, r in enumerate(rows):
        r = {"source": "gpusim bench", "confidence": "measured", "fingerprint": fid, **dict(r)}
        r.setdefault("id", f"{fid}:{stem}:{i}")
        checked.append(check_row(r, f"append_measured: row {i + 1} (id {r['id']})", measured=True))
    if not checked:
        raise InputError("append_measured", "rows", "no rows to append")
    df = pd.DataFrame(checked, columns=COLUMNS)
    _check_unique(df, "append_measured")
    existing = load_measured(directory)
    clash = set(df["id"]) & set(existing["id"])
    if clash:
        raise InputError("append_measured", "id", f"id {sorted(clash)[0]!r} is already in the store")
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({PARQUET_META_KEY: json.dumps(meta, sort_keys=True).encode()})
    final = folder / f"{stem}.parquet"
    tmp = folder / f".{stem}.parquet.tmp"
    try:
        pq.write_table(table, tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)          # make the rename itself durable
    finally:
        os.close(dfd)
    return final


# ---- everything --------------------------------------------------------------------------------

def _concat(frames: list[pd.DataFrame], where: str) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "value" else object) for c in COLUMNS})
    df = pd.concat(frames, ignore_index=True)
    _check_unique(df, where)
    return df


def load_all(published: Path | str = PUBLISHED, measured: Path | str = MEASURED) -> pd.DataFrame:
    """Published and measured rows in one frame (column ``origin``: 'published' | 'measured')."""
    pub = load_published(published).assign(origin="published")
    mea = load_measured(measured).assign(origin="measured")
    df = pd.concat([pub, mea], ignore_index=True) if len(mea) else pub
    _check_unique(df, f"{published} + {measured}")
    return df
