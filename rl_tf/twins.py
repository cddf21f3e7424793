"""TensorFlow twins of ``lm_torch.twins``: the same names, only the framework calls change.

Used side by side in notebook 05 and held together by ``tests/test_twins.py`` (to 1e-5).
"""

from __future__ import annotations

import math

import tensorflow as tf


def attention(q, k, v, causal: bool = True):
    """softmax(Q K^T / sqrt(d_k)) V; q, k, v (B, T, d)."""
    scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(k.shape[-1])  # (B, T, T)
    if causal:
        T = q.shape[-2]
        mask = tf.linalg.band_part(tf.ones((T, T), tf.bool), -1, 0)
        scores = tf.where(mask, scores, tf.fill(tf.shape(scores), float("-inf")))
    return tf.nn.softmax(scores, axis=-1) @ v


def reinforce_loss(logits, actions, advantages):
    """-mean log pi(a|s) A, log pi from log_softmax of the logits (B, A)."""
    logp = tf.gather(tf.nn.log_softmax(logits, -1), actions, axis=-1, batch_dims=1)
    return -tf.reduce_mean(logp * tf.stop_gradient(advantages))


def gae(rewards, values, next_values, dones, gamma: float, lam: float):
    """A_t = delta_t + gamma lam (1 - d_t) A_{t+1}, delta_t = r_t + gamma (1-d_t) V' - V."""
    deltas = rewards + gamma * (1 - dones) * next_values - values
    out, running = [], tf.zeros_like(rewards[0])
    for t in range(len(rewards) - 1, -1, -1):
        running = deltas[t] + gamma * lam * (1 - dones[t]) * running
        out.append(running)
    return tf.stack(out[::-1])
