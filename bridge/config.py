"""Checks shared by every config dataclass (no framework): allowed string values are declared
once, as ``typing.Literal`` field types, and checked here -- by each config's ``__post_init__``
and so by the CLI, the presets and ``--config`` files, which all build configs."""

from __future__ import annotations

import dataclasses
import functools
import typing


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def choices(cls, name: str) -> tuple | None:
    """The allowed values of field ``name`` of dataclass ``cls`` if it is a Literal, else None."""
    tp = _hints(cls)[name]
    return typing.get_args(tp) if typing.get_origin(tp) is typing.Literal else None


def check_config(obj, positive: tuple[str, ...] = ()) -> None:
    """ValueError naming the field if a Literal field holds another value, or a field named in
    ``positive`` is not > 0 (bools are not numbers here)."""
    cls = type(obj)
    for f in dataclasses.fields(obj):
        allowed = choices(cls, f.name)
        v = getattr(obj, f.name)
        if allowed is not None and v not in allowed:
            raise ValueError(f"{cls.__name__}.{f.name} must be one of "
                             f"{', '.join(map(repr, allowed))}, not {v!r}")
    for name in positive:
        v = getattr(obj, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"{cls.__name__}.{name} must be > 0, got {v!r}")
