"""Policy-gradient losses (book 4.2.3, 3.3.1), as plain functions of logits.

Log-probabilities come from ``log_softmax`` of the logits, never ``log(softmax)`` (which
underflows to -inf for unlikely actions; the book's listing 5.2.1 does the latter).

Symbols: logits (B, A) of pi_theta(.|s), actions (B,) int, advantages (B,) float.
"""

from __future__ import annotations

import tensorflow as tf


def log_prob(logits: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
    """log pi(a|s) for each row: (B,)."""
    logp_all = tf.nn.log_softmax(logits, axis=-1)
    return tf.gather(logp_all, tf.cast(actions, tf.int32), axis=-1, batch_dims=1)


def entropy(logits: tf.Tensor) -> tf.Tensor:
    """H(pi(.|s)) for each row: (B,)."""
    logp = tf.nn.log_softmax(logits, axis=-1)
    return -tf.reduce_sum(tf.exp(logp) * logp, axis=-1)


def normalize(x: tf.Tensor, eps: float = 1e-8) -> tf.Tensor:
    """Advantage normalisation: zero mean, unit standard deviation over the batch."""
    mean, var = tf.nn.moments(x, axes=[0])
    return (x - mean) / (tf.sqrt(var) + eps)


def reinforce_loss(logits, actions, advantages) -> tf.Tensor:
    """-mean_t log pi(a_t|s_t) A_t: its gradient is book 4.2.3's estimate of -grad J."""
    return -tf.reduce_mean(log_prob(logits, actions) * tf.stop_gradient(advantages))


def approx_kl(new_logp, old_logp):
    """(k1, k3): two estimates of KL(pi_old || pi_new) from actions sampled by pi_old.

    k1 = mean(log pi_old - log pi_new) (unbiased, can be negative); k3 = mean((r - 1) - log r),
    r = pi_new / pi_old (unbiased and never negative). Logged as ``policy/approx_kl_k1`` and
    ``policy/approx_kl_k3``: one name, one estimator.
    """
    log_ratio = new_logp - old_logp
    return -tf.reduce_mean(log_ratio), tf.reduce_mean(tf.exp(log_ratio) - 1.0 - log_ratio)


def explained_variance(values, returns):
    """1 - Var(G - V) / Var(G): how much of the returns' variance the critic explains."""
    var = tf.math.reduce_variance(returns)
    return tf.where(var > 0, 1.0 - tf.math.reduce_variance(returns - values) / var, 0.0)


def ppo_clip_loss(logits, actions, advantages, old_logp, clip: float):
    """PPO's clipped surrogate: -mean min(rho A, clip(rho, 1-eps, 1+eps) A), rho = pi/pi_old.

    Returns (loss, approx_kl, clipfrac); approx_kl is the k3 estimator mean((rho-1) - log rho).
    """
    logp = log_prob(logits, actions)
    log_ratio = logp - old_logp
    ratio = tf.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = tf.clip_by_value(ratio, 1.0 - clip, 1.0 + clip) * advantages
    loss = -tf.reduce_mean(tf.minimum(unclipped, clipped))
    approx_kl = tf.reduce_mean((ratio - 1.0) - log_ratio)
    clipfrac = tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip, tf.float32))
    return loss, approx_kl, clipfrac
