"""NumPy numerics shared by both sides of the bridge (no framework).

Log-probabilities always come from logits through a stable ``log_softmax`` (STYLE.md: never
``log(softmax(x))``), book 4.2.3.
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, computed as z - log sum exp z with z = x - max x."""
    z = logits - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def iteration_seed(seed: int, it: int) -> int:
    """A seed for iteration ``it`` of a run seeded ``seed``: randomness per iteration is a
    function of (seed, iteration) only, so a resumed run draws what an uninterrupted one does."""
    return (seed * 1_000_003 + it * 7919) % (2**31 - 1)
