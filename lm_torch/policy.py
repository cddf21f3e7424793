"""RL from AI feedback on the token-level MDP, in PyTorch: the twin of ``rl_tf/rlaif.py``
(book 3.1, 3.3, 4.3.2; listing 5.2.1's PolicyNetwork). The same class names, method names,
metric keys and numbers (held to 1e-5 by ``tests/test_parity_policy.py``).

pi_theta(a|s) proportional to exp(ref_logits(s) / tau + g_theta(h(s))), g_theta three Linear
layers with its output at zero, V(h(s)) a value head; REINFORCE with the learned baseline, or PPO.
Sampling, the initial weights, the KL estimates and the returns come from ``bridge.rollout``.
Weights cross between the frameworks as NumPy arrays in Keras' layout (a kernel is (in, out);
``nn.Linear.weight`` is (out, in), so they are transposed on the way).

Two framework defaults are matched on purpose, so that both twins take the same step:
* Adam's epsilon: Keras adds eps = 1e-7 to sqrt(v) *before* the bias correction ("epsilon hat"),
  torch adds it after; before each step the torch group's eps is set to
  eps / sqrt(1 - beta2^t), which makes the two updates identical.
* Gradient clipping: ``tf.clip_by_global_norm`` scales by c / max(||g||, c); torch's
  ``clip_grad_norm_`` by c / (||g|| + 1e-6). The TF formula is written out here.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bridge.rollout import (
    TokenRollout,
    initial_policy_weights,
    normalize,
    update_batch,
    update_metrics,
)

ADAM_EPSILON = 1e-7  #: the Keras twin's epsilon (see the module docstring for its placement)
BETA1, BETA2 = 0.9, 0.999


class PolicyNetwork(nn.Module):
    """pi_theta(.|s) as logits: the book's listing 5.2.1 in PyTorch (Linear, ReLU, x3)."""

    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int = 64):
        super().__init__()
        self.fc1 = nn.Linear(state_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.fc3 = nn.Linear(hidden_dim, action_dim)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(state)))))


class ValueNetwork(nn.Module):
    """V_phi(s): the same trunk with a scalar head (book 4.2.2)."""

    def __init__(self, state_dim: int, hidden_dim: int = 64):
        super().__init__()
        self.fc1 = nn.Linear(state_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, 1)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.fc2(F.relu(self.fc1(state))))).squeeze(-1)


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x))


