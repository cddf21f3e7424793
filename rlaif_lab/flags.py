"""Command-line flags generated from frozen config dataclasses (one line of help per field).

A field ``lr`` of a nested config ``rl`` becomes ``--rl.lr``; top-level fields are plain
(``--seed``). Values are parsed by the field's type (``Literal`` fields offer their values as
choices, tuples are comma-separated); a bad value or a config whose own checks fail becomes an
argparse error (exit code 2, with a message that says what to fix). ``--config FILE`` reads a
JSON file of the same shape; flags given on the command line win over it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Literal

#: a --config file larger than this is refused before it is read
MAX_CONFIG_BYTES = 1 << 20


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _parser_for(tp):
    if tp is bool:
        return _parse_bool
    if tp is float:
        return _parse_float
    if tp in (int, str):
        return tp
    if typing.get_origin(tp) is tuple:
        elem = _parser_for(typing.get_args(tp)[0])

        def parse_list(text: str):
            try:
                return tuple(elem(x.strip()) for x in text.split(",") if x.strip())
            except ValueError as e:
                raise argparse.ArgumentTypeError(str(e)) from None
        return parse_list
    return str


def add_config_flags(parser: argparse.ArgumentParser, cls, prefix: str = "",
                     hidden: tuple[str, ...] = (), defaults=None) -> None:
    """Add one flag per (nested) field of dataclass ``cls``; dotted names in ``hidden`` (e.g.
    seeds that follow another field) get none. The help shows the values of ``defaults``
    (an instance; ``cls()`` if None)."""
    defaults = cls() if defaults is None else defaults
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{prefix.rstrip('.') or cls.__name__} options",
                                      (cls.__doc__ or "").strip().splitlines()[0])
    for f in dataclasses.fields(cls):
        tp, key = hints[f.name], f"{prefix}{f.name}"
        if key in hidden:
            continue
        if dataclasses.is_dataclass(tp):
            add_config_flags(parser, tp, key + ".", hidden, getattr(defaults, f.name))
            continue
        default = getattr(defaults, f.name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        literal = typing.get_origin(tp) is typing.Literal
        group.add_argument(
            f"--{key}", dest=key, type=str if literal else _parser_for(tp), default=None,
            choices=typing.get_args(tp) if literal else None,
            metavar=None if literal else (tp.__name__.upper() if isinstance(tp, type)
                                          else "LIST"),
            # argparse expands %-formats in help: a literal "%" must be doubled
            help=(f.metadata.get("help", "") + f" (default: {shown})").replace("%", "%%"))


def read_config_file(config_file: str) -> dict:
    """The JSON object of ``--config FILE``; ValueError with a message saying what to fix."""
    path = Path(config_file)
    if path.is_dir():
        raise ValueError(f"--config {config_file} is a directory; give a JSON file")
    if not path.is_file():
        raise ValueError(f"--config {config_file}: no such file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"--config {config_file} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"--config {config_file}: not valid JSON ({e})") from None
    except RecursionError:
        raise ValueError(f"--config {config_file}: nested too deeply") from None
    except OSError as e:
        raise ValueError(f"--config {config_file}: cannot be read ({e.strerror})") from None
    if not isinstance(data, dict):
        raise ValueError(f"--config {config_file}: expected a JSON object")
    return data


def flag_values(cls, args: argparse.Namespace, prefix: str = "") -> dict:
    """The nested dict of the flags given on the command line (None = not given)."""
    out: dict = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, key = hints[f.name], prefix + f.name
        if dataclasses.is_dataclass(tp):
            sub = flag_values(tp, args, key + ".")
            if sub:
                out[f.name] = sub
        elif getattr(args, key, None) is not None:
            out[f.name] = getattr(args, key)
    return out


def merge(cfg, values: dict):
    """A copy of dataclass ``cfg`` with nested ``values`` replacing fields: names and types are
    checked (ValueError naming the key), and each config's own checks run when it is rebuilt."""
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
    if typing.get_origin(tp) is Literal:
        if value not in typing.get_args(tp):
            raise ValueError(f"config key {key!r} must be one of {list(typing.get_args(tp))}, "
                             f"got {value!r}")
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"config key {key!r} must be a list, got {type(value).__name__}")
        (elem, *_), = [typing.get_args(tp)]
        return tuple(_check_type(key, v, elem) for v in value)
    if not isinstance(value, tp) or (tp in (int, float) and isinstance(value, bool)):
        raise ValueError(f"config key {key!r} must be {tp.__name__}, got "
                         f"{type(value).__name__} {value!r}")
    if tp is float and value != value:
        raise ValueError(f"config key {key!r} must be a number, got NaN")
    return value
