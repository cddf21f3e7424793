"""The RLAIF policy and its KL bookkeeping, by hand (book 4.3.2)."""

import numpy as np
import pytest

from bridge.rollout import KLController, TokenRollout, kl_estimates, returns_with_kl
from rl_tf.rl_config import RLConfig
from rl_tf.rlaif import ResidualPolicy


def test_the_policy_starts_at_the_reference():
    pol = ResidualPolicy(vocab_size=7, hidden_size=5, cfg=RLConfig(hidden_dim=8), seed=0)
    h = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    ref = np.random.default_rng(1).normal(size=(3, 7)).astype(np.float32)
    np.testing.assert_allclose(pol.logits(h, ref).numpy(), ref, atol=1e-7)
    np.testing.assert_allclose(pol.act(h, ref), ref, atol=1e-7)


def test_state_round_trip_restores_weights_and_optimizer():
    a = ResidualPolicy(7, 5, RLConfig(hidden_dim=8), seed=0)
    for v in a.variables:
        v.assign(v + 0.1)
    b = ResidualPolicy(7, 5, RLConfig(hidden_dim=8), seed=1)
    b.set_state(a.get_state())
    for k, v in a.get_state().items():
        np.testing.assert_array_equal(b.get_state()[k], v)


def _rollout(logp, ref_logp, kl_exact, mask):
    T, B = np.shape(logp)
    z = np.zeros((T, B))
    return TokenRollout(z[..., None], z[..., None], z.astype(int), np.array(logp),
                        np.array(ref_logp), np.array(kl_exact), np.array(mask, bool))


def test_kl_estimators_and_returns_by_hand():
    # two sequences; the second stops after one token
    ro = _rollout(logp=[[-1.0, -2.0], [-1.0, -0.5]], ref_logp=[[-1.5, -2.0], [-0.5, -9.0]],
                  kl_exact=[[0.2, 0.1], [0.3, 7.0]], mask=[[1, 1], [1, 0]])
    k = kl_estimates(ro)
    assert k["kl/exact"] == pytest.approx(((0.2 + 0.3) + 0.1) / 2)
    assert k["kl/k1"] == pytest.approx(((0.5 - 0.5) + 0.0) / 2)
    k3 = lambda lr: np.exp(lr) - 1 - lr  # noqa: E731  (log r = log pi_ref - log pi)
    assert k["kl/k3"] == pytest.approx((k3(-0.5) + k3(0.5) + k3(0.0)) / 2)
    G = returns_with_kl(ro, feedback=np.array([2.0, -1.0]), beta=0.1, alpha=0.5)
    # r_t = -beta (log pi - log pi_ref), plus alpha f at the last running step
    np.testing.assert_allclose(G[:, 0], [-0.05 + 0.05 + 1.0, 0.05 + 1.0])
    np.testing.assert_allclose(G[:, 1], [-0.5, 0.0])


def test_kl_controller():
    fixed = KLController(0.1)
    assert fixed.update(100.0, 64) == 0.1
    ada = KLController(0.1, target=4.0, horizon=640)
    assert ada.update(8.0, 64) == pytest.approx(0.1 * 1.02)  # too much KL: beta grows
    ada = KLController(0.1, target=4.0, horizon=640)
    assert ada.update(1.0, 64) == pytest.approx(0.1 * 0.98)  # too little: beta shrinks
    with pytest.raises(ValueError, match="algo"):
        RLConfig(algo="dqn")


def test_per_step_shaping_telescopes_to_the_terminal_feedback():
    """f_t = Phi(s_{t+1}) - Phi(s_t) sums to Phi(final) - Phi(prompt) (book 4.3.2's alpha f_t)."""
    from bridge.rollout import shaped_feedback

    mask = np.array([[1, 1], [1, 1], [1, 0]], bool)  # the second sequence stops after 2 tokens
    phi = np.array([[0.0, 1.0], [0.5, 1.0], [2.0, 4.0], [3.0, 4.0]])  # (T + 1, B)
    f = shaped_feedback(phi, mask)
    np.testing.assert_allclose(f, [[0.5, 0.0], [1.5, 3.0], [1.0, 0.0]])
    np.testing.assert_allclose(f.sum(0), [3.0 - 0.0, 4.0 - 1.0])
    ro = _rollout(logp=np.zeros((3, 2)), ref_logp=np.zeros((3, 2)), kl_exact=np.zeros((3, 2)),
                  mask=mask)
    G_step = returns_with_kl(ro, f, beta=0.0, alpha=2.0)
    G_end = returns_with_kl(ro, f.sum(0), beta=0.0, alpha=2.0)
    np.testing.assert_allclose(G_step[0], G_end[0])  # the same return from the start ...
    assert G_step[1, 0] != G_end[1, 0]  # ... but each token credited with its own change
