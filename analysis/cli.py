"""The ``gpusim`` command line. Each subcommand lives in its own module with
``add_arguments(parser)`` and ``run(args) -> int``; bad input prints one line and exits 2."""
from __future__ import annotations

import argparse
import importlib
import sys

from sim.errors import InputError

# subcommand -> (module, one-line help)
COMMANDS = {
    "predict": ("analysis.predict_cmd", "predict one scenario (YAML/JSON file or '-')"),
    "validate": ("analysis.validate", "predict every published/measured trace row and report the error"),
    "calibrate": ("analysis.calibrate", "fit efficiency parameters to traces; write calibrated profiles"),
    "bench": ("analysis.bench", "time kernels on this machine's GPU (host probes without one)"),
    "sweep": ("analysis.sweep", "evaluate a grid of scenarios into a Parquet file"),
    "search": ("analysis.search", "rank parallel layouts / deployments for a model and cluster"),
    "report": ("analysis.report", "build the study report (HTML + PNG) in report/"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpusim", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, (mod, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_)
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
            sp.set_defaults(_missing=name)
            continue
        module.add_arguments(sp)
        sp.set_defaults(_run=module.run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "_missing", None):
        print(f"gpusim {args._missing}: not available in this version", file=sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
