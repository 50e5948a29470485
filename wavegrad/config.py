"""Typed configs: dataclass fields that document themselves, and the one flag parser built from them.

Every component's config is a dataclass whose fields are declared with :func:`param`::

    lr: float = param(2e-4, "Adam learning rate", paper="2e-4 (WaveGrad §5.1, DDPM)")

That one line is the field's default, its documentation, its ``--help`` text (what it does, its
choices, the paper's value, the default) and its flag (``--lr``). A field holding another config
dataclass becomes a group of flags, prefixed by the field name (``schedule.kind`` -> ``--schedule-kind``)
unless declared with ``prefix=""``. ``wavegrad train``, every recipe and the commands a recipe chains
build their flags with :func:`add_arguments` and read them back with :func:`from_args`, so an option is
spelt, documented and validated the same way everywhere; :func:`to_dict` / :func:`from_dict` are the
same configs as JSON (``config.json`` of a run, the configs stored in checkpoints).

This module is a leaf: it imports nothing of the package but :mod:`wavegrad.errors`.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Sequence

from .errors import UserInputError

_NO_DEFAULT = dataclasses.MISSING


def param(default: Any = _NO_DEFAULT, help: str = "", *, choices: Sequence[Any] | None = None,
          paper: str | None = None, factory: Any = None, prefix: str | None = None,
          cli: bool = True, flag: str | None = None) -> Any:
    """A documented dataclass field.

    ``help``: what the field does; ``choices``: the allowed values (listed in ``--help`` and checked by
    argparse for scalar fields); ``paper``: the value the paper uses and where it says so; ``factory``:
    a default factory (for nested config dataclasses); ``prefix``: for a nested config, the flag prefix
    of its fields (default: ``<field name>-``); ``cli=False`` keeps the field off the command line; ``flag``
    names the flag outright, whatever the prefixes (``--prior`` for ``PriorConfig.kind``).
    """
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "paper": paper,
            "prefix": prefix, "cli": cli, "flag": flag}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ---- JSON round trip -----------------------------------------------------------------------------------------
def to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass (nested ones included) as plain JSON types: tuples become lists."""
    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        return v
    return plain(cfg)


