"""Judges and reward models built on the language model itself (book 3.2.1, 4.3; InstructGPT and
RLAIF initialise the reward model from the SFT model; the RLAIF paper's labeler is an LM).

Checking a summary against its document, or an answer against the facts, means matching words
across the text. A small encoder trained from scratch on one bit per example does not learn that
at laptop scale (measured: 0.52-0.66 accuracy on the corpus's corrupted summaries and wrong
answers), while the SFT language model already copies from its context. So for the grounded
tasks the AI feedback is an LM's judgement:

* :class:`LMScorer` scores a completion by the language model's mean log-likelihood of it given
  the prompt, calibrated: ``score = scale * mean_t log P(y_t | x, y_<t) + bias``.
* :func:`train_lm_judge` -- the AI judge: the SFT model fine-tuned further on the task's
  demonstrations (a stronger labeler of the same family), then calibrated by logistic regression
  on the corpus's labelled records, faithful and corrupted alike: P(good) = sigma(score).
* :func:`train_lm_reward_model` -- the reward model: a copy of the SFT model whose calibrated
  log-likelihood is trained with the Bradley-Terry loss of :mod:`lm_torch.reward_model` on
  preference labels (AI labels for RLAIF, the human stand-in's for RLHF).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from .checkpoint import load_checkpoint, save_checkpoint
from .data import SFTData
from .device import module_device
from .io import CheckpointError, atomic_write_json, read_json
from .judges import EncoderConfig, warmup_cosine
from .model import GPT
from .reward_model import RewardModelConfig, bradley_terry_loss, small_loss_mean
from .tokenizer import Tokenizer
from .train import TrainConfig, train


def completion_batch(tokenizer: Tokenizer, prompts: Sequence[str], completions: Sequence[str],
                     block_size: int):
    """(ids (B, T), mask (B, T), starts (B,)): ``<bos> prompt completion <eos>`` right-padded,
    cut to the context; ``starts[b]`` is the index of row b's first completion token."""
    rows, starts = [], []
    for p, c in zip(prompts, completions):
        pi = [tokenizer.bos_id] + tokenizer.encode(p)
        ci = tokenizer.encode(" " + c, eos=True) if c else [tokenizer.eos_id]
        rows.append((pi + ci)[:block_size])
        starts.append(min(len(pi), block_size - 1))
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.bool)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r)
        mask[b, : len(r)] = True
    return ids, mask, torch.tensor(starts)


def mean_loglik(model: GPT, ids: torch.Tensor, mask: torch.Tensor,
                starts: torch.Tensor) -> torch.Tensor:
    """Mean over each row's completion tokens of log P(token | everything before it): (B,),
    on the model's device (the inputs are moved there)."""
    device = module_device(model)
    ids, mask, starts = ids.to(device), mask.to(device), starts.to(device)
    logp = torch.log_softmax(model(ids, key_mask=mask).logits.float(), -1)  # (B, T, V)
    tgt = logp[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)  # (B, T-1): log P(ids[t+1])
    pos = torch.arange(ids.shape[1] - 1, device=ids.device)[None]  # (1, T-1)
    sel = (pos >= starts[:, None] - 1) & mask[:, 1:]  # predictions of completion tokens
    return (tgt * sel).sum(1) / sel.sum(1).clamp(min=1)


class LMScorer:
    """A completion's calibrated log-likelihood under an LM: a judge or a reward model."""

    range = (-math.inf, math.inf)

    def __init__(self, model: GPT, tokenizer: Tokenizer, scale: float = 1.0, bias: float = 0.0,
                 name: str = "lm_judge"):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.scale, self.bias, self.name = float(scale), float(bias), name

    @torch.inference_mode()
    def loglik(self, prompts, completions, batch_size: int = 128) -> np.ndarray:
        """Mean log P(completion | prompt) per row: float32 [B]."""
        out = [np.zeros(0, np.float32)]
        block = self.model.config.block_size
        for i in range(0, len(prompts), batch_size):
            ids, mask, starts = completion_batch(self.tokenizer, prompts[i: i + batch_size],
                                                 completions[i: i + batch_size], block)
            out.append(mean_loglik(self.model, ids, mask, starts).cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def score(self, prompts, completions) -> np.ndarray:
        """scale * loglik + bias: for a judge, the logit of P(good); float32 [B]."""
        return (self.scale * self.loglik(prompts, completions) + self.bias).astype(np.float32)

    def accuracy(self, records) -> float:
        """Share of labelled records on the right side of 0 (P(good) = 1/2)."""
        s = self.score([r.prompt for r in records], [r.completion for r in records])
        return float(np.mean((s > 0) == np.array([r.label == 1 for r in records])))

    def auc(self, records) -> float:
        """P(score of a good record > score of a bad one), ties half."""
        s = self.score([r.prompt for r in records], [r.completion for r in records])
        y = np.array([r.label for r in records])
        pos, neg = s[y == 1], s[y == 0]
        if not len(pos) or not len(neg):
            return float("nan")
        return float(np.mean((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])))


def fit_calibration(x: np.ndarray, y: np.ndarray, steps: int = 50) -> tuple[float, float]:
    """Logistic regression P(y = 1) = sigma(a x + b) by Newton's method (a tiny ridge keeps it
    finite when the classes separate): (a, b)."""
    X = np.stack([np.asarray(x, np.float64), np.ones(len(x))], 1)
    y = np.asarray(y, np.float64)
    w = np.zeros(2)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -30, 30)))
        grad = X.T @ (p - y) + 1e-3 * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + 1e-3 * np.eye(2)
        w -= np.linalg.solve(hess, grad)
    return float(w[0]), float(w[1])


