"""The token MDP's rollout and its bookkeeping, framework-free (book 3.1, 3.3, 4.3.2).

Both policy twins -- ``rl_tf.rlaif.ResidualPolicy`` (Keras) and ``lm_torch.policy.ResidualPolicy``
(PyTorch) -- only compute logits; everything else of a rollout happens here in NumPy, once:

* sampling by the Gumbel-max trick, a_t = argmax(log pi(.|s_t) + g_t), g_t ~ Gumbel(0, 1), with
  one generator per sequence seeded by (seed, the sequence's index): the draws of a sequence do
  not depend on the framework, on the batch it is in, or on which worker runs it;
* the initial weights of g_theta and V (Glorot-uniform matrices, zero biases, g's output layer at
  zero so training starts at the reference policy), so both twins start from the same numbers;
* KL to the reference (exact, k1, k3), the returns with the per-token KL penalty and the
  terminal AI feedback, and the fixed or adaptive KL controller.

The rewards (book 4.3.2): each step pays -beta (log pi(a_t|s_t) - log pi_ref(a_t|s_t)) (the k1
estimator), the end of the sequence pays alpha f, f the fused AI feedback. The exact per-token KL
sum_a pi(a) (log pi(a) - log pi_ref(a)) is known here (both distributions are) and is logged
beside the k1 and k3 sample estimators; the controller is Ziegler et al.'s
beta <- beta (1 + e B / horizon), e = clip(KL / target - 1, -0.2, 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from . import metrics as M
from .numerics import log_softmax


class TokenPolicy(Protocol):
    """What a rollout needs of a policy: logits of pi(.|s) for a batch of states, in NumPy."""

    def act(self, hidden: np.ndarray, ref_logits: np.ndarray) -> np.ndarray: ...


def policy_shapes(vocab_size: int, hidden_size: int, hidden_dim: int) -> dict[str, tuple]:
    """The weights of g_theta (three Dense layers, listing 5.2.1) and V (two Dense + a scalar
    head), in Keras' layout: a kernel is (in, out). The names are the exchange format between
    the two frameworks (``policy/g0`` ... ``policy/v5``)."""
    D, H, V = hidden_size, hidden_dim, vocab_size
    g = [(D, H), (H,), (H, H), (H,), (H, V), (V,)]
    v = [(D, H), (H,), (H, H), (H,), (H, 1), (1,)]
    return {**{f"policy/g{i}": s for i, s in enumerate(g)},
            **{f"policy/v{i}": s for i, s in enumerate(v)}}


def initial_policy_weights(vocab_size: int, hidden_size: int, hidden_dim: int,
                           seed: int) -> dict[str, np.ndarray]:
    """Glorot-uniform kernels, zero biases, g's output kernel zero: pi starts at pi_ref."""
    rng = np.random.default_rng([seed, 0x9011C7])
    out = {}
    for name, shape in policy_shapes(vocab_size, hidden_size, hidden_dim).items():
        if len(shape) == 1 or name == "policy/g4":
            out[name] = np.zeros(shape, np.float32)
        else:
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            out[name] = rng.uniform(-limit, limit, shape).astype(np.float32)
    return out


@dataclass
class TokenRollout:
    """One batch of B token sequences of at most T steps (time-major)."""

    hidden: np.ndarray  #: (T, B, D)
    ref_logits: np.ndarray  #: (T, B, V)
    actions: np.ndarray  #: (T, B)
    logp: np.ndarray  #: (T, B) log pi(a_t|s_t) at sampling time
    ref_logp: np.ndarray  #: (T, B) log pi_ref(a_t|s_t)
    kl_exact: np.ndarray  #: (T, B) sum_a pi (log pi - log pi_ref)
    mask: np.ndarray  #: (T, B) True while the sequence was running


