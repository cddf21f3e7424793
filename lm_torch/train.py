"""The training loop of book 4.1.3 (and of listing 5.1.2, corrected), for pre-training and SFT.

Minimises L(theta) = -sum_i log P(w_i | w_<i; theta) (mean cross-entropy over target tokens)
with AdamW, linear warmup then cosine decay, gradient clipping, periodic evaluation (loss and
perplexity), a progress bar, TensorBoard scalars and atomic checkpoints. Listing 5.1.2 used an
undefined global ``vocab_size``, never switched to eval mode for the loss it reported per batch,
and had no clipping or schedule; here all of that is explicit.

Resume: batches and dropout are functions of (seed, step), and the checkpoint holds weights,
optimizer state, step and the loss history, so a resumed run continues the same curve.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from bridge import metrics as M

from .checkpoint import load_checkpoint, save_checkpoint
from .device import module_device
from .model import GPT
from .tb import summary_writer
from .tokenizer import Tokenizer


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (shared by pre-training and SFT)."""

    max_steps: int = field(default=400, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=32, metadata={"help": "sequences per step"})
    lr: float = field(default=3e-3, metadata={"help": "peak learning rate of AdamW"})
    min_lr: float = field(default=3e-4, metadata={"help": "learning rate at the end of decay"})
    warmup_steps: int = field(default=40, metadata={"help": "linear warmup steps"})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay (matrices)"})
    grad_clip: float = field(default=1.0, metadata={"help": "max gradient norm (0 = off)"})
    eval_interval: int = field(default=100, metadata={"help": "steps between evaluations"})
    eval_batches: int = field(default=8, metadata={"help": "validation batches per evaluation"})
    ckpt_interval: int = field(default=100, metadata={"help": "steps between checkpoints"})

    def __post_init__(self):
        for name in ("max_steps", "batch_size", "eval_interval", "eval_batches", "ckpt_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1")
        if not (self.lr > 0 and self.min_lr >= 0):
            raise ValueError("TrainConfig.lr must be > 0 and min_lr >= 0")


class Batches(Protocol):
    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]: ...
    def eval_batches(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]: ...


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (TF is seeded by rl_tf; this side never imports it)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``min_lr`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * min(1.0, progress))) * (cfg.lr - cfg.min_lr)


def make_optimizer(model: GPT, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not biases, LayerNorms)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=True)


@torch.no_grad()
def evaluate(model: GPT, batches) -> dict[str, float]:
    """Mean next-token loss over fixed batches and its perplexity exp(loss)."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    device = module_device(model)
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        n = int((y != -100).sum())
        total += float(model(x, y).loss) * n
        count += n
    model.train(was)
    loss = total / max(count, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}


@dataclass
class TrainResult:
    losses: list[float]  #: training loss at every step, from step 0
    evals: list[dict]  #: {"step", "loss", "perplexity"} at each evaluation
    steps_run: int  #: steps run by this call (fewer than max_steps after a resume)


def train(model: GPT, tokenizer: Tokenizer, data: Batches, cfg: TrainConfig, *,
          val: Batches | None = None, out_dir: str | os.PathLike | None = None,
          seed: int = 0, resume: bool = False, meta: dict | None = None,
          progress: bool = True, log_prefix: str = "pretrain",
          stop_after: int | None = None) -> TrainResult:
    """Train ``model`` for ``cfg.max_steps`` steps, checkpointing to ``out_dir/checkpoint``.

    ``resume`` continues from that checkpoint when it exists. ``stop_after`` ends the call early
    after that many steps (as a crash would), leaving the last checkpoint behind: used by tests.
    """
    out = Path(out_dir) if out_dir is not None else None
    ckpt_path = out / "checkpoint" if out else None
    opt = make_optimizer(model, cfg)
    losses: list[float] = []
    evals: list[dict] = []
    start = 0
    if resume and ckpt_path is not None and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, with_optimizer=True)
        model.load_state_dict(ck.model.state_dict())
        if ck.optimizer_state is not None:
            opt.load_state_dict(ck.optimizer_state)
        start = int(ck.meta.get("step", 0))
        losses = list(ck.meta.get("losses", []))[:start]
        evals = [e for e in ck.meta.get("evals", []) if e["step"] <= start]
    writer = None
    if out is not None:
        writer = summary_writer(str(out / "tb"))
    eval_sets = val.eval_batches(cfg.eval_batches) if val is not None else None

    def checkpoint(step: int) -> None:
        if ckpt_path is not None:
            save_checkpoint(ckpt_path, model, tokenizer, optimizer=opt, meta={
                **(meta or {}), "step": step, "losses": losses, "evals": evals,
                "train_config": asdict(cfg), "seed": seed})

    model.train()
    device = module_device(model)
    names = M.lm_names(log_prefix)
    M.check(names.values())  # TensorBoard names come from bridge.metrics' registry
    bar = tqdm(range(start, cfg.max_steps), initial=start, total=cfg.max_steps,
               disable=not progress, desc=log_prefix, dynamic_ncols=True, mininterval=1.0)
    steps_run = 0
    for step in bar:
        torch.manual_seed(seed * 1_000_003 + step)  # dropout noise as a function of the step
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        x, y = (t.to(device) for t in data.batch(step))  # the data follows the model
        loss = model(x, y).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(loss.item())
        steps_run += 1
        done = step + 1
        if writer is not None:
            writer.add_scalar(names["train_loss"], losses[-1], done)
            writer.add_scalar(names["lr"], lr_at(step, cfg), done)
        if eval_sets is not None and (done % cfg.eval_interval == 0 or done == cfg.max_steps):
            ev = {"step": done, **evaluate(model, eval_sets)}
            evals.append(ev)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", val_ppl=f"{ev['perplexity']:.2f}")
            if writer is not None:
                writer.add_scalar(names["val_loss"], ev["loss"], done)
                writer.add_scalar(names["val_perplexity"], ev["perplexity"], done)
        if done % cfg.ckpt_interval == 0 or done == cfg.max_steps:
            checkpoint(done)
        if stop_after is not None and steps_run >= stop_after:
            break
    bar.close()
    if writer is not None:
        writer.close()
    return TrainResult(losses, evals, steps_run)
