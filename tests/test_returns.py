"""Returns and GAE: the TensorFlow code equals the NumPy reference, which equals hand sums."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from rl_tf.returns import discount_cumsum, discount_cumsum_tf, gae_numpy, gae_tf, reward_to_go


def test_reward_to_go_by_hand():
    g = reward_to_go(np.array([1.0, 2.0, 3.0]), 0.5)
    np.testing.assert_allclose(g, [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3])
    ends = np.array([0.0, 1.0, 0.0])  # an episode ends after step 1
    np.testing.assert_allclose(discount_cumsum(np.array([1.0, 2.0, 3.0]), 0.5, ends),
                               [1 + 0.5 * 2, 2, 3])


def test_gae_with_lambda_one_is_the_bootstrapped_return_minus_value():
    r = np.array([[1.0], [1.0], [1.0]])
    v = np.array([[0.5], [0.4], [0.3]])
    nv = np.array([[0.4], [0.3], [2.0]])  # the rollout is cut after step 2: bootstrap V = 2
    zeros = np.zeros_like(r)
    adv, ret = gae_numpy(r, v, nv, zeros, zeros, gamma=0.9, lam=1.0)
    np.testing.assert_allclose(ret[:, 0], [1 + 0.9 + 0.81 + 0.729 * 2, 1 + 0.9 + 0.81 * 2,
                                           1 + 0.9 * 2])
    np.testing.assert_allclose(adv, ret - v)


def test_termination_does_not_bootstrap_truncation_does():
    r = np.ones((1, 2))
    v = np.zeros((1, 2))
    nv = np.full((1, 2), 10.0)
    term = np.array([[1.0, 0.0]])  # env 0 terminated, env 1 truncated
    adv, _ = gae_numpy(r, v, nv, term, np.ones((1, 2)), 0.9, 0.95)
    np.testing.assert_allclose(adv, [[1.0, 1.0 + 9.0]])


@given(T=st.integers(1, 40), N=st.integers(1, 5), seed=st.integers(0, 10_000),
       gamma=st.floats(0.5, 1.0), lam=st.floats(0.0, 1.0))
@settings(max_examples=30, deadline=None)
def test_tf_equals_numpy(T, N, seed, gamma, lam):
    rng = np.random.default_rng(seed)
    r, v, nv = (rng.normal(size=(T, N)).astype(np.float32) for _ in range(3))
    ends = rng.random((T, N)) < 0.1
    term = ends & (rng.random((T, N)) < 0.5)
    np.testing.assert_allclose(
        discount_cumsum_tf(r, tf.constant(gamma, tf.float32), ends.astype(np.float32)).numpy(),
        discount_cumsum(r, gamma, ends), rtol=1e-6, atol=1e-6 * T)
    a_np, ret_np = gae_numpy(r, v, nv, term, ends, gamma, lam)
    a_tf, ret_tf = gae_tf(r, v, nv, term, ends, gamma, lam)
    np.testing.assert_allclose(a_tf.numpy(), a_np, rtol=1e-6, atol=1e-6 * T)
    np.testing.assert_allclose(ret_tf.numpy(), ret_np, rtol=1e-6, atol=1e-6 * T)


def test_shapes_must_agree():
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
        gae_tf(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((4, 2)), np.zeros((3, 2)),
               np.zeros((3, 2)), 0.9, 0.9)