def from_dict(cls, d: Any, where: str = ""):
    """``cls`` from :func:`to_dict`'s output. Unknown keys are refused with the list of valid ones;
    missing keys take their defaults; lists become tuples where the field is typed as a tuple."""
    name = where or cls.__name__
    if not isinstance(d, dict):
        raise UserInputError(f"{name}: expected a JSON object of {cls.__name__} fields, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise UserInputError(f"unknown {cls.__name__} key(s) {unknown}; valid keys are {sorted(known)}")
    kwargs = {}
    for key, value in d.items():
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            value = from_dict(tp, value, f"{name}.{key}")
        elif typing.get_origin(tp) is tuple and isinstance(value, list):
            value = _tuple_of(tp, value)
        kwargs[key] = value
    return cls(**kwargs)


def _tuple_of(tp, value: list) -> tuple:
    args = typing.get_args(tp)
    if args and typing.get_origin(args[0]) is tuple:      # tuple[tuple[int, ...], ...]
        return tuple(tuple(v) for v in value)
    return tuple(value)


def replace(cfg: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` that also takes dotted names for nested configs: ``replace(run, **{"train.lr": 1e-3})``."""
    direct = {k: v for k, v in changes.items() if "." not in k}
    nested: dict[str, dict[str, Any]] = {}
    for k, v in changes.items():
        if "." in k:
            head, rest = k.split(".", 1)
            nested.setdefault(head, {})[rest] = v
    for head, sub in nested.items():
        direct[head] = replace(getattr(cfg, head), **sub)
    return dataclasses.replace(cfg, **direct)


# ---- flags ------------------------------------------------------------------------------------------------------
class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions keep their line breaks; defaults are shown once (config flags write their own)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default:" in text or action.default in (None, argparse.SUPPRESS) or not action.option_strings:
            return text
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's error convention: a bad flag is one line on stderr and exit code 2
    (no usage dump), like every other bad input; ``--help`` still shows everything."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(_show(v) for v in value)
    return str(value)


def _comma_list(item_type):
    def parse(text: str) -> tuple:
        try:
            return tuple(item_type(v.strip()) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {item_type.__name__} values, got {text!r}") from None
    parse.__name__ = f"list of {item_type.__name__}"
    return parse


def _optional(item_type):
    def parse(text: str):
        return None if text.lower() in ("none", "") else item_type(text)
    parse.__name__ = item_type.__name__
    return parse


def _converter(tp):
    """argparse ``type=`` for a field type (bools are switches and need none)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        inner = args[0] if args else str
        if typing.get_origin(inner) is tuple:
            raise TypeError("nested tuples are not command-line fields; declare them with cli=False")
        return _comma_list(inner)
    if origin in (typing.Union, types.UnionType):                       # X | None
        inner = [a for a in args if a is not type(None)]
        return _optional(inner[0])
    return tp if tp in (int, float, str) else str


def _help(f: dataclasses.Field, default: Any) -> str:
    meta = f.metadata
    parts = [meta.get("help") or f.name.replace("_", " ")]
    if meta.get("choices") and isinstance(default, tuple):   # scalar fields list them in the metavar
        parts.append(f"[choices: {', '.join(map(str, meta['choices']))}]")
    if meta.get("paper"):
        parts.append(f"(paper: {meta['paper']})")
    parts.append(f"(default: {_show(default)})")
    return " ".join(parts).replace("%", "%%")  # argparse %-formats help strings


def add_arguments(parser: argparse.ArgumentParser, cls, defaults: Any = None, *, dest: str = "",
                  flag_prefix: str = "", title: str | None = None, only_given: bool = False) -> None:
    """A flag for every command-line field of ``cls`` (nested configs included), defaults from the
    instance ``defaults`` (or the dataclass defaults). ``dest`` is the dotted path of ``cls`` in the
    top-level config; :func:`from_args` reads the flags back. ``only_given``: a flag left out leaves no
    value in the namespace, so :func:`from_args` takes that field from its ``base`` (a stored config that the
    flags amend; ``--help`` still shows the dataclass default)."""
    defaults = defaults if defaults is not None else cls()
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(title or cls.__name__, (cls.__doc__ or "").strip().split("\n\n")[0] or None)
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True):
            continue
        tp, value = hints[f.name], getattr(defaults, f.name)
        path = dest + f.name
        if dataclasses.is_dataclass(tp):
            prefix = f.metadata.get("prefix")
            prefix = f.name.replace("_", "-") + "-" if prefix is None else prefix
            add_arguments(parser, tp, value, dest=path + ".", flag_prefix=flag_prefix + prefix,
                          title=f"{tp.__name__} ({f.metadata.get('help') or f.name})", only_given=only_given)
            continue
        flag = "--" + (f.metadata.get("flag") or flag_prefix + f.name.replace("_", "-"))
        kwargs: dict[str, Any] = {"dest": path, "default": value, "help": _help(f, value)}
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _converter(tp)
            kwargs["metavar"] = f.name.upper().split("_")[-1]
            if f.metadata.get("choices") and typing.get_origin(tp) is not tuple:
                kwargs["choices"] = f.metadata["choices"]
                kwargs["metavar"] = "{" + ",".join(map(str, f.metadata["choices"])) + "}"
        if only_given:
            kwargs["default"] = argparse.SUPPRESS
        group.add_argument(flag, **kwargs)


def from_args(cls, args: argparse.Namespace, base: Any = None, dest: str = "") -> Any:
    """The ``cls`` instance that :func:`add_arguments`' flags describe; fields without a flag keep their
    value in ``base`` (the instance the flags' defaults came from), or the dataclass default."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        path = dest + f.name
        inner = getattr(base, f.name) if base is not None else None
        if dataclasses.is_dataclass(hints[f.name]):
            kwargs[f.name] = from_args(hints[f.name], args, inner, path + ".")
        elif hasattr(args, path):
            kwargs[f.name] = getattr(args, path)
        elif base is not None:
            kwargs[f.name] = inner
    return cls(**kwargs)


def parse_with_presets(cls, presets: dict[str, Any], argv: Sequence[str] | None, *, default: str,
                       description: str, extra=None) -> tuple[str, Any, argparse.Namespace]:
    """A recipe's command line: ``--preset NAME`` picks the defaults of every other flag (all of ``cls``'s
    fields, see :func:`add_arguments`); ``extra(parser)`` adds the recipe's own arguments.
    Returns (preset name, the ``cls`` instance, the parsed namespace)."""
    pre = ArgumentParser(add_help=False)
    pre.add_argument("--preset", choices=tuple(presets), default=default)
    known, _ = pre.parse_known_args(argv)
    parser = ArgumentParser(description=description, formatter_class=HelpFormatter)
    parser.add_argument("--preset", choices=tuple(presets), default=known.preset,
                        help="the preset whose values are the defaults of every other flag")
    if extra is not None:
        extra(parser)
    add_arguments(parser, cls, presets[known.preset])
    args = parser.parse_args(argv)
    return args.preset, from_args(cls, args, presets[args.preset]), args
