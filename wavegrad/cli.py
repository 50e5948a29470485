"""The ``wavegrad`` command: a thin layer over the library.

Every subcommand's bad input surfaces as one line on stderr and exit code 2 (``UserInputError``,
``FileNotFoundError`` and friends are caught here, not in the library).
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from .errors import UserInputError

Handler = Callable[[argparse.Namespace], int]
_HANDLERS: dict[str, Handler] = {}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wavegrad", formatter_class=_Formatter,
                                description="WaveGrad diffusion vocoder and image diffusion toolkit.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, register in _SUBCOMMANDS.items():
        register(sub, name)
    return p


def _register_train(sub, name):
    from .training.cli import add_train_parser
    add_train_parser(sub, name, _Formatter)


def _lazy(module: str):
    def register(sub, name):
        import importlib
        importlib.import_module(f"wavegrad.commands.{module}").register(sub, name, _Formatter)
    return register


_SUBCOMMANDS = {
    "train": _register_train,
    "vocode": _lazy("vocode"),
    "search-schedule": _lazy("search"),
    "benchmark": _lazy("benchmark"),
    "sample": _lazy("sample"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserInputError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"wavegrad {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wavegrad {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
