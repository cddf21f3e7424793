"""The reward model: AI preferences distilled into a scalar scorer (book 3.2, 4.3; RLAIF paper).

A Transformer encoder (the judges' :class:`TextEncoder`) with a scalar head r_phi(x), trained on
soft AI labels y = P(a > b) with the Bradley-Terry likelihood P(a > b) = sigma(r(a) - r(b)):

    L = -[ y log sigma(r_a - r_b) + (1 - y) log sigma(r_b - r_a) ]

The noise-robust variant expects labels flipped at rate eps (book 4.3.3's noise, made
explicit). It models the observed label as 1 with probability eps + (1 - 2 eps)
sigma(r_a - r_b) ("forward correction": a flipped label the model contradicts costs at most
-log eps), and in each batch it leaves out the share eps of pairs with the largest loss (the
small-loss trick of co-teaching, ramped in over the first 20 % of training), so that flipped
labels barely pull the scorer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .judges import (
    EncoderConfig,
    TextEncoder,
    encode_texts,
    encoder_outputs,
    join,
    warmup_cosine,
)
from .tokenizer import Tokenizer


@dataclass(frozen=True)
class RewardModelConfig:
    """Reward-model training."""

    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(steps=800, lr=1e-3))
    robust: bool = field(default=False, metadata={"help": "flip-corrected Bradley-Terry loss"})
    assumed_flip_rate: float = field(default=0.3,
                                     metadata={"help": "eps of the robust loss, in [0, 0.5)"})

    def __post_init__(self):
        if not 0.0 <= self.assumed_flip_rate < 0.5:
            raise ValueError("assumed_flip_rate must be in [0, 0.5)")


def bradley_terry_loss(r_a: torch.Tensor, r_b: torch.Tensor, y: torch.Tensor,
                       flip_rate: float = 0.0, reduce: bool = True) -> torch.Tensor:
    """BT cross-entropy of soft labels ``y`` = P(a > b); flip-corrected if flip_rate > 0."""
    margin = r_a - r_b
    if flip_rate == 0.0:
        loss = F.binary_cross_entropy_with_logits(margin, y, reduction="none")
    else:
        p = flip_rate + (1.0 - 2.0 * flip_rate) * torch.sigmoid(margin)
        loss = -(y * torch.log(p) + (1.0 - y) * torch.log1p(-p))
    return loss.mean() if reduce else loss


def small_loss_mean(losses: torch.Tensor, drop: float) -> torch.Tensor:
    """Mean of the ``1 - drop`` share of smallest losses (the small-loss trick of co-teaching):
    pairs the model confidently contradicts are the likeliest to carry flipped labels."""
    keep = max(1, int(round(len(losses) * (1.0 - drop))))
    return torch.topk(losses, keep, largest=False).values.mean()


class RewardModel:
    """r_phi(prompt + completion) as a judge: ``score(prompts, completions) -> float32 [B]``."""

    name = "reward_model"
    range = (-math.inf, math.inf)

    def __init__(self, encoder: TextEncoder, tokenizer: Tokenizer):
        self.encoder, self.tokenizer = encoder.eval(), tokenizer

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        texts = [join(p, c) for p, c in zip(prompts, completions)]
        return encoder_outputs(self.encoder, self.tokenizer, texts)[:, 0]


def train_reward_model(tokenizer: Tokenizer, prompts: Sequence[str], a: Sequence[str],
                       b: Sequence[str], labels: np.ndarray,
                       cfg: RewardModelConfig = RewardModelConfig(),
                       device: str | torch.device = "cpu") -> RewardModel:
    """Fit r_phi to soft preference labels P(a > b) with the (robust) Bradley-Terry loss."""
    if not (len(prompts) == len(a) == len(b) == len(labels)) or not len(labels):
        raise ValueError("prompts, a, b and labels must be non-empty and of one length")
    labels = np.asarray(labels, dtype=np.float32)
    if not np.isfinite(labels).all() or labels.min() < 0 or labels.max() > 1:
        raise ValueError("labels must be probabilities in [0, 1]")
    e = cfg.encoder
    torch.manual_seed(e.seed)
    enc = TextEncoder(tokenizer.vocab_size, e, 1).to(device)
    opt = torch.optim.AdamW(enc.parameters(), lr=e.lr, weight_decay=0.01)
    ta = [join(p, c) for p, c in zip(prompts, a)]
    tb = [join(p, c) for p, c in zip(prompts, b)]
    y = torch.from_numpy(labels).to(device)
    rng = np.random.default_rng(e.seed)
    flip = cfg.assumed_flip_rate if cfg.robust else 0.0
    enc.train()
    for step in range(e.steps):
        idx = rng.integers(0, len(ta), e.batch_size)
        ids, mask = encode_texts(tokenizer, [ta[i] for i in idx] + [tb[i] for i in idx], e.max_len)
        r = enc(ids.to(device), mask.to(device))[:, 0]
        n = len(idx)
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, e)
        losses = bradley_terry_loss(r[:n], r[n:], y[torch.from_numpy(idx).to(device)], flip,
                                    reduce=False)
        warm = min(1.0, step / (0.2 * e.steps))  # trim nothing at first, then the full share
        loss = small_loss_mean(losses, flip * warm) if flip else losses.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
        opt.step()
    return RewardModel(enc, tokenizer)


def preference_accuracy(scorer, prompts, a, b, gold_a, gold_b) -> float:
    """Share of pairs (gold not tied) that ``scorer`` orders as the gold scores do."""
    sa, sb = scorer.score(prompts, a), scorer.score(prompts, b)
    gold_a, gold_b = np.asarray(gold_a), np.asarray(gold_b)
    decided = gold_a != gold_b
    return float(np.mean(((sa > sb) == (gold_a > gold_b))[decided]))


def make_reward_fn(kind: str, judge=None, reward_model: RewardModel | None = None):
    """The RL reward, selectable by config: ``"rm"`` scores with the distilled reward model
    (RLAIF), ``"direct"`` with the judge itself (d-RLAIF: the AI feedback used as reward
    without distillation). Both: ``fn(prompts, completions) -> float32 [B]``."""
    if kind == "rm":
        if reward_model is None:
            raise ValueError("reward 'rm' needs a trained reward model")
        return reward_model.score
    if kind == "direct":
        if judge is None:
            raise ValueError("reward 'direct' (d-RLAIF) needs a judge")
        return judge.score
    raise ValueError(f"reward kind must be 'rm' or 'direct', not {kind!r}")
