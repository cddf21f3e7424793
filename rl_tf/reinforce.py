"""REINFORCE with reward-to-go and a learned baseline (book 4.2.3, 3.3.1).

The policy-gradient theorem of book 4.2.3,
    grad J(theta) = E_tau[ sum_t grad log pi_theta(a_t|s_t) Q^pi(s_t, a_t) ],
estimated from whole episodes with Q^pi(s_t, a_t) ~ G_t, the discounted reward-to-go, minus a
learned baseline V_phi(s_t) (it lowers the variance and leaves the expectation unchanged).
Advantages are normalised per batch and an entropy bonus (with any schedule of
``rl_tf.explore``) keeps the policy exploring. Each batch is one episode per environment, all
run side by side; the policy and the value network are the book's three-Dense networks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from bridge import metrics as M

from .envs import evaluate, make_vec_env, sample_actions
from .explore import AdaptiveCoefficient, Constant
from .logger import Logger, seed_everything
from .losses import entropy, explained_variance, normalize, reinforce_loss
from .networks import PolicyNetwork, ValueNetwork, build, check_spaces
from .ppo import TrainLog
from .returns import reward_to_go


@dataclass(frozen=True)
class ReinforceConfig:
    """REINFORCE hyperparameters (defaults tuned for CartPole-v1)."""

    env_id: str = field(default="CartPole-v1", metadata={"help": "Gymnasium environment id"})
    seed: int = field(default=0, metadata={"help": "seeds Python, NumPy, TF and the envs"})
    total_steps: int = field(default=200_000, metadata={"help": "environment steps in all"})
    episodes_per_batch: int = field(default=16, metadata={"help": "episodes per update"})
    lr: float = field(default=3e-3, metadata={"help": "policy learning rate (Adam)"})
    value_lr: float = field(default=3e-3, metadata={"help": "baseline learning rate (Adam)"})
    value_epochs: int = field(default=10, metadata={"help": "baseline passes per batch"})
    gamma: float = field(default=0.99, metadata={"help": "discount of the reward-to-go"})
    baseline: bool = field(default=True, metadata={"help": "subtract a learned V(s)"})
    normalize_adv: bool = field(default=True, metadata={"help": "normalise advantages"})
    ent_coef: float = field(default=0.0, metadata={"help": "entropy bonus coefficient"})
    target_entropy: float = field(default=0.0,
                                  metadata={"help": "if > 0, adapt ent_coef to hold this entropy"})
    hidden_dim: int = field(default=64, metadata={"help": "width of the hidden layers"})
    eval_interval: int = field(default=5000, metadata={"help": "env steps between evaluations"})
    eval_episodes: int = field(default=10, metadata={"help": "episodes per evaluation"})
    solve_return: float = field(default=475.0, metadata={"help": "evaluation mean that solves"})
    stop_when_solved: bool = field(default=False, metadata={"help": "stop once solved"})

    def __post_init__(self):
        for name in ("total_steps", "episodes_per_batch", "value_epochs", "eval_interval",
                     "eval_episodes", "hidden_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"ReinforceConfig.{name} must be >= 1")


def collect_episodes(env, policy_logits, rng, max_steps: int = 100_000):
    """One whole episode per env: list of (obs (L, D), actions (L,), rewards (L,))."""
    obs, _ = env.reset()
    N = env.num_envs
    alive = np.ones(N, dtype=bool)
    traj = [([], [], []) for _ in range(N)]
    for _ in range(max_steps):
        a = sample_actions(policy_logits(obs), rng).numpy()
        next_obs, r, term, trunc, _ = env.step(a)
        for i in np.flatnonzero(alive):
            traj[i][0].append(obs[i])
            traj[i][1].append(a[i])
            traj[i][2].append(r[i])
        alive &= ~(term | trunc)
        obs = next_obs
        if not alive.any():
            break
    return [(np.asarray(o, np.float32), np.asarray(a, np.int32), np.asarray(r, np.float32))
            for o, a, r in traj]


def train_reinforce(cfg: ReinforceConfig = ReinforceConfig(), log_dir=None,
                    progress: bool = True, env_kwargs: dict | None = None,
                    eval_kwargs: dict | None = None) -> TrainLog:
    """REINFORCE on ``cfg.env_id``; ``env_kwargs`` build the training envs and ``eval_kwargs``
    (default: the same) the greedy evaluation's (e.g. held-out questions of the KG walk)."""
    seed_everything(cfg.seed)
    env_kwargs = env_kwargs or {}
    eval_kwargs = env_kwargs if eval_kwargs is None else eval_kwargs
    env = make_vec_env(cfg.env_id, cfg.episodes_per_batch, cfg.seed, **env_kwargs)
    obs_dim, n_actions = check_spaces(env.single_observation_space, env.single_action_space)
    policy = build(PolicyNetwork(n_actions, cfg.hidden_dim), obs_dim)
    value = build(ValueNetwork(cfg.hidden_dim), obs_dim)
    pi_opt = keras.optimizers.Adam(cfg.lr)
    v_opt = keras.optimizers.Adam(cfg.value_lr)
    rng = tf.random.Generator.from_seed(cfg.seed)
    coef = (AdaptiveCoefficient(cfg.target_entropy, init=max(cfg.ent_coef, 1e-3))
            if cfg.target_entropy > 0 else Constant(cfg.ent_coef))
    logger = Logger(log_dir)
    logits_fn = tf.function(lambda obs: policy(obs))

    @tf.function(reduce_retracing=True)
    def policy_step(obs, actions, adv, ent_coef):
        with tf.GradientTape() as tape:
            logits = policy(obs)
            pg = reinforce_loss(logits, actions, adv)
            ent = tf.reduce_mean(entropy(logits))
            loss = pg - ent_coef * ent
        grads = tape.gradient(loss, policy.trainable_variables)
        pi_opt.apply_gradients(zip(grads, policy.trainable_variables))
        return pg, ent

    @tf.function(reduce_retracing=True)
    def value_step(obs, returns):
        with tf.GradientTape() as tape:
            loss = 0.5 * tf.reduce_mean(tf.square(value(obs) - returns))
        grads = tape.gradient(loss, value.trainable_variables)
        v_opt.apply_gradients(zip(grads, value.trainable_variables))
        return loss

    steps, next_eval, solved_at, last_eval = 0, cfg.eval_interval, None, float("nan")
    t0 = time.time()
    bar = tqdm(total=cfg.total_steps, disable=not progress, desc=f"reinforce {cfg.env_id}",
               dynamic_ncols=True, mininterval=1.0)
    while steps < cfg.total_steps:
        episodes = collect_episodes(env, logits_fn, rng)
        obs = np.concatenate([o for o, _, _ in episodes])
        actions = np.concatenate([a for _, a, _ in episodes])
        returns = np.concatenate([reward_to_go(r, cfg.gamma) for _, _, r in episodes])
        returns = returns.astype(np.float32)
        baseline = value(obs).numpy() if cfg.baseline else np.zeros_like(returns)
        ev = float(explained_variance(baseline, returns))
        adv = returns - baseline
        adv = normalize(tf.constant(adv, tf.float32)) if cfg.normalize_adv else adv
        pg, ent = policy_step(obs, actions, adv, tf.constant(coef(steps), tf.float32))
        v_loss = 0.0
        if cfg.baseline:
            for _ in range(cfg.value_epochs):
                v_loss = value_step(obs, returns)
        if isinstance(coef, AdaptiveCoefficient):
            coef.update(float(ent))
        n = len(actions)
        steps += n
        bar.update(n)
        ep_returns = [float(r.sum()) for _, _, r in episodes]
        row = {M.EPISODIC_RETURN: np.mean(ep_returns), M.EPISODIC_LENGTH: n / len(episodes),
               M.LOSS_POLICY: float(pg), M.LOSS_VALUE: float(v_loss), M.LOSS_ENTROPY: float(ent),
               M.EXPLAINED_VARIANCE: ev, M.ENTROPY_COEF: coef(steps),
               M.SPS: steps / max(time.time() - t0, 1e-9)}
        if steps >= next_eval or steps >= cfg.total_steps:
            next_eval += cfg.eval_interval
            last_eval = evaluate(logits_fn, cfg.env_id, cfg.eval_episodes, seed=cfg.seed + 10_000,
                                 **eval_kwargs)
            row[M.EVAL_RETURN] = last_eval
            if solved_at is None and last_eval >= cfg.solve_return:
                solved_at = steps
            bar.set_postfix(eval=f"{last_eval:.0f}", ret=f"{row[M.EPISODIC_RETURN]:.0f}")
        logger.log(steps, row)
        if solved_at is not None and cfg.stop_when_solved:
            break
    bar.close()
    env.close()
    logger.close()
    return TrainLog(logger, policy, solved_at, last_eval, time.time() - t0, steps)
