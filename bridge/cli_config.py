"""Command-line flags generated from frozen config dataclasses (one line of help per field).

A field ``lr`` of a nested config ``train`` becomes ``--train.lr``; top-level fields are plain
(``--seed``). Values are parsed by the field's type; a bad value or a config whose own checks fail
becomes an argparse error (exit code 2, with a message that says what to fix). ``--config FILE``
reads a JSON file of the same shape; flags given on the command line win over it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path


def _is_config(tp) -> bool:
    return dataclasses.is_dataclass(tp)


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parser_for(tp):
    if tp is bool:
        return _parse_bool
    if tp in (int, float, str):
        return tp
    origin = typing.get_origin(tp)
    if origin is tuple:
        return lambda s: tuple(x.strip() for x in s.split(",") if x.strip())
    return str


def add_config_flags(parser: argparse.ArgumentParser, cls, prefix: str = "") -> None:
    """Add one flag per (nested) field of dataclass ``cls`` to ``parser``."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{prefix.rstrip('.') or cls.__name__} options",
                                      (cls.__doc__ or "").strip().splitlines()[0])
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if _is_config(tp):
            add_config_flags(parser, tp, f"{prefix}{f.name}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, tuple):
            shown = ",".join(default)
        else:
            shown = default
        help_text = f.metadata.get("help", "") + f" (default: {shown})"
        group.add_argument(f"--{prefix}{f.name}", dest=f"{prefix}{f.name}",
                           type=_parser_for(tp), default=None,
                           choices=f.metadata.get("choices"), metavar=tp.__name__.upper()
                           if isinstance(tp, type) else "LIST", help=help_text)


def read_config_file(config_file: str, parser: argparse.ArgumentParser) -> dict:
    """The JSON object of ``--config FILE``; exit 2 with a message if it is not one."""
    try:
        data = json.loads(Path(config_file).read_text())
    except FileNotFoundError:
        parser.error(f"--config {config_file}: no such file")
    except ValueError as e:
        parser.error(f"--config {config_file}: not valid JSON ({e})")
    if not isinstance(data, dict):
        parser.error(f"--config {config_file}: expected a JSON object")
    return data


def build_config(cls, args: argparse.Namespace, parser: argparse.ArgumentParser,
                 config_file: str | None = None):
    """The config of ``cls`` from defaults, then ``config_file`` (JSON), then flags."""
    base = read_config_file(config_file, parser) if config_file else {}
    try:
        return merge(merge(cls(), base), flag_values(cls, args))
    except (TypeError, ValueError) as e:
        parser.error(str(e))


def merge(cfg, values: dict):
    """A copy of dataclass ``cfg`` with nested ``values`` replacing fields: names and types
    are checked, and each config's own ``__post_init__`` checks run when it is rebuilt."""
    if not isinstance(values, dict):
        raise ValueError(f"{type(cfg).__name__} values must be a JSON object")
    names = {f.name for f in dataclasses.fields(cfg)}
    hints = typing.get_type_hints(type(cfg))
    changes = {}
    for k, v in values.items():
        if k not in names:
            raise ValueError(f"unknown config key {k!r} in {type(cfg).__name__}; valid keys: "
                             f"{sorted(names)}")
        cur = getattr(cfg, k)
        changes[k] = merge(cur, v) if dataclasses.is_dataclass(cur) else _check_type(
            k, v, hints[k])
    return dataclasses.replace(cfg, **changes)


def _check_type(key: str, value, tp):
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typing.get_origin(tp) is tuple:
        if isinstance(value, (list, tuple)):
            return tuple(value)
        raise ValueError(f"config key {key!r} must be a list, got {type(value).__name__}")
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ValueError(f"config key {key!r} must be {tp.__name__}, got "
                         f"{type(value).__name__} {value!r}")
    return value


def flag_values(cls, args: argparse.Namespace, prefix: str = "") -> dict:
    """The nested dict of the flags given on the command line (None = not given)."""
    out: dict = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, key = hints[f.name], prefix + f.name
        if _is_config(tp):
            sub = flag_values(tp, args, key + ".")
            if sub:
                out[f.name] = sub
        elif getattr(args, key, None) is not None:
            out[f.name] = getattr(args, key)
    return out
