"""Fusing AI feedback and handling its noise (book 3.2.2-3.2.3, 4.3.1-4.3.3, 9.3.2-9.3.3).

K feedback sources score each of B finished sequences: f_{i,t}, a ``FeedbackBatch`` [B, K].

* per-source normalisation with running (exponentially weighted) mean and variance, so that
  sources on different scales can be added;
* fusion f_t = sum_i w_i f_{i,t} (book 4.3.1) with fixed weights or inverse-variance weights
  w_i proportional to 1 / sigma_i^2, the noise variances estimated online without any ground
  truth from the running covariance of the sources ("three-cornered hat": for independent
  noises Var(f_i - f_j) = sigma_i^2 + sigma_j^2, solved by least squares over all pairs, K >= 3);
* a disagreement filter that drops rows whose normalised sources spread more than a threshold;
* noise handling (book 4.3.3, f_hat = f + eps): the median of k queries per source
  (:func:`query_sources`), an EMA on the weights, clipping of the fused signal;
* the alpha blend Q + alpha f_t of book 4.3.2 (:func:`blend`), alpha trading environment
  reward against AI feedback (book 9.3.3).

Bad feedback -- NaN/inf, the wrong number of sources, a source that raises -- is reported by
source name and, by ``on_bad``, either dropped for that batch (the rows are masked out and
counted) or stops the run with :class:`FeedbackError`. A NaN never leaves this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping, Sequence

import numpy as np

from bridge.config import check_config
from bridge.protocol import FeedbackBatch


class FeedbackError(Exception):
    """Feedback that cannot be used; the message names the source."""


@dataclass(frozen=True)
class FusionConfig:
    """How feedback sources are combined."""

    weights: Literal["fixed", "inverse_variance"] = field(default="inverse_variance", metadata={
        "help": "fixed or inverse_variance"})
    fixed_weights: tuple[float, ...] = field(default=(), metadata={
        "help": "one weight per source for 'fixed' (default: equal)"})
    normalize: bool = field(default=True, metadata={"help": "per-source running normalisation"})
    stats_decay: float = field(default=0.99, metadata={
        "help": "decay of the running statistics per batch (1 = all-time averages)"})
    weight_ema: float = field(default=0.9, metadata={"help": "EMA of the weights per batch"})
    disagreement: float = field(default=0.0, metadata={
        "help": "drop rows whose normalised sources have a std above this (0 = off)"})
    clip: float = field(default=5.0, metadata={"help": "clip the fused signal to +-clip (0 = off)"})
    on_bad: Literal["drop", "raise"] = field(default="drop",
                                             metadata={"help": "drop bad rows, or raise"})

    def __post_init__(self):
        check_config(self)
        if self.clip < 0 or self.disagreement < 0:
            raise ValueError("FusionConfig.clip and disagreement must be >= 0")
        if not (0.0 < self.stats_decay <= 1.0 and 0.0 <= self.weight_ema < 1.0):
            raise ValueError("stats_decay must be in (0, 1] and weight_ema in [0, 1)")


class RunningMoments:
    """Exponentially weighted mean and covariance of K sources (decay 1: exact averages)."""

    def __init__(self, k: int, decay: float = 0.99):
        self.k, self.decay = k, decay
        self.n = 0.0
        self.mean = np.zeros(k)
        self.m2 = np.zeros((k, k))  # sum of weighted outer products of deviations

    def update(self, x: np.ndarray) -> None:
        """Add a batch x [N, K] (Chan's parallel update, old mass decayed first)."""
        if not len(x):
            return
        n_b, mean_b = float(len(x)), x.mean(0)
        d = x - mean_b
        m2_b = d.T @ d
        n_a = self.n * self.decay
        m2_a = self.m2 * self.decay
        delta = mean_b - self.mean
        n = n_a + n_b
        self.mean = self.mean + delta * n_b / n
        self.m2 = m2_a + m2_b + np.outer(delta, delta) * n_a * n_b / n
        self.n = n

    @property
    def cov(self) -> np.ndarray:
        return self.m2 / max(self.n - 1.0, 1.0)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.cov), 1e-12))


def noise_variances(cov: np.ndarray) -> np.ndarray:
    """sigma_i^2 from the covariance of K >= 3 sources f_i = s + e_i with independent e_i.

    Var(f_i - f_j) = sigma_i^2 + sigma_j^2 for every pair; least squares over all pairs.
    """
    k = len(cov)
    if k < 3:
        raise ValueError("noise variances need at least 3 sources")
    rows, rhs = [], []
    for i in range(k):
        for j in range(i + 1, k):
            row = np.zeros(k)
            row[[i, j]] = 1.0
            rows.append(row)
            rhs.append(cov[i, i] + cov[j, j] - 2 * cov[i, j])
    sol, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    return np.maximum(sol, 1e-6)


@dataclass
class FusionResult:
    fused: np.ndarray  #: float32 [B]; 0 where not valid
    valid: np.ndarray  #: bool [B]; False for rows dropped (bad feedback or disagreement)
    weights: np.ndarray  #: float [K], the weights used
    metrics: dict  #: feedback/... scalars for the logger


