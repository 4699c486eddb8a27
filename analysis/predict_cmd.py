"""``gpusim predict SCENARIO [--json]``."""
from __future__ import annotations

import json


def add_arguments(p):
    p.add_argument("scenario", help="YAML or JSON scenario file, or '-' for standard input")
    p.add_argument("--json", action="store_true", help="print one JSON object (the contract)")
    p.add_argument("--trace", metavar="FILE", help="write the DES timeline as a Chrome/Perfetto trace")


def run(args) -> int:
    from sim.scenario import predict
    pred = predict(args.scenario)
    if args.trace and pred.timeline is not None:
        with open(args.trace, "w") as f:
            json.dump({"traceEvents": pred.timeline}, f)
    if args.json:
        print(json.dumps(pred.to_json(), default=float))
        return 0
    print(f"fits: {pred.fits}   time: {pred.time_s:.6g} s   bound: {pred.bound}   ({pred.provenance})")
    for k, v in pred.metrics.items():
        print(f"  {k}: {v:.6g}" if isinstance(v, (int, float)) else f"  {k}: {v}")
    mem = ", ".join(f"{k} {v / 1e9:.3g} GB" for k, v in pred.memory_bytes.items())
    print(f"  memory: {mem}")
    for w in pred.warnings:
        print(f"  warning: {w}")
    return 0
