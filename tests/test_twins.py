"""The framework twins agree to 1e-5: attention, the REINFORCE loss and its gradient, GAE."""

import numpy as np
import pytest
import tensorflow as tf
import torch

from lm_torch import twins as pt
from rl_tf import twins as tft

pytestmark = pytest.mark.parity

rng = np.random.default_rng(0)


def test_attention_twins():
    q, k, v = (rng.normal(size=(2, 5, 8)).astype(np.float32) for _ in range(3))
    for causal in (True, False):
        a = pt.attention(*map(torch.from_numpy, (q, k, v)), causal=causal).numpy()
        b = tft.attention(q, k, v, causal=causal).numpy()
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_reinforce_loss_and_gradient_twins():
    logits = rng.normal(size=(6, 4)).astype(np.float32)
    actions = rng.integers(0, 4, 6)
    adv = rng.normal(size=6).astype(np.float32)
    lt = torch.tensor(logits, requires_grad=True)
    loss_t = pt.reinforce_loss(lt, torch.tensor(actions), torch.tensor(adv))
    loss_t.backward()
    lf = tf.Variable(logits)
    with tf.GradientTape() as tape:
        loss_f = tft.reinforce_loss(lf, tf.constant(actions, tf.int32), tf.constant(adv))
    np.testing.assert_allclose(loss_t.item(), float(loss_f), atol=1e-5)
    np.testing.assert_allclose(lt.grad.numpy(), tape.gradient(loss_f, lf).numpy(), atol=1e-5)


def test_gae_twins_and_the_reference():
    from rl_tf.returns import gae_numpy

    r, v, nv = (rng.normal(size=(7, 3)).astype(np.float32) for _ in range(3))
    d = (rng.random((7, 3)) < 0.2).astype(np.float32)
    a = pt.gae(*map(torch.from_numpy, (r, v, nv, d)), 0.99, 0.95).numpy()
    b = tft.gae(r, v, nv, d, 0.99, 0.95).numpy()
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, gae_numpy(r, v, nv, d, d, 0.99, 0.95)[0], atol=1e-5)
