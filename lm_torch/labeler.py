"""The AI labeler (book 3.2.1; RLAIF paper, Lee et al. 2023): soft preference labels from judges.

For a prompt and two completions the labeler asks a judge for both scores and turns them into
P(first is better) = sigma((s_first - s_second) / T + biases). It asks in *both orders* and
averages, P(a > b) = (P(a first > b) + 1 - P(b first > a)) / 2, which cancels a bias towards
whichever completion is shown first (position bias), as the RLAIF paper does.

For experiments (book 4.3.3) it injects defects on purpose: a label ``flip_rate``, a
``position_bias`` (logit for the first-shown completion), a ``verbosity_bias`` (logit per word
of length difference, for the longer one) and Gaussian score noise ``noise_sigma`` on every
query (f_hat = f + eps, eps ~ N(0, sigma^2)). :meth:`AILabeler.report` measures agreement with
the corpus's gold scores and the share of pairs decided for the first-shown completion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .model import GPT
from .sample import SampleConfig, generate
from .tokenizer import Tokenizer

ScoreFn = Callable[[Sequence[str], Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class LabelerConfig:
    """How the AI labeler turns judge scores into soft labels, and which defects it injects."""

    temperature: float = field(default=1.0, metadata={"help": "p = sigma(score gap / T)"})
    swap: bool = field(default=True, metadata={"help": "ask in both orders and average"})
    flip_rate: float = field(default=0.0, metadata={"help": "share of labels flipped"})
    position_bias: float = field(default=0.0, metadata={"help": "logit for the first shown"})
    verbosity_bias: float = field(default=0.0, metadata={"help": "logit per word longer"})
    noise_sigma: float = field(default=0.0, metadata={"help": "Gaussian noise on each score"})
    seed: int = field(default=0, metadata={"help": "seed of the injected defects"})

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError("LabelerConfig.temperature must be > 0")
        if not 0.0 <= self.flip_rate <= 1.0:
            raise ValueError("LabelerConfig.flip_rate must be in [0, 1]")
        if self.noise_sigma < 0:
            raise ValueError("LabelerConfig.noise_sigma must be >= 0")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class AILabeler:
    """Soft labels P(a better than b) from a judge's scores (``score(prompts, completions)``)."""

    def __init__(self, score_fn: ScoreFn, cfg: LabelerConfig = LabelerConfig()):
        self.score_fn, self.cfg = score_fn, cfg
        self.rng = np.random.default_rng(cfg.seed)

    def _scores(self, prompts, completions) -> np.ndarray:
        s = np.asarray(self.score_fn(prompts, completions), dtype=np.float64)
        if self.cfg.noise_sigma:
            s = s + self.rng.normal(0.0, self.cfg.noise_sigma, s.shape)
        return s

    def prefer_first(self, prompts, first, second) -> np.ndarray:
        """One query in one order: P(the completion shown first is better)."""
        c = self.cfg
        gap = (self._scores(prompts, first) - self._scores(prompts, second)) / c.temperature
        words = np.array([len(a.split()) - len(b.split()) for a, b in zip(first, second)])
        return _sigmoid(gap + c.position_bias + c.verbosity_bias * words)

    def label(self, prompts: Sequence[str], a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """Soft labels P(a > b), float32 [N]; ``a`` is the completion shown first."""
        if not (len(prompts) == len(a) == len(b)):
            raise ValueError("prompts, a and b must have the same length")
        p = self.prefer_first(prompts, a, b)
        if self.cfg.swap:
            p = 0.5 * (p + 1.0 - self.prefer_first(prompts, b, a))
        if self.cfg.flip_rate:
            flip = self.rng.random(len(p)) < self.cfg.flip_rate
            p = np.where(flip, 1.0 - p, p)
        return p.astype(np.float32)

    @staticmethod
    def report(labels: np.ndarray, gold_a: np.ndarray, gold_b: np.ndarray) -> dict:
        """Agreement with gold (on pairs gold does not tie) and the first-position share."""
        labels, gold_a, gold_b = map(np.asarray, (labels, gold_a, gold_b))
        decided = gold_a != gold_b
        agree = ((labels > 0.5) == (gold_a > gold_b))[decided]
        return {"gold_agreement": float(agree.mean()) if agree.size else float("nan"),
                "first_position_share": float(np.mean(labels > 0.5)),
                "n_pairs": int(len(labels)), "n_gold_decided": int(decided.sum())}


def sample_pairs(model: GPT, tokenizer: Tokenizer, prompts: Sequence[str], seed: int = 0,
                 max_new_tokens: int = 48, batch_size: int = 256):
    """Two completions per prompt from ``model`` (book 3.2.1: the pairs the labeler judges).

    Returns (prompts, completions_a, completions_b) as lists of strings.
    """
    outs: list[str] = []
    ids = [[tokenizer.bos_id] + tokenizer.encode(p) for p in prompts for _ in range(2)]
    cfg = SampleConfig(max_new_tokens=max_new_tokens)
    for i in range(0, len(ids), batch_size):
        gen = generate(model, ids[i: i + batch_size], cfg, eos_id=tokenizer.eos_id,
                       pad_id=tokenizer.pad_id, seed=seed + i)
        outs.extend(tokenizer.decode(g).strip() for g in gen)
    return list(prompts), outs[0::2], outs[1::2]
