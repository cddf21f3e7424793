"""Feedback fusion (book 4.3): inverse-variance weights, noise handling, bad feedback."""

import numpy as np
import pytest

from bridge.protocol import FeedbackBatch, Meta
from rl_tf.feedback import (
    FeedbackError,
    FeedbackFuser,
    FusionConfig,
    RunningMoments,
    blend,
    noise_variances,
    query_sources,
)

SIGMAS = np.array([0.2, 0.5, 1.0, 2.0])
NAMES = ("a", "b", "c", "d")


def _batches(n_batches=30, B=64, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n_batches):
        s = rng.normal(size=B)  # the true signal
        yield s, (s[:, None] + rng.normal(size=(B, 4)) * SIGMAS).astype(np.float32)


def _mse(cfg):
    fuser = FeedbackFuser(NAMES, cfg)
    errs = [np.mean((fuser(f, NAMES).fused - s) ** 2) for s, f in _batches()]
    return float(np.mean(errs[10:])), fuser  # after the estimates settle


def test_inverse_variance_weights_cut_the_error_by_at_least_30_percent():
    raw = dict(normalize=False, clip=0.0, stats_decay=1.0)
    uniform, _ = _mse(FusionConfig(weights="fixed", **raw))
    inv, fuser = _mse(FusionConfig(weights="inverse_variance", **raw))
    assert inv <= 0.7 * uniform, (inv, uniform)
    # and the weights found are the textbook 1/sigma^2 ones
    ideal = (1 / SIGMAS**2) / (1 / SIGMAS**2).sum()
    np.testing.assert_allclose(fuser.weights, ideal, atol=0.03)


def test_three_cornered_hat_recovers_noise_variances():
    rng = np.random.default_rng(1)
    s = rng.normal(size=20_000)
    f = s[:, None] + rng.normal(size=(20_000, 4)) * SIGMAS
    np.testing.assert_allclose(noise_variances(np.cov(f.T)), SIGMAS**2, rtol=0.05, atol=0.03)
    with pytest.raises(ValueError):
        noise_variances(np.eye(2))


def test_running_moments_match_numpy():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 3)) * [1, 2, 3] + [5, 0, -1]
    m = RunningMoments(3, decay=1.0)
    for chunk in np.array_split(x, 7):
        m.update(chunk)
    np.testing.assert_allclose(m.mean, x.mean(0))
    np.testing.assert_allclose(m.cov, np.cov(x.T))


def test_fixed_weights_are_book_4_3_1():
    fuser = FeedbackFuser(("x", "y"), FusionConfig(weights="fixed", fixed_weights=(3.0, 1.0),
                                                    normalize=False, clip=0.0))
    out = fuser(np.array([[1.0, 2.0], [4.0, 0.0]], np.float32), ("x", "y"))
    np.testing.assert_allclose(out.fused, [3 * 1 + 1 * 2, 3 * 4])  # f = sum_i w_i f_i
    assert blend(np.array([1.0]), np.array([2.0]), 0.5)[0] == 2.0  # Q + alpha f


def test_nan_feedback_is_dropped_by_source_name_and_never_fused():
    fuser = FeedbackFuser(NAMES, FusionConfig(on_bad="drop"))
    _, f = next(_batches(1, B=8))
    f[2, 1] = np.nan
    f[5, 3] = np.inf
    out = fuser(f, NAMES)
    assert np.isfinite(out.fused).all()
    assert out.valid.tolist() == [True, True, False, True, True, False, True, True]
    assert out.metrics["feedback/nonfinite/b"] == 1 and out.metrics["feedback/nonfinite/d"] == 1
    assert out.metrics["feedback/dropped"] == 2
    strict = FeedbackFuser(NAMES, FusionConfig(on_bad="raise"))
    with pytest.raises(FeedbackError, match="source 'b' \\(1 rows\\).*source 'd'"):
        strict(f, NAMES)


def test_wrong_sources_are_refused():
    fuser = FeedbackFuser(NAMES)
    with pytest.raises(FeedbackError, match="expected sources"):
        fuser(np.zeros((4, 3), np.float32), NAMES[:3])
    fb = FeedbackBatch(np.zeros((2, 4), np.float32), ("a", "b", "c", "e"), Meta(0, 0, ""))
    with pytest.raises(FeedbackError, match="'e'"):
        fuser(fb)


def test_query_sources_takes_the_median_and_names_a_failing_source():
    calls = {"n": 0}

    def noisy(x):
        calls["n"] += 1
        return x + (100.0 if calls["n"] == 2 else 0.0)  # one outlier among three queries

    def broken(x):
        raise RuntimeError("judge crashed")

    x = np.arange(3.0)
    scores, errors = query_sources({"noisy": noisy, "broken": broken}, x, k=3)
    np.testing.assert_array_equal(scores[:, 0], x)  # the median ignores the outlier
    assert np.isnan(scores[:, 1]).all() and "judge crashed" in errors["broken"]
    with pytest.raises(FeedbackError, match="source 'broken' failed"):
        query_sources({"noisy": noisy, "broken": broken}, x, on_bad="raise")
    fuser = FeedbackFuser(("noisy", "broken"))
    out = fuser(scores, ("noisy", "broken"))
    assert not out.valid.any() and np.isfinite(out.fused).all()


def test_disagreement_filter_drops_rows_where_sources_disagree():
    fuser = FeedbackFuser(("x", "y", "z"), FusionConfig(weights="fixed", normalize=False,
                                                         disagreement=1.0))
    f = np.array([[1.0, 1.1, 0.9], [3.0, -3.0, 0.0]], np.float32)
    out = fuser(f, ("x", "y", "z"))
    assert out.valid.tolist() == [True, False]
    assert out.metrics["feedback/disagreement_dropped"] == 1
