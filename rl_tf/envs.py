"""Gymnasium 1.x plumbing: vectorised environments, rollouts, deterministic evaluation.

Gymnasium 1.x API: ``reset() -> (obs, info)``; ``step() -> (obs, reward, terminated, truncated,
info)``. Vector environments here use SAME_STEP autoreset: when an episode ends, ``step``
returns the first observation of the next episode and puts the last one in
``info["final_obs"]``, which is what a truncated step bootstraps from (book 4.2.2: V(s') of a
state that is not terminal).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import tensorflow as tf


def make_vec_env(env_id: str, num_envs: int, seed: int | None = None,
                 **env_kwargs) -> gym.vector.VectorEnv:
    """A synchronous vector env with SAME_STEP autoreset (``env_kwargs`` go to each env)."""
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
                       **env_kwargs)
    env.reset(seed=seed)
    return env


def sample_actions(logits: tf.Tensor, rng: tf.random.Generator) -> tf.Tensor:
    """Categorical sampling by the Gumbel-max trick with a seeded generator: (B,) int32.

    argmax(logits + g), g ~ Gumbel(0, 1), is a draw from softmax(logits); a
    ``tf.random.Generator`` makes it reproducible within one process, run after run.
    """
    u = rng.uniform(tf.shape(logits), minval=1e-12, maxval=1.0)
    return tf.argmax(logits - tf.math.log(-tf.math.log(u)), axis=-1, output_type=tf.int32)


@dataclass
class Rollout:
    """Time-major arrays of one rollout of T steps in N environments."""

    obs: np.ndarray  #: (T, N, obs_dim)
    actions: np.ndarray  #: (T, N) int32
    logp: np.ndarray  #: (T, N) log pi_old(a|s)
    values: np.ndarray  #: (T, N) V(s_t)
    rewards: np.ndarray  #: (T, N)
    terminated: np.ndarray  #: (T, N) bool: no bootstrap
    ends: np.ndarray  #: (T, N) bool: terminated or truncated
    next_values: np.ndarray  #: (T, N) V(s_{t+1}) (of the final obs when an episode ended)


class EpisodeTracker:
    """Undiscounted returns and lengths of the episodes finished in vector envs."""

    def __init__(self, num_envs: int):
        self.ret = np.zeros(num_envs)
        self.len = np.zeros(num_envs, dtype=np.int64)
        self.finished: list[tuple[float, int]] = []

    def step(self, rewards: np.ndarray, ends: np.ndarray) -> None:
        self.ret += rewards
        self.len += 1
        for i in np.flatnonzero(ends):
            self.finished.append((float(self.ret[i]), int(self.len[i])))
            self.ret[i], self.len[i] = 0.0, 0

    def pop(self) -> list[tuple[float, int]]:
        out, self.finished = self.finished, []
        return out


def evaluate(policy_logits, env_id: str, episodes: int = 10, seed: int = 10_000,
             max_steps: int = 10_000, **env_kwargs) -> float:
    """Mean return of ``episodes`` deterministic (argmax) episodes, run side by side.

    ``policy_logits(obs (N, D)) -> logits (N, A)``; ``env_kwargs`` go to each env.
    """
    env = gym.make_vec(env_id, num_envs=episodes, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
                       **env_kwargs)
    obs, _ = env.reset(seed=seed)
    total = np.zeros(episodes)
    alive = np.ones(episodes, dtype=bool)
    for _ in range(max_steps):
        actions = np.asarray(tf.argmax(policy_logits(obs), axis=-1))
        obs, r, term, trunc, _ = env.step(actions)
        total += r * alive
        alive &= ~(term | trunc)
        if not alive.any():
            break
    env.close()
    return float(total.mean())
