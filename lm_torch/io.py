"""Files on the Torch side: the checkpoint error type, and the one copy of atomic writes and
strict JSON reads (``bridge.files``), re-exported with ``CheckpointError`` as their error."""

from __future__ import annotations

import os
from typing import Any

from bridge.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from bridge.files import read_json as _read_json

__all__ = ["CheckpointError", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
           "read_json", "printable"]


class CheckpointError(Exception):
    """A checkpoint or artefact that is missing, corrupt or does not fit what loads it."""


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """The JSON value in ``path``; :class:`CheckpointError` if it is missing or invalid."""
    return _read_json(path, what, error=CheckpointError)


def printable(text: str) -> str:
    """``text`` on one line: control characters (an untrained model emits any byte) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
