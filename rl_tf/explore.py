"""Exploration schedules (book 2.2.3, 3.3.2, 9.2.2): entropy coefficients and temperatures.

A schedule maps progress to a value: ``schedule(step)``. ``AdaptiveCoefficient`` instead reacts
to what it measures: it raises the entropy coefficient when the policy's entropy falls below a
target and lowers it above, holding entropy near the target (as SAC's temperature does):

    log c  <-  log c + lr * (target - H)
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Constant:
    value: float

    def __call__(self, step: int) -> float:
        return self.value


@dataclass(frozen=True)
class Linear:
    """From ``start`` to ``end`` over ``steps`` steps, then ``end``."""

    start: float
    end: float
    steps: int

    def __call__(self, step: int) -> float:
        frac = min(1.0, max(0.0, step / max(1, self.steps)))
        return self.start + frac * (self.end - self.start)


@dataclass(frozen=True)
class Exponential:
    """``start * decay ** (step / steps)``, never below ``floor``."""

    start: float
    decay: float
    steps: int
    floor: float = 0.0

    def __call__(self, step: int) -> float:
        return max(self.floor, self.start * self.decay ** (step / max(1, self.steps)))


class AdaptiveCoefficient:
    """An entropy coefficient that holds policy entropy near ``target`` (nats)."""

    def __init__(self, target: float, init: float = 0.01, lr: float = 0.05,
                 bounds: tuple[float, float] = (1e-6, 10.0)):
        if init <= 0:
            raise ValueError("init must be > 0")
        self.target, self.lr, self.bounds = target, lr, bounds
        self.log_value = math.log(init)

    @property
    def value(self) -> float:
        return math.exp(self.log_value)

    def update(self, entropy: float) -> float:
        """Move the coefficient given the entropy just measured; returns the new value."""
        lo, hi = self.bounds
        self.log_value = min(math.log(hi), max(math.log(lo), self.log_value
                                               + self.lr * (self.target - entropy)))
        return self.value

    def __call__(self, step: int) -> float:
        return self.value
