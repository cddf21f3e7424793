"""Keras networks and losses: the book's PolicyNetwork, save/load, spaces, log-probabilities."""

import re

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

from rl_tf.losses import entropy, log_prob, ppo_clip_loss, reinforce_loss
from rl_tf.networks import (
    ActorCritic,
    PolicyNetwork,
    UnsupportedSpaceError,
    ValueNetwork,
    build,
    check_spaces,
)


def test_policy_network_is_three_dense_layers_and_round_trips(tmp_path):
    net = build(PolicyNetwork(3, 16), 5)
    assert [type(layer).__name__ for layer in (net.fc1, net.fc2, net.fc3)] == ["Dense"] * 3
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    net.save(tmp_path / "pi.keras")
    again = keras.models.load_model(tmp_path / "pi.keras")
    np.testing.assert_allclose(again(x), net(x), rtol=1e-6)
    for model in (build(ValueNetwork(8), 5), build(ActorCritic(3, 8, shared=True), 5)):
        model.save(tmp_path / "m.keras")
        loaded = keras.models.load_model(tmp_path / "m.keras")
        tf.nest.map_structure(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
                              loaded(x), model(x))


def test_zero_initialised_last_layer_starts_uniform():
    net = build(PolicyNetwork(4, 8, zero_init_last=True), 3)
    np.testing.assert_array_equal(net(np.ones((2, 3), np.float32)), np.zeros((2, 4)))


@pytest.mark.parametrize("obs, act, name", [
    (gym.spaces.Box(0, 1, (4, 4)), gym.spaces.Discrete(2), "observation space Box"),
    (gym.spaces.Discrete(3), gym.spaces.Discrete(2), "observation space Discrete(3)"),
    (gym.spaces.Box(0, 1, (4,)), gym.spaces.Box(-1, 1, (1,)), "action space Box"),
    (gym.spaces.Box(0, 1, (4,)), gym.spaces.MultiDiscrete([2, 2]), "action space MultiDiscrete"),
])
def test_unsupported_spaces_are_named(obs, act, name):
    with pytest.raises(UnsupportedSpaceError, match=re.escape(name)):
        check_spaces(obs, act)


def test_log_prob_from_logits_where_log_softmax_underflows():
    logits = tf.constant([[0.0, -200.0]])
    book = tf.math.log(tf.nn.softmax(logits)[0, 1])  # listing 5.2.1's way
    assert np.isneginf(book.numpy())
    assert log_prob(logits, tf.constant([1])).numpy()[0] == pytest.approx(-200.0)


def test_entropy_and_losses_by_hand():
    logits = tf.constant([[0.0, 0.0], [np.log(3.0), 0.0]])
    np.testing.assert_allclose(entropy(logits), [np.log(2), -(0.75 * np.log(0.75)
                                                              + 0.25 * np.log(0.25))], rtol=1e-6)
    a, adv = tf.constant([0, 1]), tf.constant([1.0, 2.0])
    expected = -(np.log(0.5) * 1.0 + np.log(0.25) * 2.0) / 2
    assert float(reinforce_loss(logits, a, adv)) == pytest.approx(expected, rel=1e-6)
    old = log_prob(logits, a)
    loss, kl, clipfrac = ppo_clip_loss(logits, a, adv, old, 0.2)  # ratio 1 everywhere
    assert float(loss) == pytest.approx(-1.5) and float(kl) == 0 and float(clipfrac) == 0
    # a ratio of 2 with a positive advantage is clipped to 1.2
    loss, _, clipfrac = ppo_clip_loss(logits, a, adv, old - np.log(2.0), 0.2)
    assert float(loss) == pytest.approx(-1.2 * 1.5, rel=1e-5) and float(clipfrac) == 1.0


def test_reinforce_gradient_matches_finite_differences():
    """Book 4.2.3 on a one-step problem: grad J = E[grad log pi(a) r(a)], checked numerically."""
    r = np.array([1.0, 3.0, -2.0])
    theta = tf.Variable([0.2, -0.1, 0.5])

    def J(t):
        return float(tf.reduce_sum(tf.nn.softmax(t) * r))

    with tf.GradientTape() as tape:  # exact expectation of the score-function estimator
        p = tf.stop_gradient(tf.nn.softmax(theta))
        surrogate = -reinforce_loss(tf.tile(theta[None], [3, 1]), tf.range(3),
                                    tf.constant(r * p.numpy() * 3, tf.float32))
    grad = tape.gradient(surrogate, theta).numpy()
    eps = 1e-3
    fd = [(J(theta + eps * np.eye(3)[i]) - J(theta - eps * np.eye(3)[i])) / (2 * eps)
          for i in range(3)]
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-4)
