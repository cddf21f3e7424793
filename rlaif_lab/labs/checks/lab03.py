"""Hidden tests of lab 03 (book chapter 3: the algorithm)."""

from __future__ import annotations

import numpy as np

from ..spec import ExerciseList, Fail, Mutation, close, exercise, need, number, open_question

EXERCISES = ExerciseList()
MUTATION = Mutation("inverse-variance", "w = 1.0 / s ** 2", "w = 1.0 / s")


@exercise(EXERCISES, "inverse-variance", "code", 2,
          "inverse-variance fusion weights (book 3.2.2)",
          hint="w = 1 / sigma**2, then divide by w.sum()")
def _inverse_variance(ns: dict) -> None:
    from rl_tf.feedback import FeedbackFuser, FusionConfig

    fn = need(ns, "inverse_variance_weights")
    for sig in ([1.0, 2.0], [0.3, 0.3, 0.3], [0.2, 0.5, 1.0, 2.0]):
        s = np.array(sig)
        want = (1 / s ** 2) / (1 / s ** 2).sum()
        close(fn(sig), want, 1e-9, f"the weights for sigmas {sig}")
    sig = np.array([0.3, 0.6, 1.2])
    rng = np.random.default_rng(0)
    fuser = FeedbackFuser("abc", FusionConfig(weights="inverse_variance", normalize=False, clip=0,
                                              stats_decay=1.0, weight_ema=0.0))
    for _ in range(40):
        truth = rng.normal(size=256)
        fuser((truth[:, None] + rng.normal(size=(256, 3)) * sig).astype(np.float32), tuple("abc"))
    close(fn(sig), fuser.weights, 0.05, "your weights against those FeedbackFuser learns from data")


@exercise(EXERCISES, "median-of-k", "code", 2, "the median of k queries to a noisy judge (3.2.3)",
          hint="np.stack the k answers of judge(x), then np.median(..., axis=0)")
def _median_of_k(ns: dict) -> None:
    from rl_tf.feedback import query_sources

    fn = need(ns, "median_of_k")

    def make_judge():
        calls = {"n": 0}

        def judge(x):
            calls["n"] += 1
            noise = 50.0 if calls["n"] % 3 == 0 else 0.01 * calls["n"]
            return np.asarray(x, np.float64) + noise
        return judge, calls

    x = np.arange(5.0)
    for k in (1, 3, 5):
        judge, calls = make_judge()
        got = np.asarray(fn(judge, x, k), np.float64)
        if calls["n"] != k:
            raise Fail(f"median_of_k called the judge {calls['n']} times for k={k}")
        judge2, _ = make_judge()
        want, _ = query_sources({"j": judge2}, x, k=k)
        close(got, want[:, 0], 1e-4, f"the median of {k} answers, against rl_tf's query_sources")


def _constitution_check(critic) -> None:
    from lm_torch.judges import constitution
    from rl_tf.feedback import FeedbackFuser, FusionConfig, query_sources

    critics = constitution() + [critic]
    sources = {c.name: c.score for c in critics}
    if len(sources) != len(critics):
        raise Fail(f"the name {critic.name!r} is already used by the constitution")
    prompts = ["movie review :"] * 3
    comps = ["the plot was good .", "the plot was", "i loved the cast . the music"]
    scores, errors = query_sources(sources, prompts, comps)
    if errors:
        raise Fail(f"the constitution with your critic failed: {errors}")
    fused = FeedbackFuser(tuple(sources), FusionConfig(weights="fixed", normalize=False))(
        scores, tuple(sources))
    if not np.isfinite(fused.fused).all():
        raise Fail("fusing the constitution with your critic gave non-finite feedback")


@exercise(EXERCISES, "finish-critic", "code", 3,
          "add a critic to the constitution: finish your sentences",
          hint="look at completion.split(): empty, or a last word other than '.' / '?', "
               "scores -1.0; return np.array([...], dtype=np.float32)")
def _finish_critic(ns: dict) -> None:
    cls = need(ns, "FinishCritic", "class")
    try:
        critic = cls()
    except Exception as e:
        raise Fail(f"FinishCritic() could not be created: {type(e).__name__}: {e}") from None
    name, rng_ = getattr(critic, "name", None), getattr(critic, "range", None)
    if not isinstance(name, str) or not name:
        raise Fail("a critic needs a non-empty `name` (a string)")
    if not (isinstance(rng_, tuple) and len(rng_) == 2 and rng_[0] <= rng_[1]):
        raise Fail("a critic needs a `range` = (lowest, highest) score")
    cases = {"the plot was good .": 0.0, "where is my order ?": 0.0, "the plot was": -1.0,
             "": -1.0, "i loved the cast . the": -1.0, "the acting was bad . i liked it .": 0.0}
    got = critic.score(["movie review :"] * len(cases), list(cases))
    arr = np.asarray(got)
    if arr.shape != (len(cases),) or arr.dtype != np.float32:
        raise Fail(f"score() should return float32 of shape ({len(cases)},); got {arr.dtype} "
                   f"{arr.shape}")
    for (text, want), g in zip(cases.items(), arr):
        if g != want:
            raise Fail(f"score of {text!r} is {g:g}; expected {want:g}")
    if not ((arr >= rng_[0]) & (arr <= rng_[1])).all():
        raise Fail(f"scores {arr.tolist()} fall outside the declared range {rng_}")
    _constitution_check(critic)


@exercise(EXERCISES, "predict-ppo", "predict", 1, "predict PPO's clipped objective (3.3.1)",
          hint="the smaller of rho * A and clip(rho, 0.8, 1.2) * A")
def _predict_ppo(ns: dict) -> None:
    import tensorflow as tf

    from rl_tf.losses import ppo_clip_loss

    got = number(ns, "ppo_objective")
    logits = tf.constant([[0.0, 0.0]])
    logp = float(tf.nn.log_softmax(logits)[0, 0])
    loss, _, _ = ppo_clip_loss(logits, tf.constant([0]), tf.constant([1.0]),
                               tf.constant([logp - np.log(1.5)], tf.float32), 0.2)
    if abs(got - (-float(loss))) > 1e-5:
        raise Fail(f"ppo_objective = {got:g} is not what rl_tf.losses.ppo_clip_loss gives")


open_question(EXERCISES, "when-inverse-variance", "inverse-variance weights for critics that "
              "measure different things")
