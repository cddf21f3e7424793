"""The formula-level twins agree to 1e-5 -- attention, the REINFORCE loss and its gradient, GAE --
and they are the production functions (``lm_torch/twins.py`` and ``rl_tf/twins.py`` re-export)."""

import numpy as np
import pytest
import tensorflow as tf
import torch

from lm_torch import model, policy
from lm_torch import twins as pt
from rl_tf import gpt, losses, returns
from rl_tf import twins as tft

pytestmark = pytest.mark.parity

rng = np.random.default_rng(0)


def test_the_twins_are_the_production_functions():
    assert pt.attention is model.attention_math and tft.attention is gpt.attention_math
    assert pt.reinforce_loss is policy.reinforce_loss
    assert tft.reinforce_loss is losses.reinforce_loss and tft.gae is returns.gae_tf


def test_attention_twins():
    q, k, v = (rng.normal(size=(2, 2, 5, 8)).astype(np.float32) for _ in range(3))  # (B,nh,T,hs)
    for mask in (None, np.ones((2, 1, 5, 5), bool)):  # causal, then every key visible
        a = pt.attention(*map(torch.from_numpy, (q, k, v)),
                         mask=None if mask is None else torch.from_numpy(mask)).numpy()
        b = np.asarray(tft.attention(q, k, v, mask=mask))
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
    r, v, nv = (rng.normal(size=(7, 3)).astype(np.float32) for _ in range(3))
    d = (rng.random((7, 3)) < 0.2).astype(np.float32)
    adv, ret = tft.gae(r, v, nv, d, d, 0.99, 0.95)
    ref_adv, ref_ret = tft.gae_numpy(r, v, nv, d, d, 0.99, 0.95)
    np.testing.assert_allclose(adv.numpy(), ref_adv, atol=1e-5)
    np.testing.assert_allclose(ret.numpy(), ref_ret, atol=1e-5)
