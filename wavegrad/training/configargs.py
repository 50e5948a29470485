"""Every field of a config dataclass as a command-line flag, its default shown in ``--help``.

Shared by `wavegrad train` and the recipes, so an option is spelt the same way everywhere.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Sequence


def _parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def _int_tuple(s: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in s.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None


def _float_tuple(s: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in s.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from None


def add_dataclass_args(parser: argparse.ArgumentParser, cls, dest_prefix: str, flag_prefix: str,
                       defaults: dict[str, Any], skip: Sequence[str] = ()) -> None:
    """``--<flag_prefix><field>`` for each field of ``cls`` (dest ``<dest_prefix><field>``), default from ``defaults``."""
    group = parser.add_argument_group(cls.__name__)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = hints[f.name]
        conv = (_parse_bool if tp is bool else
                (_int_tuple if typing.get_args(tp)[:1] == (int,) else _float_tuple) if typing.get_origin(tp) is tuple
                else tp if tp in (int, float, str) else str)
        group.add_argument("--" + flag_prefix + f.name.replace("_", "-"), dest=dest_prefix + f.name,
                           default=defaults.get(f.name, f.default), type=conv, metavar=f.name.upper().split("_")[-1],
                           help=f.name.replace("_", " "))  # the parser's ArgumentDefaultsHelpFormatter adds the default