def rollout(env, policy: TokenPolicy, prompts: Sequence[str], seed: int,
            row_ids: Sequence[int] | None = None):
    """Drive ``env`` (a ``bridge.env.BatchedTextEnv``) to the end of every sequence.

    Sequence b draws its Gumbel noise from ``default_rng([seed, row_ids[b]])`` (``row_ids``
    defaults to 0..B-1). Returns (TokenRollout, the final TokenState).
    """
    s = env.reset(prompts=prompts)
    rows = range(len(prompts)) if row_ids is None else row_ids
    rngs = [np.random.default_rng([seed, int(r)]) for r in rows]
    buf = {k: [] for k in ("hidden", "ref_logits", "actions", "logp", "ref_logp", "kl_exact",
                           "mask")}
    while not s.done.all():
        logp_all = log_softmax(np.asarray(policy.act(s.hidden, s.logits), np.float32))
        noise = np.stack([r.gumbel(size=logp_all.shape[1]) for r in rngs])
        a = np.argmax(logp_all + noise, axis=-1).astype(np.int32)
        ref_all = log_softmax(s.logits)
        idx = np.arange(len(a))
        p = np.exp(logp_all)
        for k, v in (("hidden", s.hidden), ("ref_logits", s.logits), ("actions", a),
                     ("logp", logp_all[idx, a]), ("ref_logp", ref_all[idx, a]),
                     ("kl_exact", (p * (logp_all - ref_all)).sum(-1)), ("mask", ~s.done)):
            buf[k].append(np.asarray(v))
        s, _, _, _ = env.step(a)
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
    """G_t = sum_{k>=t} (-beta (log pi - log pi_ref)_k + alpha f_k), masked: (T, B).

    ``feedback`` [B] is paid once, at the last step of each sequence ("terminal"); ``feedback``
    [T, B] is paid at every step (book 4.3.2's Q + alpha f_t; see :func:`shaped_feedback`).
    """
    m = ro.mask.astype(np.float64)
    r = -beta * (ro.logp - ro.ref_logp) * m
    if np.ndim(feedback) == 2:
        r = r + alpha * np.where(ro.mask, feedback, 0.0)
    else:
        last = m.cumsum(0) == m.sum(0, keepdims=True)  # the last running step of a sequence
        r = r + alpha * np.where(last & ro.mask, np.asarray(feedback)[None, :], 0.0)
    return np.flip(np.cumsum(np.flip(r, 0), 0), 0).astype(np.float32)


def shaped_feedback(potentials: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-step feedback f_t = Phi(s_{t+1}) - Phi(s_t) from the potentials [T + 1, B] of the
    prefixes (Phi of the prompt alone first), zero after a sequence ends: (T, B).

    Potential-based shaping (Ng et al. 1999) keeps the optimal policy: the f_t of a sequence
    sum to Phi(final) - Phi(prompt), the terminal feedback up to a constant of the prompt, but
    each token is credited with the change it made -- lower-variance credit assignment.
    """
    phi = np.asarray(potentials, np.float64)
    return np.where(mask, phi[1:] - phi[:-1], 0.0)


def update_batch(ro: TokenRollout, returns: np.ndarray) -> dict[str, np.ndarray]:
    """The running steps of a rollout, flattened: what a trainer's update sees."""
    sel = ro.mask
    return {"hidden": ro.hidden[sel], "ref_logits": ro.ref_logits[sel],
            "actions": ro.actions[sel].astype(np.int32), "old_logp": ro.logp[sel].astype(
                np.float32), "returns": returns[sel].astype(np.float32)}


#: the parts a trainer's loss returns, in order, and the metric each is logged as
LOSS_PARTS = (M.LOSS_POLICY, M.LOSS_VALUE, M.LOSS_ENTROPY, M.APPROX_KL_K1, M.APPROX_KL_K3,
              M.CLIPFRAC, M.EXPLAINED_VARIANCE)


def update_metrics(steps: Sequence[Sequence[float]]) -> dict[str, float]:
    """The metrics of one update: each loss part averaged over its optimizer steps."""
    return {name: float(np.mean([float(s[i]) for s in steps]))
            for i, name in enumerate(LOSS_PARTS)}


def normalize(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Advantage normalisation: zero mean, unit standard deviation over the batch."""
    x = np.asarray(x, np.float32)
    return ((x - x.mean()) / (x.std() + eps)).astype(np.float32)


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
