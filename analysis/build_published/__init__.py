"""Build traces/published/ from shared/reference: every reference row that can be held against a
scenario becomes one trace row; the rest are listed in UNMAPPED.md with the reason.

Run ``python -m analysis.build_published [REFERENCE_DIR] [OUT_DIR]``. The output is deterministic
(rows sorted by id, JSON with sorted keys, fixed float formatting), so running it again
reproduces the committed CSVs byte for byte; ``gpusim validate`` reads only traces/, never the
reference folder. Every assumption made turning a vague row into a scenario is written into the
row's ``notes``. Model dimensions come from the model zoo by name where the row names a zoo
model; other models are given inline with the dimensions from the row or its cited config.

This package builds the tables (``build``, ``write``); each group of families maps its rows in its
own module: ``kernels`` (GEMM and attention kernels) with ``data_movement`` (memory, L2,
collectives, host transfers, NVMe), ``end_to_end`` (the end-to-end dispatcher and its unmapped
rows) over ``training``, ``inference``, ``serving`` and ``offload``, and ``vtrain``; ``common``
holds the parsers and the hardware table they share.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from analysis.traces import COLUMNS, METRIC_UNITS, PUBLISHED, check_row

from .common import Unmapped, fmt, parse_params, reference_dir, sj
from .end_to_end import map_e2e
from .kernels import map_kernel
from .training import fa_flops_per_token
from .vtrain import VTRAIN_NOTES, map_vtrain

__all__ = ["Unmapped", "build", "fa_flops_per_token", "main", "map_e2e", "map_kernel", "map_vtrain",
           "parse_params", "reference_dir", "render_csv", "render_unmapped", "write"]


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _row(r: dict, family, scen, base, metric, value, notes) -> dict:
    return {"id": r["id"], "family": family, "hardware": scen["hardware"], "scenario": sj(scen),
            "baseline_scenario": sj(base) if base else "", "metric": metric, "value": fmt(value),
            "unit": METRIC_UNITS[metric], "source": r["source"], "source_locator": r["source_locator"],
            "confidence": r["confidence"], "notes": "; ".join(notes), "fingerprint": ""}


def build(ref: Path) -> tuple[dict[str, list[dict]], list[tuple[str, str, str]]]:
    """-> ({csv name: rows}, [(file, id, reason)] unmapped)."""
    out: dict[str, list[dict]] = {"kernels": [], "end_to_end": [], "vtrain": []}
    unmapped = []
    for name, fname, fn in (("kernels", "kernel_measurements.csv", map_kernel),
                            ("end_to_end", "end_to_end.csv", map_e2e)):
        for r in _read(ref / fname):
            try:
                out[name].append(_row(r, *fn(r)))
            except Unmapped as e:
                unmapped.append((fname, r["id"], str(e)))
    vsrc = ("vTrain ground truth (VIA-Research/vTrain data/ground_truth_single.csv; Bang et al. 'vTrain', "
            "MICRO 2024), MIT license")
    for n, r in enumerate(_read(ref / "vtrain_single_node.csv"), start=1):
        rid, family, scen, metric, value = map_vtrain(r, n)
        row = {"id": rid, "source": vsrc, "source_locator": f"vtrain_single_node.csv data row {n}",
               "confidence": "read"}
        out["vtrain"].append(_row(row, family, scen, None, metric, value, [VTRAIN_NOTES]))
    for rows in out.values():
        rows.sort(key=lambda x: x["id"])
        for r in rows:            # fail the build, not the user, on a schema slip
            check_row(r, f"build_published: {r['id']}", measured=False)
    return out, unmapped


def render_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def render_unmapped(unmapped: list[tuple[str, str, str]]) -> str:
    lines = ["# Reference rows not in the validation set", "",
             "Rows of shared/reference that `analysis/build_published/` cannot express as a scenario, one",
             "line each with the reason. They stay out of `gpusim validate`; adding the missing schema field,",
             "zoo entry or detail from the source would bring a row in.", "",
             f"{len(unmapped)} rows.", ""]
    for fname, rid, reason in sorted(unmapped):
        lines.append(f"- {rid} ({fname}): {reason}")
    return "\n".join(lines) + "\n"


def write(ref: Path, out_dir: Path) -> dict[str, int]:
    tables, unmapped = build(ref)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        (out_dir / f"{name}.csv").write_text(render_csv(rows))
    (out_dir / "UNMAPPED.md").write_text(render_unmapped(unmapped))
    return {**{k: len(v) for k, v in tables.items()}, "unmapped": len(unmapped)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ref = Path(argv[0]) if argv else reference_dir()
    out = Path(argv[1]) if len(argv) > 1 else PUBLISHED
    counts = write(ref, out)
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0
