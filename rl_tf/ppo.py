"""PPO with the clipped surrogate, GAE(lambda), minibatch epochs and KL early stopping.

Book 3.3.1 (policy updates) with book 4.2.3's gradient, made stable: the update maximises
E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)], rho = pi_theta(a|s) / pi_old(a|s), with advantages
A from GAE(lambda) (``rl_tf.returns``). Implementation details, each at the line that does it:
vectorised envs with SAME_STEP autoreset; bootstrap on truncation, not on termination;
per-minibatch advantage normalisation; value loss 0.5 (V - R)^2; global gradient clipping;
linear annealing of learning rate and clip range; an epoch loop that stops when the k3 KL
estimate exceeds 1.5 x ``target_kl``; deterministic (argmax) evaluation every
``eval_interval`` steps. Defaults are Stable-Baselines3 zoo's for CartPole-v1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from bridge import metrics as M

from .envs import EpisodeTracker, Rollout, evaluate, make_vec_env, sample_actions
from .logger import Logger, seed_everything
from .losses import approx_kl, entropy, explained_variance, log_prob, normalize, ppo_clip_loss
from .networks import ActorCritic, build, check_spaces
from .returns import gae_tf


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters (defaults: SB3 zoo's CartPole-v1)."""

    env_id: str = field(default="CartPole-v1", metadata={"help": "Gymnasium environment id"})
    seed: int = field(default=0, metadata={"help": "seeds Python, NumPy, TF and the envs"})
    total_steps: int = field(default=100_000, metadata={"help": "environment steps in all"})
    num_envs: int = field(default=8, metadata={"help": "parallel environments"})
    num_steps: int = field(default=32, metadata={"help": "steps per env per rollout"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate (annealed to 0)"})
    gamma: float = field(default=0.98, metadata={"help": "discount"})
    gae_lambda: float = field(default=0.8, metadata={"help": "GAE lambda"})
    epochs: int = field(default=20, metadata={"help": "passes over each rollout"})
    minibatch_size: int = field(default=256, metadata={"help": "samples per gradient step"})
    clip: float = field(default=0.2, metadata={"help": "clip range eps (annealed to 0)"})
    ent_coef: float = field(default=0.0, metadata={"help": "entropy bonus coefficient"})
    vf_coef: float = field(default=0.5, metadata={"help": "value loss coefficient"})
    max_grad_norm: float = field(default=0.5, metadata={"help": "global gradient norm clip"})
    target_kl: float = field(default=0.0, metadata={"help": "KL early stop (0 = off)"})
    hidden_dim: int = field(default=64, metadata={"help": "width of the hidden layers"})
    eval_interval: int = field(default=2048, metadata={"help": "env steps between evaluations"})
    eval_episodes: int = field(default=10, metadata={"help": "episodes per evaluation"})
    solve_return: float = field(default=475.0, metadata={"help": "evaluation mean that solves"})
    stop_when_solved: bool = field(default=False, metadata={"help": "stop once solved"})

    def __post_init__(self):
        for name in ("total_steps", "num_envs", "num_steps", "epochs", "minibatch_size",
                     "eval_interval", "eval_episodes", "hidden_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOConfig.{name} must be >= 1")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError("PPOConfig.gamma must be in (0, 1] and gae_lambda in [0, 1]")


@dataclass
class TrainLog:
    """What a training run leaves: the metrics history, the model, when it was solved."""

    logger: Logger
    model: keras.Model
    steps_to_solve: int | None  #: first evaluation step whose mean return >= solve_return
    final_eval: float
    wall_seconds: float
    steps: int


def train_ppo(cfg: PPOConfig = PPOConfig(), log_dir=None, progress: bool = True) -> TrainLog:
    seed_everything(cfg.seed)
    env = make_vec_env(cfg.env_id, cfg.num_envs, cfg.seed)
    obs_dim, n_actions = check_spaces(env.single_observation_space, env.single_action_space)
    model = build(ActorCritic(n_actions, cfg.hidden_dim, "tanh"), obs_dim)
    opt = keras.optimizers.Adam(learning_rate=cfg.lr, epsilon=1e-5)
    rng = tf.random.Generator.from_seed(cfg.seed)
    logger = Logger(log_dir)

    @tf.function
    def act(obs):
        logits, value = model(obs)
        a = sample_actions(logits, rng)
        return a, log_prob(logits, a), value

    value_fn = tf.function(lambda obs: model(obs)[1])
    logits_fn = tf.function(lambda obs: model(obs)[0])

    @tf.function
    def update(obs, actions, old_logp, adv, returns, clip):
        with tf.GradientTape() as tape:
            logits, values = model(obs)
            pg_loss, _, clipfrac = ppo_clip_loss(logits, actions, normalize(adv), old_logp,
                                                 clip)
            v_loss = 0.5 * tf.reduce_mean(tf.square(values - returns))
            ent = tf.reduce_mean(entropy(logits))
            loss = pg_loss - cfg.ent_coef * ent + cfg.vf_coef * v_loss
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, cfg.max_grad_norm)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        k1, k3 = approx_kl(log_prob(logits, actions), old_logp)
        return pg_loss, v_loss, ent, k3, clipfrac, k1, explained_variance(values, returns)

    obs, _ = env.reset(seed=cfg.seed)
    tracker = EpisodeTracker(cfg.num_envs)
    batch = cfg.num_envs * cfg.num_steps
    n_updates = max(1, cfg.total_steps // batch)
    np_rng = np.random.default_rng(cfg.seed)
    steps, next_eval, solved_at, last_eval = 0, cfg.eval_interval, None, float("nan")
    t0 = time.time()
    bar = tqdm(total=n_updates * batch, disable=not progress, desc=f"ppo {cfg.env_id}",
               dynamic_ncols=True, mininterval=1.0)
    for update_i in range(n_updates):
        frac = 1.0 - update_i / n_updates  # linear annealing
        opt.learning_rate.assign(cfg.lr * frac)
        ro, obs = collect(env, obs, act, value_fn, cfg.num_steps, tracker)
        adv, ret = gae_tf(ro.rewards, ro.values, ro.next_values, ro.terminated, ro.ends,
                          cfg.gamma, cfg.gae_lambda)
        flat = dict(obs=ro.obs.reshape(batch, obs_dim), actions=ro.actions.reshape(batch),
                    logp=ro.logp.reshape(batch), adv=tf.reshape(adv, [batch]).numpy(),
                    ret=tf.reshape(ret, [batch]).numpy())
        clip = tf.constant(cfg.clip * frac, tf.float32)
        stats = []
        for _epoch in range(cfg.epochs):
            order = np_rng.permutation(batch)
            for s in range(0, batch, cfg.minibatch_size):
                i = order[s: s + cfg.minibatch_size]
                stats.append(update(flat["obs"][i], flat["actions"][i], flat["logp"][i],
                                    flat["adv"][i], flat["ret"][i], clip))
            if cfg.target_kl and float(stats[-1][3]) > 1.5 * cfg.target_kl:
                break  # KL early stopping
        steps += batch
        bar.update(batch)
        pg, vl, ent, k3, cf, k1, ev = (float(np.mean([s[k] for s in stats])) for k in range(7))
        row = {M.LOSS_POLICY: pg, M.LOSS_VALUE: vl, M.LOSS_ENTROPY: ent, M.APPROX_KL_K1: k1,
               M.APPROX_KL_K3: k3, M.CLIPFRAC: cf, M.EXPLAINED_VARIANCE: ev,
               M.LEARNING_RATE: cfg.lr * frac,
               M.SPS: steps / max(time.time() - t0, 1e-9)}
        finished = tracker.pop()
        if finished:
            row[M.EPISODIC_RETURN] = float(np.mean([r for r, _ in finished]))
            row[M.EPISODIC_LENGTH] = float(np.mean([n for _, n in finished]))
        if steps >= next_eval or update_i == n_updates - 1:
            next_eval += cfg.eval_interval
            last_eval = evaluate(logits_fn, cfg.env_id, cfg.eval_episodes, seed=cfg.seed + 10_000)
            row[M.EVAL_RETURN] = last_eval
            if solved_at is None and last_eval >= cfg.solve_return:
                solved_at = steps
            bar.set_postfix(eval=f"{last_eval:.0f}")
        logger.log(steps, row)
        if solved_at is not None and cfg.stop_when_solved:
            break
    bar.close()
    env.close()
    logger.close()
    return TrainLog(logger, model, solved_at, last_eval, time.time() - t0, steps)


def collect(env, obs, act, value_fn, num_steps: int, tracker: EpisodeTracker):
    """Run ``num_steps`` steps in every env; returns (Rollout, the next observation)."""
    N = env.num_envs
    buf = {k: [] for k in ("obs", "actions", "logp", "values", "rewards", "terminated", "ends",
                           "final_values")}
    for _ in range(num_steps):
        a, logp, v = act(obs)
        a = a.numpy()
        next_obs, r, term, trunc, info = env.step(a)
        ends = term | trunc
        final_v = np.zeros(N, np.float32)
        if trunc.any():  # bootstrap a truncated episode from its final observation
            idx = np.flatnonzero(trunc)
            final = np.stack([info["final_obs"][i] for i in idx]).astype(np.float32)
            final_v[idx] = value_fn(final).numpy()
        tracker.step(r, ends)
        for k, x in zip(buf, (obs, a, logp.numpy(), v.numpy(), r, term, ends, final_v)):
            buf[k].append(x)
        obs = next_obs
    arr = {k: np.asarray(v) for k, v in buf.items()}
    last_v = value_fn(obs.astype(np.float32)).numpy()
    following = np.concatenate([arr["values"][1:], last_v[None]], 0)  # V(s_{t+1}) in-episode
    next_values = np.where(arr["ends"], arr["final_values"], following).astype(np.float32)
    ro = Rollout(arr["obs"].astype(np.float32), arr["actions"].astype(np.int32),
                 arr["logp"].astype(np.float32), arr["values"].astype(np.float32),
                 arr["rewards"].astype(np.float32), arr["terminated"], arr["ends"], next_values)
    return ro, obs
