"""Exploration schedules, and an adaptive coefficient that holds entropy near its target."""

import pytest

from rl_tf.explore import AdaptiveCoefficient, Constant, Exponential, Linear


def test_schedules():
    assert Constant(0.1)(10**6) == 0.1
    lin = Linear(1.0, 0.0, 100)
    assert [lin(0), lin(50), lin(100), lin(1000)] == [1.0, 0.5, 0.0, 0.0]
    exp = Exponential(1.0, 0.5, 10, floor=0.1)
    assert exp(10) == pytest.approx(0.5) and exp(1000) == 0.1


def test_adaptive_coefficient_holds_entropy_near_the_target():
    """A toy policy whose entropy rises with the coefficient: H = 1.4 * c / (c + 0.05)."""
    coef = AdaptiveCoefficient(target=0.6, init=0.001, lr=0.5)
    for _ in range(300):
        c = coef.value
        coef.update(1.4 * c / (c + 0.05))
    c = coef.value
    assert 1.4 * c / (c + 0.05) == pytest.approx(0.6, abs=0.02)
    with pytest.raises(ValueError):
        AdaptiveCoefficient(0.5, init=0.0)
