"""The policy side in both frameworks: ``rl_tf.rlaif`` (Keras) and ``lm_torch.policy`` (PyTorch)
give the same logits, values, advantages, losses, gradients and updates (to 1e-5), for
REINFORCE and PPO, and either continues the other's training from its NumPy state."""

import numpy as np
import pytest

from bridge.rollout import TokenRollout, initial_policy_weights, update_batch
from lm_torch import policy as pt
from rl_tf import rlaif as tfp
from rl_tf.rl_config import RLConfig

pytestmark = pytest.mark.parity
V, D, H, T, B = 23, 12, 16, 5, 6
ATOL = 1e-5


def _pair(algo: str, seed: int = 0):
    cfg = RLConfig(algo=algo, hidden_dim=H, lr=3e-3, ppo_epochs=3, ent_coef=0.01)
    return (tfp.ResidualPolicy(V, D, cfg, seed), pt.ResidualPolicy(V, D, cfg, seed), cfg)


def _rollout(seed: int = 0) -> tuple[TokenRollout, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((T, B), bool)
    mask[3:, :2] = False  # two sequences stop early
    ro = TokenRollout(hidden=rng.normal(size=(T, B, D)).astype(np.float32),
                      ref_logits=rng.normal(size=(T, B, V)).astype(np.float32),
                      actions=rng.integers(0, V, (T, B)), logp=rng.normal(-3, 0.3, (T, B)),
                      ref_logp=rng.normal(-3, 0.3, (T, B)), kl_exact=np.zeros((T, B)),
                      mask=mask)
    return ro, rng.normal(size=(T, B)).astype(np.float32)


def _perturb(policy_tf, policy_pt, seed=1):
    """Move both off the zero-initialised output layer, identically."""
    rng = np.random.default_rng(seed)
    w = {k: (v + rng.normal(0, 0.1, v.shape)).astype(np.float32)
         for k, v in policy_tf.get_weights().items()}
    policy_tf.set_weights(w)
    policy_pt.set_weights(w)


def _close(a, b, what):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=ATOL, rtol=0, err_msg=what)


def test_both_start_from_the_same_weights_at_the_reference_policy():
    a, b, _ = _pair("reinforce")
    wa, wb = a.get_weights(), b.get_weights()
    assert wa.keys() == wb.keys() == initial_policy_weights(V, D, H, 0).keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    ro, _ = _rollout()
    _close(a.act(ro.hidden[0], ro.ref_logits[0]), ro.ref_logits[0], "pi starts at pi_ref")
    _close(b.act(ro.hidden[0], ro.ref_logits[0]), ro.ref_logits[0], "pi starts at pi_ref")


@pytest.mark.parametrize("algo", ["reinforce", "ppo"])
def test_logits_values_advantages_losses_and_gradients_agree(algo):
    a, b, cfg = _pair(algo)
    _perturb(a, b)
    ro, returns = _rollout()
    batch = update_batch(ro, returns)
    _close(a.act(batch["hidden"], batch["ref_logits"]),
           b.act(batch["hidden"], batch["ref_logits"]), "logits")
    _close(a.value(batch["hidden"]), b.value(batch["hidden"]), "values")
    ta, tb = tfp.Trainer(a, cfg), pt.Trainer(b, cfg)
    adv_a, adv_b = ta.advantages(batch), tb.advantages(batch)
    _close(adv_a, adv_b, "advantages")
    ga, parts_a = ta.gradients(batch, adv_a, algo == "ppo")
    gb, parts_b = tb.gradients(batch, adv_a, algo == "ppo")
    for name, x, y in zip(("pg", "value", "entropy", "k1", "k3", "clipfrac", "ev"),
                          parts_a, parts_b):
        _close(float(x), float(y), f"loss part {name}")
    assert len(ga) == len(gb) == 12
    for i, (x, y) in enumerate(zip(ga, gb)):
        y = y.numpy()
        _close(x.numpy(), y.T if y.ndim == 2 else y, f"gradient {i}")
    if algo == "ppo":
        assert float(parts_a[5]) > 0  # the old log-probs are off: the clip is active


@pytest.mark.parametrize("algo", ["reinforce", "ppo"])
def test_updates_agree_and_either_framework_continues_the_other(algo):
    a, b, cfg = _pair(algo)
    _perturb(a, b)
    ro, returns = _rollout()
    sa = tfp.Trainer(a, cfg).update(ro, returns)
    sb = pt.Trainer(b, cfg).update(ro, returns)
    assert sa.keys() == sb.keys()
    for k in sa:
        _close(sa[k], sb[k], k)
    wa, wb = a.get_weights(), b.get_weights()
    assert max(np.abs(wa[k] - initial_policy_weights(V, D, H, 0)[k]).max() for k in wa) > 1e-3
    for k in wa:
        _close(wa[k], wb[k], f"after one update: {k}")
    # cross over: Torch continues the Keras policy's state, Keras the Torch one's
    a2, b2, _ = _pair(algo, seed=5)
    b2.set_state(a.get_state())
    a2.set_state(b.get_state())
    ro2, returns2 = _rollout(seed=2)
    for pol, trainer in ((a, tfp.Trainer), (b, pt.Trainer), (a2, tfp.Trainer),
                         (b2, pt.Trainer)):
        trainer(pol, cfg).update(ro2, returns2)
    ref = a.get_state()
    for other in (b, a2, b2):
        st = other.get_state()
        for k in ref:
            _close(ref[k], st[k], f"after the second update: {k}")


def test_a_shape_that_does_not_fit_is_refused():
    a, b, _ = _pair("reinforce")
    w = a.get_weights()
    w["policy/g0"] = w["policy/g0"][:, :3]
    with pytest.raises(ValueError, match="policy/g0"):
        b.set_weights(w)
    with pytest.raises(ValueError):
        a.set_weights(w)