def train_lm_judge(sft: GPT, tokenizer: Tokenizer, records, cfg: EncoderConfig, out_dir,
                   n_calibrate: int = 2000, progress: bool = False) -> LMScorer:
    """The AI judge of a grounded task: a copy of ``sft`` fine-tuned ``cfg.steps`` more steps on
    the demonstrations among ``records`` (``Record.for_sft``), then calibrated on up to
    ``n_calibrate`` labelled records (good and bad). ``out_dir/checkpoint`` holds the LM."""
    model = copy.deepcopy(sft).train()
    pairs = [(r.prompt, r.completion) for r in records if r.for_sft]
    data = SFTData(tokenizer, pairs, model.config.block_size, cfg.batch_size, cfg.seed)
    tcfg = TrainConfig(max_steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                       min_lr=cfg.lr / 10, warmup_steps=min(50, cfg.steps),
                       eval_interval=cfg.steps, ckpt_interval=cfg.steps)
    train(model, tokenizer, data, tcfg, out_dir=out_dir, seed=cfg.seed, resume=True,
          progress=progress, log_prefix="sft", meta={"stage": "judge"})
    scorer = LMScorer(model, tokenizer)
    rng = np.random.default_rng(cfg.seed)
    cal = [records[i] for i in rng.permutation(len(records))[:n_calibrate]]
    ll = scorer.loglik([r.prompt for r in cal], [r.completion for r in cal])
    scorer.scale, scorer.bias = fit_calibration(ll, np.array([r.label for r in cal]))
    return scorer


def train_lm_reward_model(sft: GPT, tokenizer: Tokenizer, prompts: Sequence[str],
                          a: Sequence[str], b: Sequence[str], labels: np.ndarray,
                          cfg: RewardModelConfig, init_scale: float = 5.0) -> LMScorer:
    """r(x, y) = scale * mean log P_phi(y | x), phi initialised from ``sft``, fitted to
    preference labels P(a > b) with the (robust) Bradley-Terry loss (book 3.2)."""
    labels = np.asarray(labels, dtype=np.float32)
    if not (len(prompts) == len(a) == len(b) == len(labels)) or not len(labels):
        raise ValueError("prompts, a, b and labels must be non-empty and of one length")
    e = cfg.encoder
    torch.manual_seed(e.seed)
    model = copy.deepcopy(sft).train()
    device = module_device(model)
    scale = nn.Parameter(torch.tensor(float(init_scale), device=device))
    opt = torch.optim.AdamW([*model.parameters(), scale], lr=e.lr, weight_decay=0.0)
    y = torch.from_numpy(labels).to(device)
    rng = np.random.default_rng(e.seed)
    flip = cfg.assumed_flip_rate if cfg.robust else 0.0
    block = model.config.block_size
    for step in range(e.steps):
        idx = rng.integers(0, len(labels), e.batch_size)
        P = [prompts[i] for i in idx]
        ids, mask, starts = completion_batch(tokenizer, P + P, [a[i] for i in idx]
                                             + [b[i] for i in idx], block)
        r = scale * mean_loglik(model, ids, mask, starts)
        n = len(idx)
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, e)
        losses = bradley_terry_loss(r[:n], r[n:], y[torch.from_numpy(idx).to(device)], flip,
                                    reduce=False)
        warm = min(1.0, step / (0.2 * e.steps))
        loss = small_loss_mean(losses, flip * warm) if flip else losses.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_([*model.parameters(), scale], 1.0)
        opt.step()
    return LMScorer(model, tokenizer, float(scale.detach()), 0.0, name="reward_model")


def save_lm_scorer(path, scorer: LMScorer, meta: dict | None = None,
                   with_model: bool = True) -> None:
    """``path/checkpoint`` (the LM, as ``lm_torch.checkpoint`` writes it; ``with_model=False``
    when training left it there already) and ``path/scorer.json`` (scale, bias, name), each
    written atomically."""
    path = Path(path)
    if with_model:
        save_checkpoint(path / "checkpoint", scorer.model, scorer.tokenizer,
                        meta={"stage": scorer.name})
    atomic_write_json(path / "scorer.json", {"scale": scorer.scale, "bias": scorer.bias,
                                             "name": scorer.name, **(meta or {})})


def load_lm_scorer(path) -> LMScorer:
    """The scorer saved by :func:`save_lm_scorer`; CheckpointError saying what is wrong."""
    path = Path(path)
    meta = read_json(path / "scorer.json", "LM scorer")
    if not isinstance(meta, dict) or not all(
            isinstance(meta.get(k), (int, float)) and not isinstance(meta.get(k), bool)
            and math.isfinite(meta[k]) for k in ("scale", "bias")):
        raise CheckpointError(f"{path}/scorer.json needs finite numbers 'scale' and 'bias'; "
                              "train the judge or reward model again")
    ck = load_checkpoint(path / "checkpoint")
    return LMScorer(ck.model, ck.tokenizer, meta["scale"], meta["bias"],
                    str(meta.get("name", "lm_judge")))


def is_lm_scorer(path) -> bool:
    """Does ``path`` hold an LM scorer (rather than an encoder judge)?"""
    return (Path(path) / "scorer.json").is_file()


__all__ = ["LMScorer", "completion_batch", "mean_loglik", "fit_calibration", "train_lm_judge",
           "train_lm_reward_model", "save_lm_scorer", "load_lm_scorer", "is_lm_scorer"]
