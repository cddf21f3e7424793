"""Hidden tests of lab 04 (book chapter 4: the mathematics)."""

from __future__ import annotations

import numpy as np

from ..spec import ExerciseList, Fail, Mutation, close, exercise, need, number, open_question

EXERCISES = ExerciseList()
MUTATION = Mutation("k3", "np.exp(log_r) - 1.0 - log_r", "np.exp(log_r) - 1.0 + log_r")


@exercise(EXERCISES, "k3", "code", 3, "the k3 estimator of KL(pi || pi_ref) (book 4.3.2's penalty)",
          hint="log r = ref_logp - logp; k3 = exp(log r) - 1 - log r, element by element")
def _k3(ns: dict) -> None:
    from bridge import metrics as M
    from bridge.rollout import TokenRollout, kl_estimates

    k3 = need(ns, "k3")
    rng = np.random.default_rng(4)
    logp, ref = rng.normal(-3, 1, (7, 5)), rng.normal(-3, 1, (7, 5))
    got = np.asarray(k3(logp, ref), np.float64)
    if got.shape != logp.shape:
        raise Fail(f"k3 should return one estimate per sample, shape {logp.shape}; got {got.shape}")
    if (got < -1e-12).any():
        raise Fail("k3 returned a negative estimate; (r - 1) - log r is never negative")
    ro = TokenRollout(hidden=np.zeros((7, 5, 1)), ref_logits=np.zeros((7, 5, 1)),
                      actions=np.zeros((7, 5), int), logp=logp, ref_logp=ref,
                      kl_exact=np.zeros((7, 5)), mask=np.ones((7, 5), bool))
    close(got.sum(0).mean(), kl_estimates(ro)[M.KL_K3], 1e-6,
          "k3 summed over tokens, against bridge.rollout.kl_estimates")
    close(k3(ref, ref), np.zeros_like(ref), 1e-12, "k3 of a policy equal to the reference")
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.2, 0.6])  # pi, pi_ref
    a = rng.choice(3, 200_000, p=p)
    exact = float((p * np.log(p / q)).sum())
    close(np.mean(k3(np.log(p)[a], np.log(q)[a])), exact, 0.01,
          "the mean of k3 over 200 000 samples from pi, against the exact KL(pi || pi_ref)")
    big = np.asarray(k3(np.array([-800.0]), np.array([-801.0])), np.float64)
    if not np.all(np.isfinite(big)):
        raise Fail("k3 is not finite for logp = -800, ref_logp = -801: compute log r as "
                   "ref_logp - logp instead of dividing probabilities")


@exercise(EXERCISES, "reward-to-go", "code", 2, "reward-to-go G_t of one episode (book 4.2.3)",
          hint="walk backwards: running = r_t + gamma * running; G_t = running")
def _reward_to_go(ns: dict) -> None:
    from rl_tf.returns import reward_to_go as reference

    fn = need(ns, "reward_to_go")
    rng = np.random.default_rng(0)
    for T, gamma in ((1, 0.9), (5, 0.0), (12, 0.99), (30, 1.0), (7, 0.5)):
        r = rng.normal(size=T)
        got = fn(r.tolist(), gamma)
        close(got, reference(r, gamma), 1e-6, f"reward_to_go of {T} rewards with gamma={gamma}")


@exercise(EXERCISES, "fused-loss", "code", 3,
          "book 4.3.2's policy-gradient loss with alpha * feedback, in TensorFlow",
          hint="log pi(a) from tf.nn.log_softmax, gathered at the actions; weight "
               "tf.stop_gradient(q + alpha * f); minus the mean")
def _fused_loss(ns: dict) -> None:
    import tensorflow as tf

    from rl_tf.feedback import blend
    from rl_tf.losses import reinforce_loss

    fn = need(ns, "fused_pg_loss")
    rng = np.random.default_rng(1)
    N, A = 16, 5
    logits = tf.Variable(rng.normal(size=(N, A)).astype(np.float32))
    actions = tf.constant(rng.integers(0, A, N), tf.int32)
    q = tf.constant(rng.normal(size=N).astype(np.float32))
    f = tf.constant(rng.normal(size=N).astype(np.float32))
    for alpha in (0.0, 0.7):
        with tf.GradientTape(persistent=True) as tape:
            got = fn(logits, actions, q, f, alpha)
            want = reinforce_loss(logits, actions, blend(q, f, alpha))
        if not isinstance(got, (tf.Tensor, tf.Variable)):
            raise Fail(f"fused_pg_loss should return a tf.Tensor, not {type(got).__name__}: "
                       "use TensorFlow operations so the gradient can flow")
        close(float(got), float(want), 1e-5, f"the loss with alpha={alpha}")
        g = tape.gradient(got, logits)
        if g is None:
            raise Fail("no gradient reaches the logits: compute the loss with tf operations "
                       "(not NumPy) from the logits you were given")
        close(g.numpy(), tape.gradient(want, logits).numpy(), 1e-5,
              f"the gradient with respect to the logits, alpha={alpha}")
    extreme = tf.constant([[0.0, -200.0]], tf.float32)
    val = float(fn(extreme, tf.constant([1]), tf.constant([1.0]), tf.constant([0.0]), 1.0))
    if not np.isfinite(val):
        raise Fail("the loss is infinite for logits [0, -200] and action 1: use "
                   "tf.nn.log_softmax, not tf.math.log(tf.nn.softmax(...))")
    close(val, 200.0, 1e-3, "the loss for logits [0, -200], action 1, q = 1")


@exercise(EXERCISES, "predict-variance", "predict", 1,
          "predict the variance of the mean of k = 4 noisy answers (book 4.3.3)",
          hint="the variance of a mean of k independent draws is sigma^2 / k")
def _predict_variance(ns: dict) -> None:
    got = number(ns, "predicted_variance")
    draws = np.random.default_rng(0).normal(0.0, 2.0, (200_000, 4)).mean(1)
    want = 2.0 ** 2 / 4
    assert abs(draws.var() - want) < 0.02  # the grader's own measurement agrees with the formula
    if abs(got - want) > 0.01:
        raise Fail(f"predicted_variance = {got:g} is not what 200 000 simulated averages give")


open_question(EXERCISES, "k1-or-k3", "why log k3 beside the exact KL, and when its variance hurts")
