"""Metrics: kept in memory (for tests and plots) and written as TensorBoard scalars."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from bridge import metrics as M


def seed_everything(seed: int) -> None:
    """One seed for Python, NumPy, TensorFlow and Keras (the TF side of DESIGN.md's rule)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    keras.utils.set_random_seed(seed)


class Logger:
    """``log(step, {name: value})``: history in ``self.history``, scalars in TensorBoard."""

    def __init__(self, log_dir: str | os.PathLike | None = None):
        self.history: list[dict] = []
        self.writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else None

    def log(self, step: int, values: dict[str, float]) -> None:
        """Record one row; UnregisteredMetricError for a name not in ``bridge.metrics``."""
        M.check(values)
        row = {"step": int(step), **{k: float(v) for k, v in values.items()}}
        self.history.append(row)
        if self.writer is not None:
            with self.writer.as_default(step=int(step)):
                for k, v in values.items():
                    tf.summary.scalar(k, float(v))

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one metric."""
        rows = [r for r in self.history if name in r]
        return [r["step"] for r in rows], [r[name] for r in rows]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


_SEGMENT = re.compile(r"\.it(\d{7})-(\d{7})$")


def write_tensorboard_segment(log_dir: str | os.PathLike, rows: list[dict], step_key: str,
                              first: int, last: int) -> None:
    """Write ``rows`` (each with its step under ``step_key``) as one new event file of
    ``log_dir``, named by the steps ``first..last`` it covers (see :func:`tensorboard_resume`)."""
    if not rows:
        return
    M.check({k for r in rows for k in r if k != step_key})
    w = tf.summary.create_file_writer(str(log_dir), filename_suffix=f".it{first:07d}-{last:07d}")
    with w.as_default():
        for r in rows:
            for k, v in r.items():
                if k != step_key:
                    tf.summary.scalar(k, float(v), step=int(r[step_key]))
    w.flush()
    w.close()


def tensorboard_resume(log_dir: str | os.PathLike, step: int) -> int:
    """Prepare ``log_dir`` for a run resumed at ``step``: event files written by
    :func:`write_tensorboard_segment` past ``step`` are deleted (so no step is logged twice);
    returns the last step the remaining files cover (0 if none)."""
    last = 0
    for f in Path(log_dir).glob("events.out.tfevents.*"):
        m = _SEGMENT.search(f.name)
        if not m:
            continue
        if int(m.group(2)) > step:
            f.unlink()
        else:
            last = max(last, int(m.group(2)))
    return last