class ResidualPolicy:
    """pi(a|s) = softmax(ref_logits / tau + g(h)), plus V(h); weights in PyTorch."""

    def __init__(self, vocab_size: int, hidden_size: int, cfg, seed: int = 0):
        self.cfg = cfg
        self.g = PolicyNetwork(hidden_size, vocab_size, cfg.hidden_dim)
        self.v = ValueNetwork(hidden_size, cfg.hidden_dim)
        self.set_weights(initial_policy_weights(vocab_size, hidden_size, cfg.hidden_dim, seed))
        self.opt = torch.optim.Adam(self.variables, lr=cfg.lr, betas=(BETA1, BETA2),
                                    eps=ADAM_EPSILON)

    @property
    def variables(self) -> list[nn.Parameter]:
        """In the Keras twin's order: g's (weight, bias) x 3, then V's."""
        return list(self.g.parameters()) + list(self.v.parameters())

    def logits(self, hidden: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
        return ref_logits / self.cfg.temperature + self.g(hidden)

    @torch.inference_mode()
    def act(self, hidden: np.ndarray, ref_logits: np.ndarray) -> np.ndarray:
        """Logits of pi(.|s) for one step of B sequences: float32 [B, V]."""
        return self.logits(_t(hidden), _t(ref_logits)).numpy()

    @torch.inference_mode()
    def value(self, hidden: np.ndarray) -> np.ndarray:
        """V(s) for B states: float32 [B]."""
        return self.v(_t(hidden)).numpy()

    # --- weights and state: NumPy arrays under framework-free names ---------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """g's and V's weights as ``policy/g0`` ... ``policy/v5``, kernels (in, out)."""
        out = {}
        for net, key in ((self.g, "g"), (self.v, "v")):
            for i, p in enumerate(net.parameters()):
                w = p.detach().numpy()
                out[f"policy/{key}{i}"] = np.ascontiguousarray(w.T if w.ndim == 2 else w)
        return out

    @torch.no_grad()
    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Set g and V from :meth:`get_weights`' arrays (either framework's)."""
        for net, key in ((self.g, "g"), (self.v, "v")):
            for i, p in enumerate(net.parameters()):
                given = np.asarray(weights[f"policy/{key}{i}"])
                w = given.T if given.ndim == 2 else given
                if tuple(w.shape) != tuple(p.shape):
                    raise ValueError(f"policy/{key}{i}: shape {given.shape} does not fit this "
                                     "policy")
                p.copy_(torch.from_numpy(np.ascontiguousarray(w)))

    def get_state(self) -> dict[str, np.ndarray]:
        """Weights plus Adam's step and moments in the Keras twin's layout: a checkpoint either
        framework can continue."""
        out = self.get_weights()
        step = 0
        for i, p in enumerate(self.variables):
            st = self.opt.state.get(p, {})
            m = st["exp_avg"].numpy() if st else np.zeros(tuple(p.shape), np.float32)
            v = st["exp_avg_sq"].numpy() if st else np.zeros(tuple(p.shape), np.float32)
            out[f"policy/adam_m{i}"] = np.ascontiguousarray(m.T if m.ndim == 2 else m)
            out[f"policy/adam_v{i}"] = np.ascontiguousarray(v.T if v.ndim == 2 else v)
            step = int(st["step"]) if st else step
        out["policy/adam_step"] = np.array([step], np.int64)
        return out

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`get_state`'s arrays (other keys are ignored)."""
        self.set_weights(state)
        step = int(state["policy/adam_step"][0])
        self.opt.state.clear()
        if step == 0:
            return
        for i, p in enumerate(self.variables):
            m, v = state[f"policy/adam_m{i}"], state[f"policy/adam_v{i}"]
            m, v = (m.T, v.T) if m.ndim == 2 else (m, v)
            if tuple(m.shape) != tuple(p.shape):
                raise ValueError(f"Adam slot policy/adam_m{i}: shape {m.shape}, expected "
                                 f"{tuple(p.shape)}")
            self.opt.state[p] = {"step": torch.tensor(float(step)),
                                 "exp_avg": torch.from_numpy(np.ascontiguousarray(m)).clone(),
                                 "exp_avg_sq": torch.from_numpy(np.ascontiguousarray(v)).clone()}


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(pi(.|s)) for each row: (B,)."""
    logp = torch.log_softmax(logits, -1)
    return -(logp.exp() * logp).sum(-1)


def approx_kl(new_logp: torch.Tensor, old_logp: torch.Tensor):
    """(k1, k3) estimates of KL(pi_old || pi_new), as ``rl_tf.losses.approx_kl``."""
    log_ratio = new_logp - old_logp
    return -log_ratio.mean(), (log_ratio.exp() - 1.0 - log_ratio).mean()


def reinforce_loss(logits: torch.Tensor, actions: torch.Tensor,
                   advantages: torch.Tensor) -> torch.Tensor:
    """-mean log pi(a|s) A: its gradient is book 4.2.3's estimate of -grad J (log pi from
    ``log_softmax`` of the logits), as ``rl_tf.losses.reinforce_loss``."""
    logp = torch.log_softmax(logits, -1).gather(-1, actions[:, None].long()).squeeze(-1)
    return -(logp * advantages.detach()).mean()


def ppo_clip_loss(logits, actions, advantages, old_logp, clip: float):
    """PPO's clipped surrogate and the clipped share, as ``rl_tf.losses.ppo_clip_loss``."""
    logp = torch.log_softmax(logits, -1).gather(-1, actions[:, None]).squeeze(-1)
    ratio = (logp - old_logp).exp()
    loss = -torch.minimum(ratio * advantages,
                          ratio.clamp(1.0 - clip, 1.0 + clip) * advantages).mean()
    return loss, ((ratio - 1.0).abs() > clip).float().mean()


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """1 - Var(G - V) / Var(G) (population variances, as the Keras twin)."""
    var = returns.var(unbiased=False)
    return torch.where(var > 0, 1.0 - (returns - values).var(unbiased=False) / var,
                       torch.zeros(()))


