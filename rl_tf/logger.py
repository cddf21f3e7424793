"""Metrics: kept in memory (for tests and plots) and written as TensorBoard scalars."""

from __future__ import annotations

import os
import random

import keras
import numpy as np
import tensorflow as tf


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
