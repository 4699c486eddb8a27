"""The ``gpusim`` command line. Each subcommand lives in its own module with
``add_arguments(parser)`` and ``run(args) -> int``; bad input prints one line and exits 2."""
from __future__ import annotations

import argparse
import importlib
import signal
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the module of ``command`` (the one being run) is imported, so a
    subcommand's dependencies never slow down or break the others."""
    p = argparse.ArgumentParser(prog="gpusim", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, (mod, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_)
        if name != command:
            continue
        module = importlib.import_module(mod)
        module.add_arguments(sp)
        sp.set_defaults(_run=module.run)
    return p


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):          # `gpusim ... | head` ends quietly, as Unix tools do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