class Trainer:
    """One update per rollout: REINFORCE with baseline, or PPO epochs (book 4.3.2, 3.3.1)."""

    def __init__(self, policy: ResidualPolicy, cfg):
        self.p, self.cfg = policy, cfg

    def loss(self, hidden, ref_logits, actions, old_logp, adv, returns, ppo: bool):
        """(total loss, its parts): pg - ent_coef * entropy + 0.5 mean (V - G)^2."""
        hidden, ref_logits, old_logp, adv, returns = map(
            _t, (hidden, ref_logits, old_logp, adv, returns))
        actions = _t(actions).long()
        logits = self.p.logits(hidden, ref_logits)
        logp = torch.log_softmax(logits, -1).gather(-1, actions[:, None]).squeeze(-1)
        if ppo:
            pg, clipfrac = ppo_clip_loss(logits, actions, adv, old_logp, self.cfg.ppo_clip)
        else:
            pg, clipfrac = reinforce_loss(logits, actions, adv), torch.zeros(())
        k1, k3 = approx_kl(logp.detach(), old_logp)
        values = self.p.v(hidden)
        ent = entropy(logits).mean()
        v_loss = 0.5 * (values - returns).square().mean()
        loss = pg - self.cfg.ent_coef * ent + v_loss
        parts = (pg, v_loss, ent, k1, k3, clipfrac, explained_variance(values, returns))
        return loss, tuple(x.detach() for x in parts)

    def gradients(self, batch: dict, adv: np.ndarray, ppo: bool):
        """(grads in the order of ``policy.variables``, the loss parts) -- for the parity test."""
        for p in self.p.variables:
            p.grad = None
        loss, parts = self.loss(batch["hidden"], batch["ref_logits"], batch["actions"],
                                batch["old_logp"], adv, batch["returns"], ppo)
        loss.backward()
        return [p.grad.clone() for p in self.p.variables], parts

    def _step(self, batch: dict, adv: np.ndarray, ppo: bool):
        grads, parts = self.gradients(batch, adv, ppo)
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).float()
        scale = 1.0 / torch.clamp(norm, min=1.0)  # tf.clip_by_global_norm(grads, 1.0)
        for p, g in zip(self.p.variables, grads):
            p.grad = g * scale
        t = 1 + int(self.p.opt.state[self.p.variables[0]]["step"]) if self.p.opt.state else 1
        for group in self.p.opt.param_groups:  # Keras' epsilon-hat placement
            group["eps"] = ADAM_EPSILON / math.sqrt(1.0 - BETA2 ** t)
        self.p.opt.step()
        return [float(x) for x in parts]

    def advantages(self, batch: dict) -> np.ndarray:
        """A = normalise(G - V(s)), in NumPy (the same in both twins)."""
        return normalize(batch["returns"] - self.p.value(batch["hidden"]))

    def update(self, ro: TokenRollout, returns: np.ndarray) -> dict[str, float]:
        batch = update_batch(ro, returns)
        adv = self.advantages(batch)
        ppo = self.cfg.algo == "ppo"
        stats = [self._step(batch, adv, ppo) for _ in range(self.cfg.ppo_epochs if ppo else 1)]
        return update_metrics(stats)
