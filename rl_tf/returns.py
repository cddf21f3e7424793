"""Returns and advantages (book 4.2.2-4.2.3), in NumPy (the reference) and TensorFlow.

Symbols: r_t reward, gamma discount, V(s_t) value estimate, lambda the GAE parameter,
d_t = 1 when the episode *terminated* at t (no bootstrap), T the rollout length.

* discounted reward-to-go  G_t = sum_{k>=t} gamma^{k-t} r_k          (book 4.2.2, V^pi's sample)
* TD residual              delta_t = r_t + gamma (1 - d_t) V(s_{t+1}) - V(s_t)
* GAE(lambda)              A_t = delta_t + gamma lambda (1 - e_t) A_{t+1}

where e_t = 1 at any episode end (terminated *or* truncated): the advantage recursion stops at
every boundary, but a truncated step still bootstraps from V(s_{t+1}) of its final observation.
Both implementations take time-major arrays (T, N) for N parallel environments.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def discount_cumsum(x: np.ndarray, gamma: float, ends: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference: y_t = x_t + gamma (1 - ends_t) y_{t+1}, along axis 0."""
    x = np.asarray(x, dtype=np.float64)
    ends = np.zeros_like(x) if ends is None else np.asarray(ends, dtype=np.float64)
    y = np.zeros_like(x)
    running = np.zeros_like(x[0])
    for t in range(len(x) - 1, -1, -1):
        running = x[t] + gamma * (1.0 - ends[t]) * running
        y[t] = running
    return y


def reward_to_go(rewards: np.ndarray, gamma: float, ends: np.ndarray | None = None) -> np.ndarray:
    """G_t of book 4.2.3's Q estimate: discounted sum of the rewards from t to the episode end."""
    return discount_cumsum(rewards, gamma, ends)


def gae_numpy(rewards, values, next_values, terminated, ends, gamma: float, lam: float):
    """NumPy reference GAE(lambda): (advantages, returns = advantages + values)."""
    rewards, values = np.asarray(rewards, np.float64), np.asarray(values, np.float64)
    next_values = np.asarray(next_values, np.float64)
    deltas = rewards + gamma * (1.0 - np.asarray(terminated, np.float64)) * next_values - values
    adv = discount_cumsum(deltas, gamma * lam, ends)
    return adv, adv + values


@tf.function
def discount_cumsum_tf(x: tf.Tensor, gamma: tf.Tensor, ends: tf.Tensor) -> tf.Tensor:
    """TensorFlow twin of :func:`discount_cumsum` (time-major, reversed ``tf.scan``)."""
    x = tf.convert_to_tensor(x, tf.float32)
    keep = gamma * (1.0 - tf.cast(ends, tf.float32))

    def body(running, inp):
        xt, kt = inp
        return xt + kt * running

    return tf.scan(body, (x, keep), initializer=tf.zeros_like(x[0]), reverse=True)


def gae_tf(rewards, values, next_values, terminated, ends, gamma: float, lam: float):
    """TensorFlow twin of :func:`gae_numpy`: (advantages, returns)."""
    rewards = tf.convert_to_tensor(rewards, tf.float32)
    values = tf.convert_to_tensor(values, tf.float32)
    next_values = tf.convert_to_tensor(next_values, tf.float32)
    not_term = 1.0 - tf.cast(terminated, tf.float32)
    deltas = rewards + gamma * not_term * next_values - values
    adv = discount_cumsum_tf(deltas, tf.constant(gamma * lam, tf.float32),
                             tf.cast(ends, tf.float32))
    return adv, adv + values
