"""RL from AI feedback on the token-level MDP, in Keras (book 3.1, 3.3, 4.3.2; listing 5.2.2,
corrected). Twin: ``lm_torch/policy.py`` -- the same names, metric keys and numbers (to 1e-5).

The policy of DESIGN.md: pi_theta(a|s) proportional to exp(ref_logits(s) / tau + g_theta(h(s))),
h(s) the frozen LM's last hidden state, g_theta the book's PolicyNetwork with its output layer
at zero -- so training starts exactly at the reference policy -- and a value head V(h(s)).
REINFORCE with the learned baseline (the RLAIF paper's choice) maximises
E[sum_t grad log pi(a_t|s_t) (G_t - V(s_t))], G_t the reward-to-go of ``bridge.rollout
.returns_with_kl``; PPO reuses the same rollouts with the clipped surrogate. Sampling, the
initial weights, the KL estimates and the returns are framework-free (``bridge.rollout``), so
the two twins differ only in what a framework must do: logits, gradients, the optimizer.

The optimizer is Adam with Keras' defaults (beta1 0.9, beta2 0.999, epsilon 1e-7 added to
sqrt(v) *before* the bias correction, "epsilon hat"); gradients are clipped to a global norm of 1.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from bridge.rollout import (
    TokenRollout,
    initial_policy_weights,
    normalize,
    update_batch,
    update_metrics,
)

from .losses import approx_kl, entropy, explained_variance, ppo_clip_loss
from .networks import PolicyNetwork, ValueNetwork, build
from .rl_config import RLConfig

ADAM_EPSILON = 1e-7  #: Keras' default, added to sqrt(v) before the bias correction


class ResidualPolicy:
    """pi(a|s) = softmax(ref_logits / tau + g(h)), plus V(h); weights in Keras."""

    def __init__(self, vocab_size: int, hidden_size: int, cfg: RLConfig, seed: int = 0):
        self.cfg, self.vocab_size, self.hidden_size = cfg, vocab_size, hidden_size
        self.g = build(PolicyNetwork(vocab_size, cfg.hidden_dim, zero_init_last=True),
                       hidden_size)
        self.v = build(ValueNetwork(cfg.hidden_dim), hidden_size)
        self.set_weights(initial_policy_weights(vocab_size, hidden_size, cfg.hidden_dim, seed))
        self.opt = keras.optimizers.Adam(cfg.lr, epsilon=ADAM_EPSILON)
        self.opt.build(self.variables)
        # acting: one graph for every batch size, traced once and called as a concrete
        # function -- a tf.function's own dispatch (binding the arguments, looking up its
        # traces) costs as much as the network does at B = 64 (bench/peers.py, "the RL rollout")
        sig = [tf.TensorSpec([None, hidden_size], tf.float32),
               tf.TensorSpec([None, vocab_size], tf.float32)]
        self._act = tf.function(self.logits, input_signature=sig).get_concrete_function()

    @property
    def variables(self):
        return self.g.trainable_variables + self.v.trainable_variables

    def logits(self, hidden, ref_logits):
        return ref_logits / self.cfg.temperature + self.g(hidden)

    def act(self, hidden: np.ndarray, ref_logits: np.ndarray) -> np.ndarray:
        """Logits of pi(.|s) for one step of B sequences: float32 [B, V]."""
        return self._act(tf.constant(hidden), tf.constant(ref_logits)).numpy()

    def value(self, hidden: np.ndarray) -> np.ndarray:
        """V(s) for B states: float32 [B]."""
        return self.v(hidden).numpy()

    # --- weights and state: NumPy arrays under framework-free names ---------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """g's and V's weights as ``policy/g0`` ... ``policy/v5`` (kernels (in, out))."""
        return {**{f"policy/g{i}": w for i, w in enumerate(self.g.get_weights())},
                **{f"policy/v{i}": w for i, w in enumerate(self.v.get_weights())}}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Set g and V from :meth:`get_weights`' arrays (either framework's)."""
        self.g.set_weights([weights[f"policy/g{i}"] for i in range(len(self.g.weights))])
        self.v.set_weights([weights[f"policy/v{i}"] for i in range(len(self.v.weights))])

    def get_state(self) -> dict[str, np.ndarray]:
        """Weights plus Adam's step and moments (``policy/adam_m{i}``, ``policy/adam_v{i}``,
        in the order of the weights): a checkpoint either framework can continue."""
        out = self.get_weights()
        out["policy/adam_step"] = np.array([int(self.opt.iterations.numpy())], np.int64)
        for i, var in enumerate(self.variables):
            out[f"policy/adam_m{i}"] = self.opt._momentums[i].numpy()
            out[f"policy/adam_v{i}"] = self.opt._velocities[i].numpy()
        return out

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`get_state`'s arrays (other keys are ignored); KeyError or ValueError
        if they do not fit this policy."""
        self.set_weights(state)
        self.opt.iterations.assign(int(state["policy/adam_step"][0]))
        for i, var in enumerate(self.variables):
            for slot, key in ((self.opt._momentums[i], "m"), (self.opt._velocities[i], "v")):
                arr = state[f"policy/adam_{key}{i}"]
                if tuple(slot.shape) != arr.shape:
                    raise ValueError(f"Adam slot policy/adam_{key}{i}: shape {arr.shape}, "
                                     f"expected {tuple(slot.shape)}")
                slot.assign(arr)


class Trainer:
    """One update per rollout: REINFORCE with baseline, or PPO epochs (book 4.3.2, 3.3.1)."""

    def __init__(self, policy: ResidualPolicy, cfg: RLConfig):
        self.p, self.cfg = policy, cfg
        D, V = policy.hidden_size, policy.vocab_size
        sig = [tf.TensorSpec([None, D], tf.float32), tf.TensorSpec([None, V], tf.float32),
               tf.TensorSpec([None], tf.int32)] + [tf.TensorSpec([None], tf.float32)] * 3
        # one graph per algorithm for every batch size, traced on first use: the number of
        # running steps changes every iteration, and each new shape traced the update again
        # (about 1.3 s a trace at smoke size, one thread)
        self._steps = {ppo: tf.function(functools.partial(self._step, ppo=ppo),
                                        input_signature=sig) for ppo in (False, True)}

    def loss(self, hidden, ref_logits, actions, old_logp, adv, returns, ppo: bool):
        """(total loss, its parts): pg - ent_coef * entropy + 0.5 mean (V - G)^2."""
        logits = self.p.logits(hidden, ref_logits)
        logp = tf.gather(tf.nn.log_softmax(logits, -1), actions, axis=-1, batch_dims=1)
        if ppo:
            pg, _, clipfrac = ppo_clip_loss(logits, actions, adv, old_logp, self.cfg.ppo_clip)
        else:
            pg, clipfrac = -tf.reduce_mean(logp * adv), tf.constant(0.0)
        k1, k3 = approx_kl(logp, old_logp)
        values = self.p.v(hidden)
        ent = tf.reduce_mean(entropy(logits))
        v_loss = 0.5 * tf.reduce_mean(tf.square(values - returns))
        loss = pg - self.cfg.ent_coef * ent + v_loss
        return loss, (pg, v_loss, ent, k1, k3, clipfrac, explained_variance(values, returns))

    def gradients(self, batch: dict, adv: np.ndarray, ppo: bool):
        """(grads in the order of ``policy.variables``, the loss parts) -- for the parity test."""
        with tf.GradientTape() as tape:
            loss, parts = self.loss(batch["hidden"], batch["ref_logits"], batch["actions"],
                                    batch["old_logp"], adv, batch["returns"], ppo)
        return tape.gradient(loss, self.p.variables), parts

    def _step(self, hidden, ref_logits, actions, old_logp, adv, returns, ppo: bool):
        with tf.GradientTape() as tape:
            loss, parts = self.loss(hidden, ref_logits, actions, old_logp, adv, returns, ppo)
        grads = tape.gradient(loss, self.p.variables)
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        self.p.opt.apply_gradients(zip(grads, self.p.variables))
        return parts

    def advantages(self, batch: dict) -> np.ndarray:
        """A = normalise(G - V(s)), in NumPy (the same in both twins)."""
        return normalize(batch["returns"] - self.p.value(batch["hidden"]))

    def update(self, ro: TokenRollout, returns: np.ndarray) -> dict[str, float]:
        batch = update_batch(ro, returns)
        adv = self.advantages(batch)
        ppo = self.cfg.algo == "ppo"
        stats = [self._steps[ppo](batch["hidden"], batch["ref_logits"], batch["actions"],
                                  batch["old_logp"], adv, batch["returns"])
                 for _ in range(self.cfg.ppo_epochs if ppo else 1)]
        return update_metrics(stats)
