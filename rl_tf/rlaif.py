"""RL from AI feedback on the token-level MDP (book 3.1, 3.3, 4.3.2; listing 5.2.2, corrected).

The policy of DESIGN.md: pi_theta(a|s) proportional to exp(ref_logits(s) / tau + g_theta(h(s))),
h(s) the frozen LM's last hidden state, g_theta the book's PolicyNetwork with its output layer
at zero -- so training starts exactly at the reference policy -- and a value head V(h(s)).

Rewards (book 4.3.2): each step pays the KL penalty r_t = -beta (log pi(a_t|s_t) -
log pi_ref(a_t|s_t)) (the k1 estimator), and the end of the sequence pays alpha f, f the fused
AI feedback. REINFORCE with the learned baseline (the RLAIF paper's choice) maximises
E[sum_t grad log pi(a_t|s_t) (G_t - V(s_t))], G_t the reward-to-go. PPO reuses the same rollouts
with the clipped surrogate. The exact per-token KL sum_a pi(a) (log pi(a) - log pi_ref(a)) --
both distributions are known here -- is logged beside the k1 and k3 sample estimators, and a
fixed or adaptive controller sets beta (Ziegler et al.: beta <- beta (1 + e / horizon),
e = clip(KL / target - 1, -0.2, 0.2)). Everything that enters or leaves is NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from bridge import metrics as M
from bridge.numerics import log_softmax

from .envs import sample_actions
from .losses import approx_kl, entropy, explained_variance, normalize, ppo_clip_loss
from .networks import PolicyNetwork, ValueNetwork, build
from .rl_config import RLConfig


class KLController:
    """Fixed beta, or adaptive towards a target KL per sequence (book 3.3.2's dynamic tuning)."""

    def __init__(self, init: float, target: float = 0.0, horizon: int = 1000):
        self.value, self.target, self.horizon = float(init), float(target), int(horizon)

    def update(self, kl: float, n_sequences: int) -> float:
        """After a rollout of ``n_sequences`` with mean KL ``kl``: the next beta."""
        if self.target > 0:
            err = float(np.clip(kl / self.target - 1.0, -0.2, 0.2))
            self.value *= 1.0 + err * n_sequences / self.horizon
        return self.value


class ResidualPolicy:
    """pi(a|s) = softmax(ref_logits / tau + g(h)), plus V(h); weights in Keras."""

    def __init__(self, vocab_size: int, hidden_size: int, cfg: RLConfig, seed: int = 0):
        self.cfg = cfg
        self.g = build(PolicyNetwork(vocab_size, cfg.hidden_dim, zero_init_last=True),
                       hidden_size)
        self.v = build(ValueNetwork(cfg.hidden_dim), hidden_size)
        self.opt = keras.optimizers.Adam(cfg.lr)
        self.opt.build(self.variables)
        self.rng = tf.random.Generator.from_seed(seed)

    @property
    def variables(self):
        return self.g.trainable_variables + self.v.trainable_variables

    def logits(self, hidden, ref_logits):
        return ref_logits / self.cfg.temperature + self.g(hidden)

    @tf.function
    def _act(self, hidden, ref_logits):
        logits = self.logits(hidden, ref_logits)
        return sample_actions(logits, self.rng), tf.nn.log_softmax(logits, -1)

    def act(self, hidden: np.ndarray, ref_logits: np.ndarray):
        """(actions int32 [B], log pi [B, V]) for one step of B sequences."""
        a, logp = self._act(tf.constant(hidden), tf.constant(ref_logits))
        return a.numpy(), logp.numpy()

    def reseed(self, seed: int) -> None:
        self.rng.reset_from_seed(seed)

    # --- saving: plain arrays (npz), no pickle --------------------------------------------
    PREFIX = "policy/"  #: the keys of this policy in a checkpoint that holds other state too

    def get_state(self) -> dict[str, np.ndarray]:
        """Weights of g and V and the optimizer's slots, as ``policy/...`` arrays."""
        p = self.PREFIX
        out = {f"{p}g{i}": w for i, w in enumerate(self.g.get_weights())}
        out.update({f"{p}v{i}": w for i, w in enumerate(self.v.get_weights())})
        out.update({f"{p}opt{i}": v.numpy() for i, v in enumerate(self.opt.variables)})
        return out

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`get_state`'s arrays (other keys of ``state`` are ignored); KeyError or
        ValueError if they do not fit this policy."""
        p = self.PREFIX
        self.g.set_weights([state[f"{p}g{i}"] for i in range(len(self.g.get_weights()))])
        self.v.set_weights([state[f"{p}v{i}"] for i in range(len(self.v.get_weights()))])
        for i, v in enumerate(self.opt.variables):
            if tuple(v.shape) != state[f"{p}opt{i}"].shape:
                raise ValueError(f"optimizer slot {i}: shape {state[f'{p}opt{i}'].shape}, "
                                 f"expected {tuple(v.shape)}")
            v.assign(state[f"{p}opt{i}"])


@dataclass
class TokenRollout:
    """One batch of B token sequences of at most T steps (time-major): the token MDP's
    rollout (``rl_tf.envs.Rollout`` is the Gymnasium vector-env one, with rewards and values)."""

    hidden: np.ndarray  #: (T, B, D)
    ref_logits: np.ndarray  #: (T, B, V)
    actions: np.ndarray  #: (T, B)
    logp: np.ndarray  #: (T, B) log pi(a_t|s_t) at sampling time
    ref_logp: np.ndarray  #: (T, B) log pi_ref(a_t|s_t)
    kl_exact: np.ndarray  #: (T, B) sum_a pi (log pi - log pi_ref)
    mask: np.ndarray  #: (T, B) True while the sequence was running


def rollout(env, policy: ResidualPolicy, prompts=None):
    """Drive ``env`` (a ``bridge.env.BatchedTextEnv``) to the end of every sequence."""
    s = env.reset(prompts=prompts)
    buf = {k: [] for k in ("hidden", "ref_logits", "actions", "logp", "ref_logp", "kl_exact",
                           "mask")}
    while not s.done.all():
        a, logp_all = policy.act(s.hidden, s.logits)
        ref_all = log_softmax(s.logits)
        idx = np.arange(len(a))
        p = np.exp(logp_all)
        for k, v in (("hidden", s.hidden), ("ref_logits", s.logits), ("actions", a),
                     ("logp", logp_all[idx, a]), ("ref_logp", ref_all[idx, a]),
                     ("kl_exact", (p * (logp_all - ref_all)).sum(-1)), ("mask", ~s.done)):
            buf[k].append(np.asarray(v))
        s, _, _, _ = env.step(a.astype(np.int32))
    return TokenRollout(**{k: np.stack(v) for k, v in buf.items()}), s


def kl_estimates(ro: TokenRollout) -> dict[str, float]:
    """Mean per-sequence KL(pi || pi_ref): exact, k1 and k3 (all summed over tokens)."""
    m = ro.mask.astype(np.float64)
    log_r = ro.ref_logp - ro.logp  # log pi_ref / pi of the sampled tokens
    k1 = (-log_r * m).sum(0)
    k3 = ((np.exp(log_r) - 1.0 - log_r) * m).sum(0)
    exact = (ro.kl_exact * m).sum(0)
    return {M.KL_EXACT: float(exact.mean()), M.KL_K1: float(k1.mean()),
            M.KL_K3: float(k3.mean()), "_per_sequence": exact}


def returns_with_kl(ro: TokenRollout, feedback: np.ndarray, beta: float,
                    alpha: float) -> np.ndarray:
    """G_t = sum_{k>=t} -beta (log pi - log pi_ref)_k + alpha f (terminal), masked: (T, B)."""
    m = ro.mask.astype(np.float64)
    r = -beta * (ro.logp - ro.ref_logp) * m
    last = m.cumsum(0) == m.sum(0, keepdims=True)  # the last running step of each sequence
    r = r + alpha * np.where(last & ro.mask, feedback[None, :], 0.0)
    return np.flip(np.cumsum(np.flip(r, 0), 0), 0).astype(np.float32)


class Trainer:
    """One update per rollout: REINFORCE with baseline, or PPO epochs."""

    def __init__(self, policy: ResidualPolicy, cfg: RLConfig):
        self.p, self.cfg = policy, cfg

    @tf.function(reduce_retracing=True)
    def _step(self, hidden, ref_logits, actions, old_logp, adv, returns, ent_coef, ppo):
        with tf.GradientTape() as tape:
            logits = self.p.logits(hidden, ref_logits)
            logp_all = tf.nn.log_softmax(logits, -1)
            logp = tf.gather(logp_all, actions, axis=-1, batch_dims=1)
            if ppo:
                pg, _, clipfrac = ppo_clip_loss(logits, actions, adv, old_logp,
                                                self.cfg.ppo_clip)
            else:
                pg = -tf.reduce_mean(logp * adv)
                clipfrac = tf.constant(0.0)
            k1, k3 = approx_kl(logp, old_logp)
            values = self.p.v(hidden)
            ent = tf.reduce_mean(entropy(logits))
            v_loss = 0.5 * tf.reduce_mean(tf.square(values - returns))
            loss = pg - ent_coef * ent + v_loss
        grads = tape.gradient(loss, self.p.variables)
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        self.p.opt.apply_gradients(zip(grads, self.p.variables))
        return pg, v_loss, ent, k1, k3, clipfrac, explained_variance(values, returns)

    def update(self, ro: TokenRollout, returns: np.ndarray) -> dict[str, float]:
        sel = ro.mask
        hidden, ref = ro.hidden[sel], ro.ref_logits[sel]
        actions = ro.actions[sel].astype(np.int32)
        old = ro.logp[sel].astype(np.float32)
        ret = returns[sel]
        values = self.p.v(hidden).numpy()
        adv = normalize(tf.constant(ret - values)).numpy()
        ppo = self.cfg.algo == "ppo"
        stats = [self._step(hidden, ref, actions, old, adv, ret,
                            tf.constant(self.cfg.ent_coef, tf.float32), ppo)
                 for _ in range(self.cfg.ppo_epochs if ppo else 1)]
        pg, vl, ent, k1, k3, cf, ev = (float(np.mean([s[i] for s in stats])) for i in range(7))
        return {M.LOSS_POLICY: pg, M.LOSS_VALUE: vl, M.LOSS_ENTROPY: ent, M.APPROX_KL_K1: k1,
                M.APPROX_KL_K3: k3, M.CLIPFRAC: cf, M.EXPLAINED_VARIANCE: ev}
