"""Framework-free file helpers shared by every layer: atomic writes, strict JSON reads, and the
one check of a run directory ("does OUT already hold a run, and is it this one?").

Every artefact of the project is written through :func:`atomic_write_bytes` -- a temporary file
in the same folder, flushed and fsync'ed, then renamed over the target -- so a crash leaves the
old file or the new one, never half of one (STYLE.md: "nothing half-written").
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


class RunDirError(Exception):
    """A run directory that cannot be used as asked: another run's config, a finished run
    without ``--resume``, a path that is a file or cannot be written. Nothing was changed."""


class ArtefactError(Exception):
    """An artefact file that is missing or not what it should be (bad JSON, wrong shape)."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike, what: str = "file", error=ArtefactError) -> Any:
    """The JSON value in ``path``; ``error`` (a subclass of Exception) if missing or invalid."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise error(f"{what} {path} is not valid JSON ({type(e).__name__}: {e}); "
                    "delete it or recreate it") from None


def jsonable(cfg) -> Any:
    """A (nested) config dataclass as plain JSON values: tuples become lists, inf a string."""
    x = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, float) and math.isinf(x):
        return str(x)
    return x


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """``{"rl": {"lr": 1}}`` -> ``{"rl.lr": 1}`` (lists are leaves)."""
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}."))
    return out


def config_diff(old: Any, new: Any) -> list[str]:
    """The values that differ between two JSON configs, as ``"rl.lr: 0.001 -> 0.002"``."""
    a, b = flatten(old), flatten(new)
    return [f"{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k, object()) != b.get(k, object())]


def check_writable_dir(out: str | os.PathLike, what: str = "--out") -> Path:
    """``out`` as a Path if it is, or can become, a writable directory; else RunDirError.
    Nothing is created."""
    out = Path(out)
    for p in [out, *out.parents]:
        if p.exists():
            if not p.is_dir():
                raise RunDirError(f"{what} {out}: {p} is a file, not a directory; choose "
                                  "another path")
            if not os.access(p, os.W_OK | os.X_OK):
                raise RunDirError(f"{what} {out}: {p} is not writable; choose a writable "
                                  "directory")
            return out
    return out


def open_run_dir(out: str | os.PathLike, config: dict, resume: bool,
                 what: str = "run") -> bool:
    """Claim ``out`` for a run of ``config`` (its JSON form); True if it continues one.

    A new directory gets ``config.json``. An existing run is continued only with ``resume``
    and the same config (the changed values are named otherwise); its ``config.json`` is never
    rewritten. Raises :class:`RunDirError` and changes nothing when the directory cannot be used.
    """
    out = check_writable_dir(out)
    saved = out / "config.json"
    if saved.exists():
        old = read_json(saved, f"{what} config", error=RunDirError)
        if old != config:
            changed = config_diff(old, config)
            raise RunDirError(
                f"{out} holds a {what} with another config ({'; '.join(changed[:8])}"
                f"{' ...' if len(changed) > 8 else ''}); rerun with the same values, or choose "
                "another --out (nothing was changed)")
        if not resume:
            raise RunDirError(f"{out} already holds a {what}; pass --resume to continue it, or "
                              "choose another --out (nothing was changed)")
        return True
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(saved, config)
    return False


def atomic_write_figure(fig, path: str | os.PathLike, dpi: int = 90) -> None:
    """Save a matplotlib figure as PNG atomically (this module never imports matplotlib)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write_bytes(path, buf.getvalue())