class FeedbackFuser:
    """Stateful fusion of K named sources: ``fuser(feedback) -> FusionResult``."""

    def __init__(self, sources: Sequence[str], cfg: FusionConfig = FusionConfig()):
        self.sources, self.cfg = tuple(sources), cfg
        k = len(self.sources)
        if k < 1 or len(set(self.sources)) != k:
            raise ValueError("sources must be one or more unique names")
        if cfg.fixed_weights and len(cfg.fixed_weights) != k:
            raise ValueError(f"fixed_weights has {len(cfg.fixed_weights)} values for {k} sources")
        # fixed weights are used as given (book 4.3.1); by default each source weighs 1/K
        self.weights = np.asarray(cfg.fixed_weights or [1.0 / k] * k, dtype=np.float64)
        self.moments = RunningMoments(k, cfg.stats_decay)
        self.dropped = 0

    def __call__(self, fb: FeedbackBatch | np.ndarray,
                 sources: Sequence[str] | None = None, update: bool = True) -> FusionResult:
        """Fuse one batch; ``update=False`` uses the current statistics and weights without
        learning from this batch (e.g. to score the prefixes of a rollout for shaping)."""
        scores, names = (fb.scores, fb.sources) if isinstance(fb, FeedbackBatch) else (
            np.asarray(fb), tuple(sources or self.sources))
        if tuple(names) != self.sources or scores.ndim != 2 or scores.shape[1] != len(names):
            raise FeedbackError(f"expected sources {list(self.sources)} (one column each), got "
                                f"{list(names)} with scores of shape {scores.shape}")
        scores = scores.astype(np.float64)
        finite = np.isfinite(scores)
        metrics = {}
        valid = finite.all(1)
        if not valid.all():
            bad = {n: int((~finite[:, i]).sum()) for i, n in enumerate(names)
                   if not finite[:, i].all()}
            if self.cfg.on_bad == "raise":
                raise FeedbackError("non-finite feedback from " + ", ".join(
                    f"source {n!r} ({c} rows)" for n, c in bad.items()))
            for n, c in bad.items():
                metrics[f"feedback/nonfinite/{n}"] = float(c)
        clean = np.where(finite, scores, 0.0)
        if update:
            self.moments.update(clean[valid])
        if self.cfg.normalize and self.moments.n > 1:
            z = (clean - self.moments.mean) / self.moments.std
        else:
            z = clean
        if (update and self.cfg.weights == "inverse_variance" and len(names) >= 3
                and self.moments.n > 3):
            cov = self.moments.cov
            if self.cfg.normalize:
                s = self.moments.std
                cov = cov / np.outer(s, s)
            target = 1.0 / noise_variances(cov)
            target /= target.sum()
            a = self.cfg.weight_ema
            self.weights = a * self.weights + (1 - a) * target
        if self.cfg.disagreement > 0 and len(names) > 1:
            agree = z.std(1) <= self.cfg.disagreement
            metrics["feedback/disagreement_dropped"] = float((valid & ~agree).sum())
            valid &= agree
        fused = z @ self.weights
        if self.cfg.clip > 0:
            fused = np.clip(fused, -self.cfg.clip, self.cfg.clip)
        fused = np.where(valid, fused, 0.0).astype(np.float32)
        self.dropped += int((~valid).sum()) if update else 0
        metrics["feedback/dropped"] = float((~valid).sum())
        metrics["feedback/fused_mean"] = float(fused[valid].mean()) if valid.any() else 0.0
        for i, n in enumerate(names):
            metrics[f"feedback/weight/{n}"] = float(self.weights[i])
            metrics[f"feedback/source/{n}"] = float(clean[valid, i].mean()) if valid.any() else 0.0
        return FusionResult(fused, valid, self.weights.copy(), metrics)


def query_sources(sources: Mapping[str, Callable[..., np.ndarray]], *args, k: int = 1,
                  on_bad: str = "drop") -> tuple[np.ndarray, dict]:
    """Ask every source ``k`` times and keep the median (book 4.3.3's noise handling).

    Returns (scores float32 [B, K] with a NaN column for a failed source, {source: error}).
    ``on_bad="raise"`` raises :class:`FeedbackError` naming the first source that failed. The
    NaN column is then dropped by :class:`FeedbackFuser`; it is never fused.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    columns, errors, B = [], {}, None
    for name, fn in sources.items():
        try:
            draws = [np.asarray(fn(*args), dtype=np.float64) for _ in range(k)]
            col = np.median(np.stack(draws), axis=0)
            if col.ndim != 1 or (B is not None and len(col) != B):
                raise FeedbackError(f"returned shape {col.shape}, expected ({B},)")
        except Exception as e:  # a source may fail in any way; it is named, then handled
            if on_bad == "raise":
                raise FeedbackError(f"source {name!r} failed: {e}") from e
            errors[name] = f"{type(e).__name__}: {e}"
            col = None
        if col is not None and B is None:
            B = len(col)
        columns.append(col)
    if B is None:
        raise FeedbackError("every feedback source failed: " + "; ".join(
            f"{n}: {m}" for n, m in errors.items()))
    scores = np.stack([c if c is not None else np.full(B, np.nan) for c in columns], 1)
    return scores.astype(np.float32), errors


def blend(q, f, alpha: float):
    """Book 4.3.2's Q(s_t, a_t) + alpha f_t (works on NumPy arrays and TF tensors)."""
    return q + alpha * f
