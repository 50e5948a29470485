"""The ``wavegrad`` command: a thin layer over the library, one module per subcommand in ``commands/``.

Every subcommand's bad input surfaces as one line on stderr and exit code 2 (:func:`wavegrad.errors.run_main`).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .config import ArgumentParser, HelpFormatter
from .errors import run_main

# name -> module in wavegrad.commands (imported only when its subcommand is registered: `wavegrad --help` stays cheap)
SUBCOMMANDS = {"train": "train", "vocode": "vocode", "search-schedule": "search", "benchmark": "benchmark",
               "sample": "sample", "export": "export", "mel": "mel", "enhance": "enhance"}


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="wavegrad", formatter_class=HelpFormatter,
                                description="WaveGrad diffusion vocoder and image diffusion toolkit.")
    p.add_argument("--version", action="version", version=_version(),
                   help="the version, and what decides the network's speed here (CPU features, bf16, CUDA)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in SUBCOMMANDS.items():
        importlib.import_module(f"wavegrad.commands.{module}").register(sub, name)
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from .models.precision import hardware
    try:
        mine = version("wavegrad")
    except PackageNotFoundError:
        mine = "unknown (not installed)"
    return f"wavegrad {mine}; {hardware()}"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a bad flag (2, its one line already printed): a return code
        return int(e.code or 0)
    return run_main(f"wavegrad {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
